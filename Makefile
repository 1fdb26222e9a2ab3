# PerfAnalysis: `make up` runs the stack locally (no Docker), `make test` runs the whole suite.
# Both install what they need first: a virtualenv with the project, and Debian packages for tests.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# what the stack runs (the server extras), and that plus the test and lint tools: each its stamp
SERVER_STAMP := $(VENV)/.installed-server
DEV_STAMP := $(VENV)/.installed-dev
# what building the venv needs on a fresh Debian 12: venv itself, and a compiler with the C and
# Python headers for gunicorn_h1c (published as source only) and ingest/_batchfast.c
BUILD_PACKAGES := python3-venv python3-dev gcc libc6-dev
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install install-server debian-packages up down status reload admin test test-unit test-integration lint format bench clean

help:
	@echo "make up        install and start the local stack: InfluxDB, admin, ingest, exporter, Prometheus, Alertmanager, alert sink"
	@echo "make down      stop what 'make up' started"
	@echo "make status    show what runs and whether it is healthy"
	@echo "make reload    Prometheus and Alertmanager reload their configuration (after 'alerting generate'); fails if refused"
	@echo "make admin ARGS='create-tenant acme \"Acme Corp\"'   an admin command on the local stack"
	@echo "make test      install everything (Debian packages too) and run lint and the whole suite"
	@echo "make bench     run the benchmarks in bench/ (apart from the tests)"
	@echo "make clean     stop the stack in var/, then remove it, the virtualenv, the caches and build output"

# $(call venv_with,EXTRA): the venv, with the project installed editable with that extra;
# pip shows what it collects and builds, the first time a few minutes
define venv_with
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	scripts/install-debian-packages.sh $(BUILD_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	@echo "installing the project with '[$(1)]' into $(VENV)"
	$(PY) -m pip install -e '.[$(1)]'
endef

$(SERVER_STAMP): pyproject.toml setup.py ingest/_batchfast.c
	$(call venv_with,server)
	touch $(SERVER_STAMP)

# [dev] includes [server]: its stamp counts for both
$(DEV_STAMP): pyproject.toml setup.py ingest/_batchfast.c
	$(call venv_with,dev)
	touch $(SERVER_STAMP) $(DEV_STAMP)

install-server: $(SERVER_STAMP)

install: $(DEV_STAMP)

debian-packages:
	scripts/install-debian-packages.sh

# and the command-line tools docs/operations.md backs the stack up with: sqlite3, influx (and
# influxd backup/restore, which come with influxdb)
up: install-server
	scripts/install-debian-packages.sh influxdb prometheus prometheus-alertmanager sqlite3 influxdb-client
	$(PY) -m perfanalysis.devstack up

# Stopping needs only the standard library: without the venv, the system's Python does it.
down:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m perfanalysis.devstack down

status: install-server
	$(PY) -m perfanalysis.devstack status

# SIGHUP to the stack's Prometheus and Alertmanager (PID files), then their reload metrics checked
reload: install-server
	$(PY) -m perfanalysis.devstack reload

# perfanalysis admin with the local stack's settings (its database, InfluxDB and their users)
admin: install-server
	$(PY) -m perfanalysis.devstack admin $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The suite's tests run in TEST_WORKERS processes (pytest-xdist; "logical" is one per CPU, 0 runs
# them in this process), each module's tests in one worker so that a module's servers start once;
# then those marked serial (they measure the host's CPU, which the others would disturb), alone.
TEST_WORKERS ?= logical
PYTEST := $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope
PYTEST_ALONE := $(VENV)/bin/pytest -p no:xdist

test: install debian-packages lint
	$(PYTEST) -m "not serial" --durations=25
	$(PYTEST_ALONE) -m serial

test-unit: install
	$(PYTEST) -m "not integration"

test-integration: install debian-packages
	$(PYTEST) -m "integration and not serial"
	$(PYTEST_ALONE) -m "integration and serial"

bench: install debian-packages
	scripts/install-debian-packages.sh wrk
	$(PY) -m bench.exporter
	$(PY) -m bench.push
	$(PY) -m bench.ingest
	$(PY) -m bench.report
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} $(PY) -m bench.admin

# var goes, so the stack that keeps its state there stops first; if it cannot, nothing is removed
# (and what the editable install built in the tree: its metadata and ingest's C extension)
clean:
	$(MAKE) --no-print-directory down PERFANALYSIS_VAR_DIR=$(CURDIR)/var
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
	rm -rf perfanalysis.egg-info build ingest/_batchfast.*.so
