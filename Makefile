# phenokg — `make help` lists the targets. The two that matter: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install serve test test-fast lint typecheck check build db-start db-stop db-status bench clean

help:  ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install phenokg with its dev tools

serve: install  ## Run the service on the embedded graph database (builds the graph on first start)
	$(BIN)/phenokg serve --host 127.0.0.1 --port 8000

test: install  ## Run the whole test suite (unit, integration on the real embedded DB, slow full-HPO build)
	$(BIN)/pytest -q

test-fast: install  ## Tests without the slow ones
	$(BIN)/pytest -q -m "not slow"

lint: install  ## ruff
	$(BIN)/ruff check app kg models tests benchmarks

typecheck: install  ## mypy
	$(BIN)/mypy

check: lint typecheck  ## ruff + mypy

build: install  ## Build / update the graph from the shipped HPO release
	$(BIN)/phenokg kg build

db-start: install  ## Start the embedded graph server in the background
	$(BIN)/phenokg db start

db-stop: install  ## Stop the embedded graph server
	$(BIN)/phenokg db stop

db-status: install  ## Is the embedded graph server running?
	$(BIN)/phenokg db status

bench: install  ## Full-build benchmark (wall time, peak memory) -> docs/benchmarks.md figures
	$(BIN)/python benchmarks/build_graph.py

clean:  ## Remove caches (not the venv, not the graph data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
