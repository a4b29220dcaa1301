# The two commands: `make run` (the product, with its demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
PORT ?= 8000
HOST ?= 127.0.0.1
export HOST

# Settings may also live in a .env file (KEY=value lines); every step below sees them.
ifneq (,$(wildcard .env))
include .env
export
endif

.PHONY: run test lint import-graph install install-test chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The browser tests drive Debian's chromium, never a downloaded browser build. Installed here when it
# is missing and apt can install it; where it cannot be, those tests are skipped and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; }; } || \
	  echo "make: chromium is not installed and could not be installed; the browser tests will be skipped" >&2

# Zero configuration: SQLite in var/ and a filesystem Celery broker, DEBUG on.
# Set DATABASE_URL / CELERY_BROKER_URL (in the environment or .env) for PostgreSQL and Redis.
run: export DEBUG ?= 1
# One worker process with threads: on Ctrl-C honcho sends SIGTERM to each process group and gives
# it 5 s; a prefork pool's children would die on that signal mid-task (and the filesystem broker's
# polling loop makes a prefork shutdown take about that long). Production keeps prefork.
run: export WORKER_POOL ?= threads
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) setup_periodic_tasks
	$(MANAGE) seed_slice6 --tenant demo-tenant --tenant-name "Demo Tenant"
	$(MANAGE) demo_access --tenant demo-tenant --base-url http://$(HOST):$(PORT)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --procfile Procfile --port $(PORT)

# Style and architecture first (seconds), then the suite against the local PostgreSQL and Redis
# (config/settings_test.py has the defaults).
test: install-test chromium lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff's rules and layout, and the one-way dependencies between the apps (pyproject.toml).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Which app imports which (docs/architecture.md); `make import-graph ARGS=-v` lists the imports.
import-graph: install-test
	$(BIN)/python scripts/import_graph.py $(ARGS)

clean:
	rm -rf $(VENV) var
