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

bench: install
	$(BIN)/python bench/contact_import.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
