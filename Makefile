# Shoal: `make run` starts everything, `make test` runs the whole suite, `make test-fast` its
# fast subset.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench demo demo-order clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runstack

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast subset (seconds): no worker, moto, live server, browser, ClickHouse server or other process.
FAST := not worker and not aws and not live and not browser and not clickhouse and not slow
test-fast: $(STAMP)
	$(PY) -m pytest -m "$(FAST)" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy console pools views_mv

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# A local AWS sandbox (moto) and the sandbox relay, with its own data folder: see docs/aws.md.
DEMO_DATA_DIR ?= var/demo
DEMO_MOTO_PORT ?= 5055
demo: $(STAMP)
	SHOAL_DATA_DIR=$(DEMO_DATA_DIR) $(PY) manage.py migrate --noinput
	AWS_ALLOW_EMULATOR=true SHOAL_DATA_DIR=$(DEMO_DATA_DIR) $(PY) manage.py rundemo --moto-port $(DEMO_MOTO_PORT)

# While `make demo` runs, from another terminal: a change to the sandbox's orders table (an INSERT;
# CHANGE=--update for a MODIFY, CHANGE=--delete for a REMOVE), in the demo's data folder.
demo-order: $(STAMP)
	SHOAL_DATA_DIR=$(DEMO_DATA_DIR) $(PY) manage.py demo_put_order $(CHANGE)

bench: $(STAMP)
	$(PY) bench/ingest.py

clean:
	rm -rf var/spool var/test-*
