# Tidings: `make run` serves the API and workers on http://127.0.0.1:8000; `make test` runs
# the tests, ruff and mypy. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck bench clean

install: $(BIN)/tidings

$(BIN)/tidings: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: install
	$(BIN)/tidings serve

# The Node test SMSC (tests/smsc/node/smsc.js) needs its npm packages, installed exactly as
# locked; npm ci leaves node_modules/.package-lock.json behind, touched here as the stamp.
NODE_SMSC := tests/smsc/node

$(NODE_SMSC)/node_modules/.package-lock.json: $(NODE_SMSC)/package.json $(NODE_SMSC)/package-lock.json
	npm ci --prefix $(NODE_SMSC) --no-audit --no-fund
	@touch $@

test: install $(NODE_SMSC)/node_modules/.package-lock.json
	$(BIN)/python -m pytest
	$(BIN)/ruff check tidings tests bench
	$(BIN)/mypy

lint: install
	$(BIN)/ruff check tidings tests bench

typecheck: install
	$(BIN)/mypy

# Benchmarks print figures (BENCHMARKS.md keeps them); set TIDINGS_BENCH_POSTGRES_URL to run
# them on PostgreSQL too.
bench: install
	$(BIN)/python bench/contact_import.py
	$(BIN)/python bench/sms_pipeline.py
	@if [ -n "$$TIDINGS_BENCH_POSTGRES_URL" ]; then \
		$(BIN)/python bench/contact_import.py --database-url "$$TIDINGS_BENCH_POSTGRES_URL"; \
		$(BIN)/python bench/sms_pipeline.py --database-url "$$TIDINGS_BENCH_POSTGRES_URL"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
