"""The lab: offline tooling that measures the product, never part of it.

The simulator (``lab.simulator``), scoring against ground truth (``lab.scoring``), the offline
evaluation (``lab.evaluation``), the seed-method baseline (``lab.seed_method``), the demo
walk-through and the benchmarks (``lab.bench``). The lab sits at the top of the dependency graph:
it may import the product, nothing in the product imports it (import-linter enforces this), and
production settings can leave it out (``SHELFWATCH_LAB=false``). Command names are unchanged:
``generate_demo_bundle``, ``evaluate_detection``, ``demo_walkthrough``, ``bench``,
``bench_phase``.
"""
