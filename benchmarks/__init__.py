"""vbert's performance suite: ``python -m benchmarks`` (or ``make bench``, ``vbert bench``).

Every figure is the median of repeated runs after a warm-up, and the headline numbers are
ratios measured in the same run, because absolute times on a shared machine are noisy. The
suite writes ``report.json`` (every measurement, the settings and the machine) and
``report.md`` (the tables) into its output folder; ``docs/performance.md`` explains them.
The entry point is :func:`benchmarks.suite.run_suite`; this file imports nothing so that
other modules of the package load without the suite's dependencies.
"""
