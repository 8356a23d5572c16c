# Liaison — developer commands. `make run` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint bench system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Liaison needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## run: serve the demo school on http://127.0.0.1:$(PORT) (embedded broker, SQLite file)
run: $(STAMP)
	$(VENV)/bin/liaison serve --demo --port $(PORT)

## system-deps: the programs the test suite starts itself (redis-server, Chromium)
system-deps:
	@./scripts/system-deps.sh

## test: the whole suite (unit, contract, integration, browser); starts its own Redis servers
test: $(STAMP) system-deps
	$(PY) -m pytest -q
	$(PY) -m pytest -q -o addopts="" tests/browser

## lint: ruff and mypy
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## bench: load benchmarks (Liaison embedded, over Redis with 1 and 2 gateways, the reference server);
## a few minutes on 2 cores; report in load/results/<timestamp>/ (docs/benchmarks.md)
bench: $(STAMP) system-deps
	$(PY) -m load bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
