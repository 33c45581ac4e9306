"""Fixtures for the detector tests (input builders live in ``builders``)."""
