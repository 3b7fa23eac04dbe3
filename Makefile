# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   - create .venv, install tlsgate, scan a local demo endpoint, write reports
#   make test   - install the test servers (apt) and .venv with tlsgate's dev tools; run ruff, mypy, the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest schemas servers clean

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
	$(BIN)/ruff check scanner tests tools bench
	$(BIN)/ruff format --check scanner tests tools bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# openssl, nginx, gnutls-serv, sslscan and chromium from apt when missing: the tests run real servers on loopback
# and open the HTML report in a real headless browser.
servers:
	bash tools/install-test-servers.sh

pytest: $(VENV)/.dev servers
	$(BIN)/pytest

test: lint typecheck pytest

# Regenerate reports/schema/*.json after changing the facts or report models.
schemas: $(VENV)/.dev
	$(BIN)/python -m scanner.schemas

clean:
	rm -rf $(VENV) tlsgate-demo dist build .pytest_cache .mypy_cache .ruff_cache
