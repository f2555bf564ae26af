# The single command surface of the project. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := npx --no-install cdk
# The CDK CLI and jsii run on Node.js; keep them quiet and offline-friendly.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
CDK_FLAGS := --no-notices
PYTEST_FLAGS ?= -n 2
# Lock files: every Python package, transitive ones included, at one version with the sha256 of its files.
# `make install` and the layer builds install them with pip --require-hashes; `make lock` writes them (with uv).
LOCKS := locks
DEV_LOCK := $(LOCKS)/dev.txt
PIP_LOCK := $(LOCKS)/pip.txt
UV_LOCK := $(LOCKS)/uv.txt
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
LOCK_PYTHON := 3.11
LOCK_VENV := .venv-lock
UV := $(LOCK_VENV)/bin/uv
LOCK_FLAGS ?=
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes $(LOCK_FLAGS)
LAYER_RUNTIMES := python3.12 python3.13
LAYER_ARCHITECTURES := arm64 x86_64

.PHONY: help install asl service-models lock layers test test-unit test-handlers test-infra test-workflow e2e estimate doctor lint format synth deploy destroy diff bootstrap clean simulate

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): $(PIP_LOCK) $(DEV_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(PIP_LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	@# The Lambda code, one package (lambdas/search_router), importable from the venv like an editable install
	$(BIN)/python -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "search_router.pth").write_text(str(pathlib.Path("lambdas").resolve()) + "\n")'
	@touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP) node_modules/.package-lock.json ## Create .venv and install the locked Python (hashes) and Node dependencies

$(UV): $(UV_LOCK)
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --require-hashes -r $(UV_LOCK)
	@touch $(UV)

lock: $(UV) ## Re-resolve the lock files (venv, layers) with hashes from the requirements*.txt pins (uv in .venv-lock)
	$(UV_COMPILE) --universal --python-version $(LOCK_PYTHON) requirements-dev.txt -o $(DEV_LOCK) \
	  --custom-compile-command "make lock (the venv: requirements-dev.txt, Python $(LOCK_PYTHON)+, any platform)"
	echo "pip==$(PIP_VERSION)" | $(UV_COMPILE) --universal --python-version $(LOCK_PYTHON) - -o $(PIP_LOCK) \
	  --custom-compile-command "make lock (PIP_VERSION: the pip that make install installs first)"
	echo "uv==$(UV_VERSION)" | $(UV_COMPILE) --universal --python-version $(LOCK_PYTHON) - -o $(UV_LOCK) \
	  --custom-compile-command "make lock (UV_VERSION: the lock tool, which only make lock installs)"
	@set -euo pipefail; for runtime in $(LAYER_RUNTIMES); do for arch in $(LAYER_ARCHITECTURES); do \
	  case $$arch in arm64) platform=aarch64-manylinux_2_28;; x86_64) platform=x86_64-manylinux_2_28;; esac; \
	  for layer in sdk charts; do \
	    lock=$(LOCKS)/layer-$$layer-$$runtime-$$arch.txt; echo "$$lock ($$platform, CPython $${runtime#python})"; \
	    $(PYTHON) -m infra.layers requirements $$layer | $(UV_COMPILE) --python-platform $$platform \
	      --python-version $${runtime#python} --only-binary :all: - -o $$lock --custom-compile-command \
	      "make lock (the $$layer layer for $$platform, CPython $${runtime#python}, wheels only)"; \
	  done; done; done

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy infra lambdas app.py cli simulation

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install layers ## Lint, then run every test tier (e2e skipped without a deployed stack)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_FLAGS)

test-unit: install ## Pure domain tests
	$(BIN)/pytest tests/unit $(PYTEST_FLAGS)

test-handlers: install ## Handler tests (moto + botocore-validated Bedrock fake)
	$(BIN)/pytest tests/handlers $(PYTEST_FLAGS)

test-infra: install ## Template assertions, cdk-nag, cfn-lint
	$(BIN)/pytest tests/infra $(PYTEST_FLAGS)

test-workflow: install ## The synthesized state machine executed by moto's interpreter
	$(BIN)/pytest tests/workflow $(PYTEST_FLAGS)

e2e: install ## Tests against a deployed stack (set E2E_STACK_NAME and AWS credentials)
	$(BIN)/pytest tests/e2e -m e2e $(PYTEST_FLAGS)

estimate: install ## Tokens and dollars of a pipeline run and per 1M routes (offline; EXAMPLES=N EVAL=N)
	$(BIN)/python -m cli estimate $(if $(EXAMPLES),--examples $(EXAMPLES)) $(if $(EVAL),--eval $(EVAL))

doctor: install ## Check the AWS account before deploying or starting a run (read-only; your AWS credentials)
	$(BIN)/python -m cli doctor $(DOCTOR_ARGS)

layers: install ## Build the Lambda layers (boto3/botocore, matplotlib) from their locks for the Lambda platform (pip --platform, no Docker)
	$(BIN)/python -m infra.layers $$($(BIN)/python -c "from infra.config import load_config as l; c=l(); print(c.python_runtime, c.lambda_architecture)")

simulate: install layers ## Run the whole pipeline locally against a simulated Bedrock; writes ./out/ (CAPTURED=FILE: the retraining loop on your routed queries)
	$(BIN)/python -m simulation $(if $(CAPTURED),--captured $(CAPTURED)) $(SIMULATE_ARGS)

service-models: install ## Rewrite the router's trimmed botocore service models (lambdas/search_router/adapters/service_models/) from the installed botocore
	PYTHONPATH=lambdas $(BIN)/python -m search_router.adapters.service_models

asl: ## Print a state machine definition as deployed, retry policies expanded (ASL=stepfunctions/compensation.asl.json)
	@$(PYTHON) -m infra.asl $(or $(ASL),stepfunctions/pipeline.asl.json)

synth: install layers ## Write the CloudFormation templates to cdk.out (no AWS credentials or Docker needed)
	$(CDK) synth $(CDK_FLAGS) --quiet
	@ls cdk.out/*.template.json

diff: install ## Show what deploy would change
	$(CDK) diff $(CDK_FLAGS)

bootstrap: install ## One-time CDK bootstrap of the target account/Region
	$(CDK) bootstrap $(CDK_FLAGS)

deploy: install ## Deploy the stack (needs AWS credentials); pass CDK_ARGS="-c key=value" to override settings
	$(CDK) deploy $(CDK_FLAGS) --require-approval never $(CDK_ARGS)

destroy: install ## Remove the stack and everything the pipeline created
	$(CDK) destroy $(CDK_FLAGS) $(CDK_ARGS)

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out out .pytest_cache .ruff_cache .mypy_cache
