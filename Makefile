# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)

.PHONY: demo test lint typecheck install docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The example blog: apply its migrations (SQLite file examples/blog/db.sqlite3), then serve it
# in debug mode, which creates the demo superuser and prints its credentials.
# `make demo PORT=8080` (and HOST=) serves elsewhere.
HOST ?= 127.0.0.1
PORT ?= 8000
demo: install
	cd examples/blog && ../../$(BIN)/transom db migrate
	cd examples/blog && TRANSOM_DEBUG=1 TRANSOM_SECRET_KEY=$${TRANSOM_SECRET_KEY:-demo-only-not-secret} \
	  ../../$(BIN)/transom run --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# make bench, bench-micro, bench-tfb, bench-admin
include bench/bench.mk
