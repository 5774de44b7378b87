# The two commands a fresh clone needs: `make demo` and `make test`.
# Each creates .venv and installs the project into it when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format dev clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/okr demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/okr lint

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The Dagster UI on http://127.0.0.1:3000, with the instance kept in .okr/dagster.
dev: $(STAMP)
	mkdir -p .okr/dagster
	cp dagster.yaml .okr/dagster/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.okr/dagster $(BIN)/dagster dev

clean:
	rm -rf .okr .pytest_cache .ruff_cache
