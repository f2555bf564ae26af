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

.PHONY: help install asl layers test test-unit test-handlers test-infra test-workflow e2e estimate doctor lint format synth deploy destroy diff bootstrap clean simulate

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# The Lambda code, one package (lambdas/search_router), importable from the venv like an editable install
	$(BIN)/python -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "search_router.pth").write_text(str(pathlib.Path("lambdas").resolve()) + "\n")'
	@touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP) node_modules/.package-lock.json ## Create .venv and install pinned Python and Node dependencies

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

layers: install ## Build the Lambda layers (pinned boto3/botocore, matplotlib) for the Lambda platform (pip --platform, no Docker)
	$(BIN)/python -m infra.layers $$($(BIN)/python -c "from infra.config import load_config as l; c=l(); print(c.python_runtime, c.lambda_architecture)")

simulate: install layers ## Run the whole pipeline locally against a simulated Bedrock; writes ./out/
	$(BIN)/python -m simulation $(SIMULATE_ARGS)

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
