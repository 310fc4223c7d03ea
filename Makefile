# Tenantry: the two commands are `make dev` (run the product locally) and `make test`
# (every check and test). Everything they need is installed by the targets below.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
STATE     ?= .tenantry/dev
NODES     ?= kwok
KUBECONFIG_DEV := $(abspath $(STATE))/kubeconfig
TOOLS_BIN := $(shell bash scripts/tools.sh --print-bin-dir)
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: image node-images standin-images help bootstrap venv lock lock-check tools tools-lock crds settings-docs cluster-up cluster-down cluster-destroy platform-up platform-down dev \
        check lint typecheck layers test test-unit test-e2e console console-test

help:
	@echo "make dev          run the product locally: cluster, CRDs, PostgreSQL, Redis, ClickHouse"
	@echo "                  engine, control plane API (:8000) and operator"
	@echo "make test         every check and test (what CI runs)"
	@echo "make cluster-up   start the local control plane (kubeconfig: $(KUBECONFIG_DEV))"
	@echo "                  NODES=real: with a real node (kubelet, containerd) instead of kwok"
	@echo "make cluster-down stop it (state kept; cluster-destroy removes it)"
	@echo "make platform-up  the product as users run it: a real-node cluster ($(REAL_STATE)),"
	@echo "                  the chart installed in it (operator, control plane as pods);"
	@echo "                  platform-down uninstalls it and destroys that cluster"
	@echo "make crds         regenerate crds/ from the pydantic models"
	@echo "make settings-docs regenerate docs/settings.md from the settings models"
	@echo "make lock         rewrite requirements/*.lock from pyproject.toml (UPGRADE=pkg|all)"
	@echo "make tools        build the pinned Kubernetes binaries into $(TOOLS_BIN)"
	@echo "make console      build the web console (console/ -> console/dist, served by the API)"

bootstrap:
	@bash scripts/bootstrap.sh

# The venv holds exactly requirements/dev.lock (every package pinned, hashes checked;
# `uv pip sync` also removes what the lock no longer lists), then the project itself,
# editable. When the package index does not answer (its name did not resolve, say), the
# same locked, hash-checked files come from uv's cache. uv is pinned too (requirements/uv.lock) and lives in the tool cache.
# The dev harness `tenantry_dev` is in no wheel (pyproject.toml): a .pth file puts the
# repository root on the venv's path, so it (and tests/, bench/) import from anywhere.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements/dev.lock pyproject.toml
	@echo "==> python venv in $(VENV) from requirements/dev.lock"
	@uv="$$(bash scripts/uv.sh)" && export UV_PYTHON_DOWNLOADS=never && \
	  { test -x $(PY) || "$$uv" venv -q --python "$$(command -v python3)" $(VENV); } && \
	  { "$$uv" pip sync -q --python $(PY) --require-hashes requirements/dev.lock || \
	    { echo "==> the package index did not answer: the same lock from uv's cache"; \
	      "$$uv" pip sync -q --offline --python $(PY) --require-hashes requirements/dev.lock; }; } && \
	  "$$uv" pip install -q --python $(PY) --no-deps --no-build-isolation -e . && \
	  $(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "tenantry_dev_harness.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	@touch $@

# Rewrite the locks from pyproject.toml (UPGRADE="pkg ..." or UPGRADE=all to move pins).
lock:
	@UPGRADE="$(UPGRADE)" bash scripts/lock.sh

# pyproject.toml and the locks agree, and the venv holds the lock (scripts/lockcheck.py).
lock-check: venv
	@$(PY) scripts/lockcheck.py

tools:
	@bash scripts/tools.sh

# Re-resolve the Go tools' module graphs (scripts/go.lock/) from the versions in tools.sh.
tools-lock:
	@bash scripts/tools.sh --lock

crds: venv
	@$(VENV)/bin/tenantry crds --out crds
	@cp crds/*.yaml charts/tenantry/files/crds/
	@$(PY) scripts/crd_docs.py

settings-docs: venv
	@$(PY) scripts/settings_docs.py

# NODES=real: one real node (containerd, kubelet, kube-proxy, CoreDNS) in a network
# namespace of its own (tenantry_dev/realnode.py, docs/real-nodes.md); needs root.
cluster-up: venv tools
	@$(PY) -m tenantry_dev cluster up --state-dir $(STATE) --nodes $(NODES)
	@echo "export KUBECONFIG=$(KUBECONFIG_DEV)"

cluster-down: venv
	@$(PY) -m tenantry_dev cluster down --state-dir $(STATE)

cluster-destroy: venv
	@$(PY) -m tenantry_dev cluster destroy --state-dir $(STATE)

# The product as a platform team runs it: a real-node cluster (root; its own state dir),
# the local images (stand-ins for ClickHouse and Keeper) imported into its node, the
# control plane's PostgreSQL and Redis as pods, then the Helm chart.
REAL_STATE ?= .tenantry/real
platform-up: venv tools
	@bash scripts/image.sh
	@bash scripts/node-images.sh
	@bash scripts/standin-images.sh
	@$(PY) -m tenantry_dev cluster up --state-dir $(REAL_STATE) --nodes real
	@$(PY) -m tenantry_dev platform install --state-dir $(REAL_STATE)

platform-down: venv
	@$(PY) -m tenantry_dev platform uninstall --state-dir $(REAL_STATE)
	@$(PY) -m tenantry_dev cluster destroy --state-dir $(REAL_STATE)

dev: venv tools console
	@$(PY) -m tenantry_dev dev --state-dir $(STATE)

# The web console (console/): npm ci from package-lock.json, then a Vite build into
# console/dist, which the control plane serves (TENANTRY_CP_CONSOLE_DIR).
CONSOLE_SRC := $(shell find console/src console/test -type f 2>/dev/null) console/index.html \
               console/vite.config.ts console/tsconfig.json
console/node_modules/.installed: console/package.json console/package-lock.json
	@echo "==> npm ci (console)"
	@cd console && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	@touch $@
console/dist/index.html: console/node_modules/.installed $(CONSOLE_SRC)
	@echo "==> console build"
	@cd console && npm run -s build
console: console/dist/index.html

# The console's unit and component tests (vitest).
console-test: console/node_modules/.installed
	@cd console && npx vitest run

image: venv console
	@bash scripts/image.sh

# The real node's images (pause, a Debian test toolbox) as docker-archive tarballs.
node-images:
	@bash scripts/node-images.sh

# The local images real nodes run (ClickHouse and Keeper stand-ins, Debian Redis and
# PostgreSQL): built and smoke-tested when their inputs changed, saved as tarballs.
standin-images: venv
	@bash scripts/standin-images.sh

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: venv
	@$(VENV)/bin/mypy tenantry tenantry_cli tenantry_dev operator/tenantry_operator controlplane ingestion \
	  tests bench scripts

# The import-linter contracts of .importlinter: the layers (tenantry_cli above the
# operator, control plane and ingestion, above the shared package tenantry), the dev
# harness out of the runtime, control-plane services free of FastAPI and of the web
# layer, routers above services above repositories, and no import cycles.
layers: venv
	@$(VENV)/bin/lint-imports --no-logo

check: lock-check lint typecheck layers

test-unit: venv
	@$(VENV)/bin/pytest tests/unit

test-e2e: venv tools
	@$(VENV)/bin/pytest tests/e2e

# The images come first: the in-cluster suite (tests/incluster) runs them on a real node.
test: bootstrap venv tools check console console-test
	@echo "==> the image: build with docker (debootstrap base) and smoke-test it"
	@bash scripts/image.sh
	@echo "==> the real node's images (pause, toolbox), stand-ins, Redis, PostgreSQL: when changed"
	@bash scripts/node-images.sh
	@bash scripts/standin-images.sh
	@echo "==> pytest (unit, integration, e2e, real node, in cluster)"
	@$(VENV)/bin/pytest -ra
