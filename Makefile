# ShelfWatch — the two commands a new developer needs:
#   make demo   virtualenv, SQLite, demo data, detection backfill, schedules, admin at :8000
#   make test   virtualenv, then the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := var/demo
DEMO_SEED ?= 7
DEMO_BACKFILL_DAYS ?= 60
PORT ?= 8000

.PHONY: venv demo demo-data serve test lint format online-retail clean-demo bench

# (Re)install when requirements.txt changes; a fresh clone creates the virtualenv here.
$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo-data: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py generate_demo_bundle $(DEMO_DIR) --seed $(DEMO_SEED)
	$(BIN)/python manage.py import_retail $(DEMO_DIR)
	$(BIN)/python manage.py detect_anomalies --last-days $(DEMO_BACKFILL_DAYS)
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py ensure_admin --username admin --reset

serve: venv
	@echo "Admin: http://127.0.0.1:$(PORT)/admin/   API: http://127.0.0.1:$(PORT)/api/v1/"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

demo: demo-data serve

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Real data: the UCI Online Retail file beside the project (see README).
ONLINE_RETAIL ?= ../shared/data/online_retail/online_retail.csv.gz
online-retail: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_transactions $(ONLINE_RETAIL) --preset online-retail
	$(BIN)/python manage.py detect_anomalies --backfill 2011-01-01 2011-12-09
	$(BIN)/python manage.py online_retail_report --file $(ONLINE_RETAIL)

clean-demo:
	rm -rf $(DEMO_DIR) db.sqlite3 db.sqlite3-wal db.sqlite3-shm

# Benchmarks (docs/PERFORMANCE.md): make bench [SIZE=S|M|L] [BENCH_ARGS="--skip web"].
# Runs on its own PostgreSQL database (emptied by the bench), created if missing.
SIZE ?= S
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/shelfwatch_bench
bench: venv
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py bench --size $(SIZE) $(BENCH_ARGS)
