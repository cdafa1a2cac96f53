# klinehouse: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The venv is rebuilt only when the dependency spec changes (install takes ~5 minutes).
DEPS_HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)

.PHONY: help venv node-deps proto-baseline demo notebook test lint typecheck protos stack-up stack-down clean

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.X (>= 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)  ## Create or update .venv (skipped when nothing changed)

# Node tools of the checks (buf for tests/k8s; @grpc/grpc-js + @grpc/proto-loader for the
# Node client example of docs/grpc-clients.md), as locked in package-lock.json, installed only
# when the lockfile changed (`npm install --no-save`: `npm ci` rejects a lockfile that lacks
# the optional buf binaries of other platforms, which some registry mirrors do not serve).
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then \
	  npm install --no-audit --no-fund --no-save --loglevel=error && rm -f node_modules/.installed-* && touch $@; \
	else echo "npm not found: the buf checks in tests/k8s will be skipped"; fi

node-deps: $(NODE_STAMP)  ## Install the npm tools (buf, grpc-js) from package-lock.json (skipped when unchanged)

PROTO_RELEASE ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
proto-baseline: node-deps  ## Snapshot protos/ as released (protos/releases/v$(PROTO_RELEASE).binpb) for buf breaking
	mkdir -p protos/releases && node_modules/.bin/buf build protos -o protos/releases/v$(PROTO_RELEASE).binpb

protos: venv  ## Generate the Python gRPC stubs from protos/
	@if [ -x scripts/gen_protos.sh ]; then scripts/gen_protos.sh; else echo "no protos yet"; fi

# `make demo DEMO_ARGS=-v` also shows dbt's, Airflow's and the libraries' logs (else in .klinehouse/logs/).
DEMO_ARGS ?=
demo: venv  ## Run the whole pipeline on the embedded local stack
	$(BIN)/python -m app.demo $(DEMO_ARGS)

notebook: venv  ## Write notebooks/explore_and_model.ipynb from its .py and run it on the settings' warehouse
	$(BIN)/python -m app.notebook notebooks/explore_and_model.py

test: venv node-deps  ## Run the import-layer contracts and the test suite (starts its own private stack)
	$(BIN)/lint-imports
	$(BIN)/pytest

PACKAGES := klinehouse extract transform expectations training inference app devstack

lint:  venv ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/lint-imports

stack-up: venv  ## Start the local stack
	$(BIN)/klinehouse stack up

stack-down: venv  ## Stop the local stack
	$(BIN)/klinehouse stack down

clean: stack-down  ## Stop the stack and remove local state (.klinehouse/)
	rm -rf .klinehouse
