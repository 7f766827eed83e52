# The two commands a new user needs (see README.md):
#   make local   run the whole pipeline on this machine
#   make test    run the full test suite
# Python tools go into .venv (moto), .venv-sam (SAM CLI, cfn-lint) and .venv-checkov; nothing global.

SHELL := /bin/bash
VENV := .venv
CARGO ?= cargo

.PHONY: all deps test unit lint fmt clippy template-lint local local-up bench clean-venv

all: test

## Python dependencies of the tests, in .venv (re-installed when requirements-dev.txt changes).
deps: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## The full suite: formatting, lints, the SAM template, unit, integration and end-to-end tests.
test: deps fmt clippy template-lint
	$(CARGO) build --bins
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

template-lint:
	bash scripts/lint-template.sh

## The whole pipeline on this machine: webhook samples in, users suspended in a local Okta, Slack summaries out.
local: deps
	$(CARGO) build --bins
	$(CARGO) run --quiet -p local-pipeline -- demo

## The same pipeline, kept running so you can curl the function URL yourself (Ctrl-C stops it).
local-up: deps
	$(CARGO) build --bins
	$(CARGO) run --quiet -p local-pipeline -- up

## Benchmarks (figures, not tests): see benches/README.md.
bench: deps
	bash scripts/bench.sh

clean-venv:
	rm -rf $(VENV) .venv-sam .venv-checkov
