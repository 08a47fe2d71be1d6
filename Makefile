# pier: `make up` runs it on this machine; `make test` installs what the tests need and runs them.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The suite runs in two pytest workers, a test file to each: most tests wait on the
# processes and instances they start, so two keep both cores busy.
TEST_WORKERS ?= 2
# End-to-end tests run a second time in `make test` with every pier on PostgreSQL (the
# API fuzzed, projects and tokens, the audit log, merge patches); `make test-postgres`
# runs every end-to-end and browser test so. The in-process tests of the store and the
# controller run on both stores in the main run.
POSTGRES_E2E := tests/e2e/test_api_fuzz.py tests/e2e/test_projects_and_tokens.py \
	tests/e2e/test_audit_log.py tests/e2e/test_node_update_merge_patch.py
# Every pier process (pier up, its gateway, each instance, each CLI call) imports FastAPI,
# SQLAlchemy and pydantic: with PYTHONDONTWRITEBYTECODE set, as on some machines, each
# compiles them from source again (about 3 s of CPU for `pier up`). The venv is
# installed compiled, and pier's own modules keep their bytecode too.
unexport PYTHONDONTWRITEBYTECODE

TRITON_PACKAGE := nvidia-pytriton==0.7.0
TRITON_DIR := $(VENV)/triton
# The wheel's Python-backend stub is built against numpy 1; pier's venv has numpy 2.
TRITON_STUB_NUMPY := numpy==1.26.4
PERF_ANALYZER_PACKAGES := tritonclient==2.41.0 nvidia-cuda-runtime-cu12
PERF_ANALYZER_DIR := $(VENV)/perf_analyzer

.PHONY: up test test-postgres lint bench install triton perf-analyzer system-packages sandbox-user clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv>=0.5"

$(BIN)/pier: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

UI_VENDOR := src/pier/ui/static/vendor/htmx.min.js

$(UI_VENDOR): ui/package.json ui/package-lock.json scripts/build-ui-assets.sh
	./scripts/build-ui-assets.sh
	@touch $@

install: $(BIN)/pier $(UI_VENDOR)  ## install pier, its locked dependencies and the web UI's assets

$(TRITON_DIR)/pytriton/tritonserver/bin/tritonserver: | $(BIN)/pier
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --target $(TRITON_DIR) "$(TRITON_PACKAGE)"

$(TRITON_DIR)/stub-numpy/numpy/__init__.py: | $(BIN)/pier
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --target $(TRITON_DIR)/stub-numpy "$(TRITON_STUB_NUMPY)"

triton: $(TRITON_DIR)/pytriton/tritonserver/bin/tritonserver $(TRITON_DIR)/stub-numpy/numpy/__init__.py  ## NVIDIA's tritonserver (engine triton), from nvidia-pytriton without its dependencies, and numpy 1 for its Python backend

$(PERF_ANALYZER_DIR)/bin/perf_analyzer: | $(BIN)/pier
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --target $(PERF_ANALYZER_DIR) $(PERF_ANALYZER_PACKAGES)

perf-analyzer: $(PERF_ANALYZER_DIR)/bin/perf_analyzer  ## NVIDIA's perf_analyzer (tritonclient 2.41's) and the CUDA runtime it loads even on CPU

up: install sandbox-user  ## run pier with embedded defaults (SQLite, local processes)
	$(BIN)/pier up

sandbox-user: install  ## as root: the user local instances run as, able to run .venv's Python
	./scripts/sandbox-user.sh $(BIN)/python

system-packages:  ## a Docker engine, static busybox, a local registry and PostgreSQL, started if needed
	./scripts/start-docker.sh
	./scripts/start-postgres.sh

lint: install  ## ruff, the import layering, mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy src

test: install triton system-packages sandbox-user  ## everything: lint, then the whole test suite
	./scripts/install-system-packages.sh test
	$(MAKE) lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile
	PIER_TEST_STORE=postgresql $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(POSTGRES_E2E)

test-postgres: install triton system-packages sandbox-user  ## the end-to-end, browser and swarm tests, every pier on PostgreSQL
	./scripts/install-system-packages.sh test
	PIER_TEST_STORE=postgresql $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile tests/e2e tests/ui tests/swarm

bench: install triton perf-analyzer  ## gateway, model-node, UI-cost and scale benchmarks (installs wrk, nginx, libb64-0d, chromium)
	./scripts/install-system-packages.sh bench
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/modelnode.py
	$(BIN)/python bench/ui_cost.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/perf_analyzer.py --perf-analyzer-dir $(PERF_ANALYZER_DIR)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache ui/node_modules src/pier/ui/static/vendor
