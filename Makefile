# The two commands a new user needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
EXTRAS ?= tensorflow-cpu,test,bench
PYTEST_ARGS ?=

.PHONY: demo test lint doctest docs bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

## Train the sinc curve fit and a digits classifier, compare with scikit-learn's MLP,
## and write demo_output/demo.png.
demo: $(VENV)/.installed
	$(PY) examples/demo.py --output demo_output

## Install, then run the test suite (pytest's "no tests collected" counts as failure).
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check . || true

doctest: $(VENV)/.installed
	$(PY) -m pytest --doctest-modules sklearn_lm -p no:cacheprovider -q

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build dist *.egg-info demo_output docs/_build
