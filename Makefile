# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
SELECT ?= *
PORT ?= 3000

.PHONY: run test dev lint install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Everything runs as the gate job, not a selection of all its assets: Dagster then rebuilds no
# job subset in each step's process (about 1.6 s a step at 1,000 tables; benchmarks/README.md).
# A selection is checked first (a clear message instead of Dagster's traceback); everything, the
# default, needs no check, and skipping it spares `make run` a Python start (1-2 s).
run: install  ## Sync, check and refresh SELECT (default everything) against the sandbox or real services.
	$(if $(filter-out *,$(SELECT)),$(BIN)/python -m pipeline.selection '$(SELECT)')
	$(BIN)/dg launch $(if $(filter-out *,$(SELECT)),--assets '$(SELECT)',--job tollgate_gate)

test: install  ## Run the test suite in-process against the sandboxes.
	$(BIN)/python -m pytest -n 4 --dist loadfile

dev: install  ## Open the Dagster UI on http://127.0.0.1:$(PORT) (make dev PORT=3001).
	$(BIN)/dg dev -h 127.0.0.1 -p $(PORT)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:  ## Forget the local warehouse, sandbox state and Dagster history.
	rm -rf .tollgate
