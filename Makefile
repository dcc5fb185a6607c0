# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make demo   creates .venv, installs pfrx, runs the demo
#   make test   creates .venv, installs pfrx[dev], runs every check
# Python 3.11 or newer: python3.11 if it is on PATH, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3.11)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest docs bench mutate clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "pfrx needs Python >= 3.11: run make PYTHON=/path/to/python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

$(STAMP_DEV): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(PY) -m pfrx demo $(ARGS)

lint: $(STAMP_DEV)
	$(PY) -m ruff check pfrx tests benchmarks
	$(PY) -m ruff format --check pfrx tests benchmarks

typecheck: $(STAMP_DEV)
	$(PY) -m mypy pfrx

pytest: $(STAMP_DEV)
	$(PY) -m pytest -q --nbmake tests notebooks $(PYTEST_ARGS)

docs: $(STAMP_DEV)
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet; else echo "no mkdocs.yml yet: docs skipped"; fi

# pytest last, so its closing line is the last word of the run.
test: lint typecheck docs pytest

bench: $(STAMP_RUN)
	$(PY) -m benchmarks $(ARGS)

# Mutation testing of the core (minutes, not part of make test): docs/mutation.md.
mutate: $(STAMP_DEV)
	$(PY) -m mutmut run $(MUTATE_ARGS)
	$(PY) tools/mutation_report.py

clean:
	rm -rf $(VENV) mutants build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache site
