# Two set-up commands (see README): `make demo` and `make test`; `make check` before a commit (CONTRIBUTING.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Offline data mirror: ../shared/data when it exists, else the public origins (`data fetch quickstart`: 4 states).
MIRROR ?= $(firstword $(wildcard ../shared/data))
DEMO_DIR ?= runs/quickstart
# The oldest Python supported (pyproject requires-python; README; tests/test_release.py checks all agree).
MIN_PYTHON := 3.11
# Modules type-checked with mypy --strict (settings in pyproject [tool.mypy]); grow this list, never shrink it.
MYPY_STRICT := src/persona_testbed/core src/persona_testbed/llm src/persona_testbed/data/manifest.py \
	src/persona_testbed/personas/record.py src/persona_testbed/prompts/record.py \
	src/persona_testbed/feedback/record.py src/persona_testbed/bench/records.py

.PHONY: python-version install install-dev demo test check lint typecheck architecture dist bench clean

# The interpreter the venv uses (an existing venv's, else $(PY)); its version when older than
# MIN_PYTHON ("missing" when it does not run), empty when fine.
PYCHECK = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY))
py_too_old = $(strip $(shell $(PYCHECK) -c 'import sys; print("" if sys.version_info >= (3, 11) else "%d.%d.%d" % tuple(sys.version_info[:3]))' 2>/dev/null || echo missing))

# One line naming the minimum version, before any install work (make's $(error) stops right here).
python-version:
	$(eval _old := $(py_too_old))
	$(if $(_old),$(error $(too_old_msg)))
	@true
too_old_msg = persona-testbed needs Python >= $(MIN_PYTHON), but $(PYCHECK) is $(_old): run make with PY=python3.12 (or any 3.11+; `make clean` first if .venv exists)

$(BIN)/python: | python-version
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall only when the package metadata or the pins change (make check + make test share one).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,inspect]'
	@touch $@ $(VENV)/.installed

install: python-version $(VENV)/.installed

install-dev: python-version $(VENV)/.installed-dev

demo: install
	$(BIN)/persona-testbed data fetch $(if $(MIRROR),all --mirror $(MIRROR),quickstart)
	$(BIN)/persona-testbed run configs/quickstart.toml --out $(DEMO_DIR)
	@echo "report: $(DEMO_DIR)/report/index.html  (persona-testbed status $(DEMO_DIR))"

test: install-dev
	$(BIN)/python -m pytest -q

# ruff lint + format check, mypy (strict on MYPY_STRICT), the import-layer contract.
check: lint typecheck architecture

lint: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install-dev
	$(BIN)/mypy $(MYPY_STRICT)

architecture: install-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py

# sdist + wheel into dist/, built offline with the pinned backend (hatchling is a dev dependency).
dist: install-dev
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	@ls -l dist

bench: install-dev
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache dist build
