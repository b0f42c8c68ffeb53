# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run sync test lint bench clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.core
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,redis,ocr,heif,metrics]'
	touch $@

run: $(VENV)/.core
	$(PY) -m bot

# Register the slash commands with Discord once (or after they change), then run.
sync: $(VENV)/.core
	$(PY) -m bot --sync

test: $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check bot cogs tests bench
	$(VENV)/bin/lint-imports

bench: $(VENV)/.dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
