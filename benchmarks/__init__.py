"""Benchmarks: sklearn_lm against the optimisers a user would pick instead.

Run everything with ``python -m benchmarks.run`` (``--quick`` for a short
version). Every contender runs in its own process with the same thread
settings; the results are written to ``docs/benchmarks.md`` and the figures
to ``docs/_static/benchmarks_*.png``.

Modules
-------
config
    Budgets, sizes and thread settings of a full and a quick run.
tasks
    The data sets and the shared initial weights.
clock
    The stopwatch that records ``(elapsed, loss)`` while a contender trains.
numpy_mlp
    A one-hidden-layer tanh network and its closed-form Jacobian in NumPy.
contenders
    One module per family of contenders, and the registry of who runs where.
costmodel
    Matrix-multiplication speed of this machine and FLOPs of an LM step.
worker
    Runs one contender on one task with one seed (a child process).
summary, report, plots
    Turn the raw results into medians, the Markdown page and the figures.
run
    The command line entry point.

Nothing in this package is imported by ``sklearn_lm``.
"""
