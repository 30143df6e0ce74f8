# xrm: every target works on a fresh clone with only Python 3.11; it makes .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: demo test lint bench clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

## make demo: make the sample business, load it, run the pipeline, print a summary
demo: $(STAMP)
	$(BIN)/xrm --store demo/xrm.duckdb demo --dir demo $(ARGS)

## make test: lint (ruff), type check (mypy), the whole test suite
test: $(STAMP) lint
	sh scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

## make bench: benchmarks against peers; writes BENCHMARKS.md (long: minutes to hours)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,bench]'
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache

## make docs: regenerate docs/cli.md and docs/settings.md from the code
docs: $(STAMP)
	$(BIN)/python scripts/gen_docs.py
