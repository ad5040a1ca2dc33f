# Two entry points (see README): `make demo` and `make test`. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test suite starts real servers from (PostgreSQL for the store tests,
# Prometheus for telemetry) and graphviz, whose `dot` lays out and draws the service graph.
TEST_DEBS := postgresql prometheus graphviz
DEMO_DEBS := prometheus graphviz

.PHONY: demo test lint typecheck unit venv debs clean bench

venv: $(STAMP)

# The playground is a distribution of its own (playground/pyproject.toml), kept out of meshbot's
# wheel; the tests and `make demo` import it, so every venv gets it, editable.
$(STAMP): pyproject.toml playground/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./playground
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

debs:
	bash scripts/ensure-debs.sh $(TEST_DEBS)

# The demo's Prometheus scrapes the playground's traffic; graph draws with graphviz.
demo: venv
	bash scripts/ensure-debs.sh $(DEMO_DEBS)
	$(BIN)/meshbot demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv debs
	$(BIN)/pytest -q -n 2

test: lint typecheck unit

bench: venv debs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
