# Tenantry: the two commands are `make dev` (run the product locally) and `make test`
# (every check and test). Everything they need is installed by the targets below.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
STATE     ?= .tenantry/dev
KUBECONFIG_DEV := $(abspath $(STATE))/kubeconfig
TOOLS_BIN := $(shell bash scripts/tools.sh --print-bin-dir)
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: image help bootstrap venv tools crds cluster-up cluster-down cluster-destroy dev \
        check lint typecheck test test-unit test-e2e

help:
	@echo "make dev          run the product locally: cluster, CRDs, PostgreSQL, Redis, ClickHouse"
	@echo "                  engine, control plane API (:8000) and operator"
	@echo "make test         every check and test (what CI runs)"
	@echo "make cluster-up   start the local control plane (kubeconfig: $(KUBECONFIG_DEV))"
	@echo "make cluster-down stop it (state kept; cluster-destroy removes it)"
	@echo "make crds         regenerate crds/ from the pydantic models"
	@echo "make tools        build the pinned Kubernetes binaries into $(TOOLS_BIN)"

bootstrap:
	@bash scripts/bootstrap.sh

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@echo "==> python venv in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

tools:
	@bash scripts/tools.sh

crds: venv
	@$(VENV)/bin/tenantry crds --out crds
	@cp crds/*.yaml charts/tenantry/files/crds/
	@$(PY) scripts/crd_docs.py

cluster-up: venv tools
	@$(VENV)/bin/tenantry cluster up --state-dir $(STATE)
	@echo "export KUBECONFIG=$(KUBECONFIG_DEV)"

cluster-down: venv
	@$(VENV)/bin/tenantry cluster down --state-dir $(STATE)

cluster-destroy: venv
	@$(VENV)/bin/tenantry cluster destroy --state-dir $(STATE)

dev: venv tools
	@$(VENV)/bin/tenantry dev --state-dir $(STATE)

image:
	@bash scripts/image.sh

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: venv
	@$(VENV)/bin/mypy tenantry operator/tenantry_operator controlplane ingestion tests bench

check: lint typecheck

test-unit: venv
	@$(VENV)/bin/pytest tests/unit

test-e2e: venv tools
	@$(VENV)/bin/pytest tests/e2e

test: bootstrap venv tools check
	@echo "==> pytest (unit, integration, e2e)"
	@$(VENV)/bin/pytest -ra
	@echo "==> the image: build with docker (debootstrap base) and smoke-test it"
	@bash scripts/image.sh
