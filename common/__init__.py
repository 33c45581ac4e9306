"""Shared infrastructure that no app owns: bulk writes (COPY, upsert), admin and filter helpers.

The bottom layer: it imports Django and libraries only, never a ShelfWatch app.
"""
