# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   - create .venv, install tlsgate, scan a local demo endpoint, write reports
#   make test   - create .venv, install tlsgate with its dev tools, run ruff, mypy and the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/tlsgate demo --out tlsgate-demo

lint: $(VENV)/.dev
	$(BIN)/ruff check scanner tests
	$(BIN)/ruff format --check scanner tests

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/pytest

test: lint typecheck pytest

# Regenerate reports/schema/*.json after changing the facts or report models.
schemas: $(VENV)/.dev
	$(BIN)/python -m scanner.schemas

clean:
	rm -rf $(VENV) tlsgate-demo dist build .pytest_cache .mypy_cache .ruff_cache
