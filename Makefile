# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)

.PHONY: demo conduit test test-sqlalchemy-lowest fuzz lint typecheck install docs clean

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

# The RealWorld "Conduit" backend API (examples/conduit): apply its migrations, then serve it
# on http://$(HOST):$(PORT)/api. SQLite file examples/conduit/db.sqlite3 by default;
# `make conduit DATABASE_URL=postgresql://user@host/db` (or in the environment) for PostgreSQL.
# The fallback secret key is for trying it locally only: set TRANSOM_SECRET_KEY elsewhere.
conduit: install
	cd examples/conduit && ../../$(BIN)/transom db migrate
	cd examples/conduit && TRANSOM_SECRET_KEY=$${TRANSOM_SECRET_KEY:-conduit-demo-only-not-secret} \
	  ../../$(BIN)/transom run --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# Fuzz request parsing for longer than `make test` does (tests/test_fuzz.py): random, not
# derandomized, FUZZ_EXAMPLES examples per test (default 3000). Failures are kept in
# .hypothesis/ and replayed first by the next run.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/test_fuzz.py -q

# The data layer on the lowest SQLAlchemy that pyproject.toml declares, in a
# venv of its own: `make test` covers the latest. Bounded to the db tests and auth on SQLite.
LOWEST_VENV := .venv-lowest
LOWEST_PINS := 'sqlalchemy[asyncio]==2.0.46'
LOWEST_STAMP := $(LOWEST_VENV)/.installed-$(shell cat pyproject.toml Makefile | md5sum | cut -c1-8)

$(LOWEST_STAMP): pyproject.toml
	test -x $(LOWEST_VENV)/bin/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/pip install -q --upgrade pip
	$(LOWEST_VENV)/bin/pip install -q -e '.[dev]' $(LOWEST_PINS)
	@touch $(LOWEST_STAMP)

test-sqlalchemy-lowest: $(LOWEST_STAMP)
	$(LOWEST_VENV)/bin/python -c "import sqlalchemy; print('SQLAlchemy', sqlalchemy.__version__)"
	$(LOWEST_VENV)/bin/pytest -p no:cacheprovider tests/db
	$(LOWEST_VENV)/bin/pytest -p no:cacheprovider tests/auth -k sqlite

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .mypy_cache .ruff_cache

# make bench, bench-micro, bench-tfb, bench-admin
include bench/bench.mk
