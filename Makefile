# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make demo   creates .venv, installs pfrx, runs the demo
#   make test   creates .venv, installs pfrx[dev], runs every check
# bash with pipefail: a recipe that filters a command's output still fails when the command does.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Python 3.11 or newer: python3.11 if it is on PATH, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3.11)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# pip -qq: errors only (one -q still shows setuptools' editable-install banner)
PIP_INSTALL := $(PY) -m pip install -qq
# The docs build: the site of mkdocs.yml into site/ (tests/docs/ reads it). --strict makes every
# warning fatal; only INFO lines are filtered out (never --quiet, which hides the warnings too).
MKDOCS_YML := mkdocs.yml
SITE := site

.PHONY: demo test lint typecheck pytest docs build-docs bench mutate screenshots clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "pfrx needs Python >= 3.11: run make PYTHON=/path/to/python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip

$(STAMP_RUN): $(PY) setup.cfg pyproject.toml
	$(PIP_INSTALL) -e .
	@touch $@

$(STAMP_DEV): $(PY) setup.cfg pyproject.toml
	$(PIP_INSTALL) -e '.[dev]'
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
	@$(MAKE) --no-print-directory build-docs

# The build alone, without the install step: tests/docs/ runs it on a tiny project with a
# broken link (PY=... MKDOCS_YML=... SITE=...) and expects it to fail.
build-docs:
	@NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -f $(MKDOCS_YML) -d $(abspath $(SITE)) 2>&1 \
		| { grep -v '^INFO ' || true; }

# pytest last, so its closing line is the last word of the run.
test: lint typecheck docs pytest

bench: $(STAMP_RUN)
	$(PY) -m benchmarks $(ARGS)

# Refresh docs/img/dashboard.png from the dashboard test (a real browser on live streams).
screenshots: $(STAMP_DEV)
	PFRX_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/observe/test_dashboard.py -k docs_screenshot

# Mutation testing of the core (minutes, not part of make test): docs/mutation.md.
mutate: $(STAMP_DEV)
	$(PY) -m mutmut run $(MUTATE_ARGS)
	$(PY) tools/mutation_report.py

clean:
	rm -rf $(VENV) mutants build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache site
