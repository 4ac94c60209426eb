# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)

.PHONY: run test dev lint install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install  ## Sync, check and refresh everything against the local sandbox (or real services).
	$(BIN)/dagster asset materialize -m pipeline --select '*'

test: install  ## Run the test suite in-process against the sandboxes.
	$(BIN)/python -m pytest

dev: install  ## Open the Dagster UI on http://127.0.0.1:3000.
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:  ## Forget the local warehouse, sandbox state and Dagster history.
	rm -rf .tollgate
