# skelex-web: `make demo` serves the app with demo data; `make test` runs the whole suite;
# `make check` runs exactly the static checks CI runs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/skelex
NODE_STAMP := frontend/node_modules/.installed-stamp

.PHONY: install demo test test-sqlite test-e2e test-postgres test-js check lint format migrate bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[web,ml,dev]'
	@touch $(STAMP)

$(NODE_STAMP): frontend/package.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

## demo: install, migrate, create the demo lead + project, import demo data, serve on 127.0.0.1:8000
demo: install migrate
	$(PY) manage.py demo

## test: the whole suite on SQLite (default), the Django suite again on PostgreSQL, and the JS tests
test: install test-sqlite test-e2e test-postgres test-js

# Browser tests run in their own process: Playwright's event loop must not be alive while the
# integration tests use Django's synchronous database calls.
test-sqlite: $(STAMP)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -m e2e $(PYTEST_ARGS)

test-postgres: $(STAMP)
	DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest tests/skelex_web -m "not e2e and not integration" -q $(PYTEST_ARGS)

test-js: $(NODE_STAMP)
	cd frontend && node --test test/

## check: format, lint, types, layer arrows (exactly what CI runs)
check: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd frontend && npx tsc --noEmit -p tsconfig.json

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var/test-artifacts .pytest_cache .mypy_cache .ruff_cache
