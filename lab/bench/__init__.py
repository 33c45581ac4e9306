"""Benchmarks: generate data at chain scale and print measured figures (``make bench``).

Timing lives here, never in the test suite (docs/PERFORMANCE.md). ``phases`` runs the measured
phases, ``anomaly_seed`` writes a triage-sized anomaly history, ``web`` measures HTTP latency
under load and ``report`` formats the figures.
"""
