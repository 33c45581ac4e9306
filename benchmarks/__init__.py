"""Benchmarks: commands that generate data at chain scale and print measured figures.

Nothing here is imported by the product's request or task paths; ``make bench`` drives it
(see docs/PERFORMANCE.md). Timing lives here, never in the test suite.
"""
