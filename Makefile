# klinehouse: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The venv is rebuilt only when the dependency spec changes (install takes ~5 minutes).
DEPS_HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)

.PHONY: help venv demo test lint typecheck protos stack-up stack-down clean

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.X (>= 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)  ## Create or update .venv (skipped when nothing changed)

protos: venv  ## Generate the Python gRPC stubs from protos/
	@if [ -x scripts/gen_protos.sh ]; then scripts/gen_protos.sh; else echo "no protos yet"; fi

demo: venv  ## Run the whole pipeline on the embedded local stack
	$(BIN)/python -m klinehouse.demo

test: venv  ## Run the test suite (starts its own private stack)
	$(BIN)/pytest

lint:  venv ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/mypy klinehouse extract training inference

stack-up: venv  ## Start the local stack
	$(BIN)/klinehouse stack up

stack-down: venv  ## Stop the local stack
	$(BIN)/klinehouse stack down

clean: stack-down  ## Stop the stack and remove local state (.klinehouse/)
	rm -rf .klinehouse
