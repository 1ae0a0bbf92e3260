"""Sphinx configuration for the sklearn-lm documentation.

Build with::

    python -m sphinx -W -b html docs docs/_build/html

The example gallery is rendered from ``examples/`` without running the
scripts unless ``SKLEARN_LM_PLOT_GALLERY=1`` is set in the environment (then
every ``examples/plot_*.py`` is executed and its figures are included).
"""

import os
from pathlib import Path

import sklearn_lm

DOCS = Path(__file__).resolve().parent

# -- Project -----------------------------------------------------------------
project = "sklearn-lm"
author = "sklearn_lm developers"
copyright = "sklearn_lm developers"
release = sklearn_lm.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Example gallery ---------------------------------------------------------
_run_gallery = os.environ.get("SKLEARN_LM_PLOT_GALLERY", "0").strip().lower()
PLOT_GALLERY = _run_gallery in {"1", "true", "yes", "on"}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "plot_",
    # demo.py is the script behind `make demo`, not a gallery page.
    "ignore_pattern": r"(__init__|demo)\.py",
    "plot_gallery": PLOT_GALLERY,
    "abort_on_example_error": True,
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("sklearn_lm",),
    "download_all_examples": False,
    # No sg_execution_times.rst in the source tree.
    "write_computation_times": False,
}

# -- HTML --------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = []
html_title = f"sklearn-lm {release}"

# -- Benchmarks page ---------------------------------------------------------
# `make bench` writes docs/benchmarks.md (and the memory benchmark
# docs/benchmarks_memory.md). The benchmarks page renders them when they exist
# (as Markdown with myst-parser, else as plain text) and shows a short note
# otherwise, so the build never depends on them. They are never documents of
# their own.
exclude_patterns += ["*.md"]
BENCHMARKS_MARKER = ".. benchmark-results"
BENCHMARK_FILES = [
    "benchmarks.md",
    "benchmarks_tasks.md",
    "benchmarks_parallel.md",
    "benchmarks_memory.md",
    "benchmarks_nist.md",
    "benchmarks_uncertainty.md",
    "benchmarks_step_cache.md",
    "benchmarks_cv.md",
]

try:
    import myst_parser  # noqa: F401
except ImportError:
    HAVE_MYST = False
else:
    HAVE_MYST = True
    extensions.append("myst_parser")
    source_suffix = {".rst": "restructuredtext"}
    myst_heading_anchors = 2

BENCHMARKS_PLACEHOLDER = """\
==========
Benchmarks
==========

.. note::

   No benchmark results in this build. Run ``make bench`` from a clone of the
   repository to produce ``docs/benchmarks.md``, then rebuild the
   documentation.
"""


def _benchmarks_source(files=BENCHMARK_FILES, placeholder=BENCHMARKS_PLACEHOLDER):
    present = [name for name in files if (DOCS / name).is_file()]
    if not present:
        return placeholder
    if HAVE_MYST:
        return "\n".join(
            f".. include:: {name}\n   :parser: myst_parser.sphinx_\n"
            for name in present
        )
    parts = ["==========\nBenchmarks\n==========\n"]
    for name in present:
        parts.append(f".. literalinclude:: {name}\n   :language: markdown\n")
    return "\n".join(parts)


# The custom-models page shows the NIST table the same way.
NIST_MARKER = ".. nist-results"
NIST_PLACEHOLDER = (
    "No NIST table in this build: run ``python -m benchmarks.bench_nist`` to "
    "produce ``docs/benchmarks_nist.md``.\n"
)


def _insert_benchmarks(app, docname, source):
    if docname == "benchmarks":
        source[0] = source[0].replace(BENCHMARKS_MARKER, _benchmarks_source())
    elif docname == "custom_models":
        nist = _benchmarks_source(["benchmarks_nist.md"], NIST_PLACEHOLDER)
        if not HAVE_MYST:  # drop the page title literalinclude adds
            nist = nist.split("\n", 4)[-1]
        source[0] = source[0].replace(NIST_MARKER, nist)


def _always_reread_benchmarks(app, env, added, changed, removed):
    return [name for name in ("benchmarks", "custom_models") if name in env.found_docs]


def setup(app):
    app.connect("source-read", _insert_benchmarks)
    app.connect("env-get-outdated", _always_reread_benchmarks)
