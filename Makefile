# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --quiet --disable-pip-version-check
export DEBUG ?= true

.PHONY: run test bench lint typecheck check-deploy install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip 2>/dev/null

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install $(PIP_FLAGS) -r requirements.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import django, mlflow, celery" && touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install $(PIP_FLAGS) -r requirements-dev.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import pytest, pytest_django" && touch $@

install: $(VENV)/.runtime

# Migrates, creates the first admin (password printed once), then serves the UI on
# http://127.0.0.1:8000 with a Celery worker and beat on the embedded broker.
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_admin
	$(BIN)/python manage.py init_keys
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C stops the web server and the worker)"
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/celery -A config worker --beat --concurrency 2 --loglevel INFO & \
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(VENV)/.dev
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(BIN)/python -m bench

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) var/test
