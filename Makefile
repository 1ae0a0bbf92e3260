# The two commands a new user needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
EXTRAS ?= tensorflow-cpu,test,bench,dask
PYTEST_ARGS ?=

.PHONY: demo test lint doctest docs docs-gallery bench bench-quick bench-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

## Train the sinc curve fit and a digits classifier, compare with scikit-learn's MLP,
## and write demo_output/demo.png.
demo: $(VENV)/.installed
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) examples/demo.py --output demo_output

## Install, then run the test suite (pytest's "no tests collected" counts as failure).
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

doctest: $(VENV)/.installed
	$(PY) -m pytest --doctest-modules sklearn_lm -p no:cacheprovider -q

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[$(EXTRAS),docs]"
	touch $@

## Build the HTML documentation into docs/_build/html (examples rendered, not run).
docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

## Same, running every examples/plot_*.py and including its figures (a few minutes).
docs-gallery: $(VENV)/.docs-installed
	SKLEARN_LM_PLOT_GALLERY=1 $(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

## The earlier TensorFlow LM package, compared in the benchmarks (not a dependency).
bench-deps: $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps tf-levenberg-marquardt==1.0.3

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build dist *.egg-info demo_output docs/_build docs/auto_examples docs/gen_modules
