"""Benchmarks: generate data at chain scale and print measured figures (``make bench``).

Timing lives here, never in the test suite (docs/PERFORMANCE.md). ``phases`` holds the data
phases (bundle, import, detection, backfill), ``serving`` the phases that measure Celery
workers and the HTTP server, ``server`` runs gunicorn, ``web`` measures HTTP latency and load,
``anomaly_seed`` writes a triage-sized anomaly history and ``report`` formats the figures.
"""
