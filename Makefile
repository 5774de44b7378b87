# The two commands a fresh clone needs: `make demo` and `make test`.
# Each creates .venv and installs the project into it when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck lint format dev bench clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/okr demo

# The suite runs against SQLite and a scratch PostgreSQL server that .ci/postgres.sh starts
# (installing PostgreSQL with apt where it is missing) and always stops, pass or fail; a
# server that cannot start fails the target (OKR_REQUIRE_POSTGRES=1), it is never skipped.
# The browser tests (tests/browser/) drive the Chromium that .ci/chromium.sh finds, or
# installs with apt where it can (exported as OKR_CHROMIUM); without one they skip and say
# why, unless OKR_REQUIRE_BROWSER=1 (CI, .ci/run) makes that a failure. Their screenshots
# go to test-artifacts/browser/. The tests are spread over the machine's cores (pytest-xdist).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory typecheck
	browser=$$(bash .ci/chromium.sh); \
	OKR_CHROMIUM=$${browser:-$${OKR_CHROMIUM:-}} \
	bash .ci/postgres.sh run $(BIN)/python -m pytest -q -n auto --dist worksteal

# mypy cannot follow the editable install's import hook, so it reads the package through
# a folder of links named like the installed package: .okr/typecheck/okr_metrics/<folder>.
TYPECHECK := .okr/typecheck
typecheck: $(STAMP)
	mkdir -p $(TYPECHECK)/okr_metrics
	for folder in pipelines connectors warehouse; do ln -sfn $(CURDIR)/$$folder $(TYPECHECK)/okr_metrics/$$folder; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml

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

# Speed, not part of `make test`: the warehouse's writes on SQLite and PostgreSQL (a year
# of scores for 1,000 KRs), then the whole pipeline against the sandbox at volume (the
# 20-KR quarter at 0 and 50 ms, dlt on the same GitHub endpoint, scoring, 1,000 KRs),
# which writes BENCHMARKS.md. OKR_BENCH_QUICK=1 checks the harness in about 2 minutes.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

# The project's modules are compiled first, as a wheel install compiles them: a process
# that may not write its bytecode (PYTHONDONTWRITEBYTECODE) would compile them every run.
bench: $(BENCH_STAMP)
	$(BIN)/python -m compileall -q pipelines connectors warehouse benchmarks
	bash .ci/postgres.sh run sh -c '$(BIN)/python benchmarks/warehouse_writes.py && $(BIN)/python benchmarks/pipeline_runs.py'

clean:
	rm -rf .okr .pytest_cache .ruff_cache
