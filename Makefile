# Quick start: `make run` sets everything up and renders the catalog; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup run test test-fast bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)
	sh scripts/install-system-deps.sh

## Render every template's presets (files, pictures and an index page) into output/gallery.
run: setup
	$(BIN)/parametric gallery --out output/gallery

## The whole suite, property-based tests included.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The suite without the slow property-based runs.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/bench_render.py

lint: setup
	$(BIN)/ruff check parametric templates_models web tests bench

clean:
	rm -rf output/cache output/gallery .pytest_cache .hypothesis
