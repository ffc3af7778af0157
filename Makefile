# Quick start: `make run` sets everything up and starts the app; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup run gallery test test-fast bench bench-api bench-manufacturing bench-batching bench-load lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)
	sh scripts/install-system-deps.sh

## Start the app on http://127.0.0.1:8000 (REST API under /api/v1) with an embedded worker,
## on the embedded defaults: SQLite database and SQLite-backed queue in instance/.
run: setup
	$(BIN)/parametric serve

## Render every template's presets (files, pictures and an index page) into output/gallery.
gallery: setup
	$(BIN)/parametric gallery --out output/gallery

## The whole suite, property-based tests included.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The suite without the slow property-based runs, the integration tests (PrusaSlicer, rs274, OctoPrint,
## PostgreSQL, Redis, live servers, PDF job sheets) and the browser tests: `make test` runs them all.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not integration and not browser" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/bench_render.py

## Order latency on a cache hit and order throughput with two workers, against the bare render.
bench-api: setup
	$(BIN)/python bench/bench_api.py

## From an order to G-code (real PrusaSlicer) and a job sheet, per template: our time against the slicer's.
bench-manufacturing: setup
	$(BIN)/python bench/bench_manufacturing.py

## True-shape nesting against rectpack on bounding boxes (sheets), ESICUP strip density, part-in-part, 200 parts;
## copies per print plate against PrusaSlicer's own --duplicate maximum, and a plate of mixed orders.
bench-batching: setup
	$(BIN)/python bench/bench_batching.py
	$(BIN)/python bench/bench_plates.py

## Cached and uncached endpoints under a bounded load (a burst of 50 new previews included): p50/p99 and errors,
## on SQLite + SQLite queue and on PostgreSQL + Redis.
bench-load: setup
	$(BIN)/python bench/bench_load.py

lint: setup
	$(BIN)/ruff check parametric templates_models web tests bench

clean:
	rm -rf output/cache output/gallery .pytest_cache .hypothesis
