# pipekit: two commands on a fresh machine.
#   make demo     set up .venv from uv.lock and run every job offline on the embedded demo data
#   make test     set up .venv from uv.lock, lint, type-check, check import contracts, run every test
# Maintenance (docs/development.md):
#   make lock     re-resolve uv.lock and the Glue-era core pins after editing pyproject.toml
#   make upgrade  bump every pin to the newest allowed release, then run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# uv itself is pinned (and pyproject's [tool.uv] required-version checks it); it lives in its own
# small venv because `uv sync` makes .venv exactly what the lock says, and uv is not in the lock.
UV_VERSION := 0.13.9
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
CORE_VENV := .venv-core
CORE_IN := requirements/glue-core.in
CORE_LOCK := requirements/glue-core.txt
STAMP := $(VENV)/.installed
# Use this machine's Python; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test venv lint typecheck test-core test-all test-shuffled bench clean lock upgrade \
	demo-clean demo-airflow demo-aws demo-cicd demo-ml

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Install exactly what uv.lock pins (every extra), never resolving afresh: --frozen takes the lock as it is.
$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON) --quiet
	touch $(STAMP)

venv: $(STAMP)

# uv lock --check fails when pyproject.toml was edited without `make lock` (it keeps every locked pin).
lint: $(STAMP)
	$(UV) lock --check --python $(PYTHON) --quiet
	$(VENV)/bin/ruff check src adapters tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The core's tests must pass with no extras installed, on the library versions AWS Glue 5.0 ships
# (pandas 2.2, pyarrow of that era, numpy 1.26): a second, light venv proves both, from its own lock.
test-core: $(UV)
	@test -x $(CORE_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(CORE_VENV)
	$(UV) pip sync --quiet --python $(CORE_VENV)/bin/python $(CORE_LOCK)
	$(UV) pip install --quiet --python $(CORE_VENV)/bin/python --no-deps -e .
	$(CORE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/core

# Modules run in a random order, and tests in a random order within each module (pytest-random-order);
# the seed is printed at the top, and `make test-all PYTEST_ARGS="-p random_order --random-order-seed=N"`
# replays a run.
PYTEST_ARGS ?= --random-order
test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Every test in one global random order (slower: module fixtures are set up more than once).
test-shuffled: $(STAMP)
	$(PY) -m pytest -q --random-order-bucket=global

test: lint typecheck test-core test-all

lock: $(UV)
	$(UV) lock --python $(PYTHON)
	$(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--no-header --output-file $(CORE_LOCK) pyproject.toml $(CORE_IN)

upgrade: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	$(UV) pip compile --quiet --upgrade --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--no-header --output-file $(CORE_LOCK) pyproject.toml $(CORE_IN)
	$(MAKE) test

demo: demo-clean demo-airflow demo-aws demo-cicd demo-ml

demo-clean: $(STAMP)
	bash demo/01_clean.sh
demo-airflow: $(STAMP)
	bash demo/02_airflow.sh
demo-aws: $(STAMP)
	bash demo/03_aws.sh
demo-cicd: $(STAMP)
	bash demo/04_cicd.sh
demo-ml: $(STAMP)
	bash demo/05_ml.sh

bench: $(STAMP)
	bash benchmarks/run_all.sh

clean:
	rm -rf .demo .bench .twin .pytest_cache .ruff_cache .mypy_cache
