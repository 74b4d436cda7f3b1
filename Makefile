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

test: install
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
