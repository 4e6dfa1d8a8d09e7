# Two set-up commands (see README): `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offline data mirror: ../shared/data when it exists, else official downloads.
MIRROR ?= $(firstword $(wildcard ../shared/data))
DEMO_DIR ?= runs/quickstart

.PHONY: install install-dev demo test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,inspect]'

demo: install
	$(BIN)/persona-testbed data fetch all $(if $(MIRROR),--mirror $(MIRROR),)
	$(BIN)/persona-testbed run configs/quickstart.toml --out $(DEMO_DIR)
	@echo "report: $(DEMO_DIR)/report/index.html  (persona-testbed status $(DEMO_DIR))"

test: install-dev
	$(BIN)/python -m pytest -q

bench: install-dev
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
