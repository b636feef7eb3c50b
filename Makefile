# pipekit: two commands on a fresh machine.
#   make demo   set up .venv and run every job offline on the embedded demo data
#   make test   set up .venv, lint, check import contracts, and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
CORE_VENV := .venv-core
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint test-core test-all bench clean demo-clean demo-airflow demo-aws demo-cicd demo-ml

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml $(UV)
	$(UV) pip install --python $(PY) --quiet -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src adapters tests benchmarks
	$(VENV)/bin/lint-imports

# The core's tests must pass with no extras installed, on the library versions AWS Glue 5.0 ships
# (pandas 2.2, pyarrow of that era, numpy 1.26): a second, light venv proves both.
GLUE_ERA_PINS := "pandas==2.2.3" "pyarrow==14.0.2" "numpy==1.26.4"
test-core: $(UV)
	@test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(UV) pip install --python $(CORE_VENV)/bin/python --quiet -e . $(GLUE_ERA_PINS) pytest hypothesis
	$(CORE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/core

test-all: $(STAMP)
	$(PY) -m pytest -q

test: lint test-core test-all

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
	rm -rf .demo .bench .twin .pytest_cache .ruff_cache
