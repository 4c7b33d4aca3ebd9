# One place that sets everything up: a virtualenv in .venv with the package and its dev extras.
# `make demo` runs the example sync against the local emulator; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench dist clean cluster-up cluster-down cluster-status

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv>=0.4"
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python scripts/run_example_sync.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python benchmarks/run_all.py

# The wheel and the sdist, in dist/ (tests/integration/test_packaging.py installs the wheel in a clean venv).
dist: setup
	rm -rf dist
	$(BIN)/uv build --quiet --out-dir dist

clean:
	rm -rf $(VENV) dist .airflow-home .pytest_cache .mypy_cache .ruff_cache

# A local Airflow with the CeleryExecutor (docs/cluster.md): api-server, scheduler, DAG processor,
# triggerer and two Celery workers on loopback; PostgreSQL and Redis must run on 127.0.0.1.
# More options through CLUSTER_ARGS, e.g. make cluster-up CLUSTER_ARGS="--emulator http://127.0.0.1:8765".
CLUSTER_ARGS ?=

cluster-up: setup
	$(BIN)/python -m scripts.cluster up $(CLUSTER_ARGS)

cluster-status: setup
	$(BIN)/python -m scripts.cluster status $(CLUSTER_ARGS)

cluster-down: setup
	$(BIN)/python -m scripts.cluster down $(CLUSTER_ARGS)
