# Two commands matter: `make run` (the gateway locally) and `make test` (every check and test).
# Both create the virtualenv they need; nothing but Python 3.11+ and make is assumed.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
NODE_STAMP := node_modules/.installed

# Prefer the Lambda runtime's Python (3.13) when this machine has it, else any 3.11+.
PYTHON_FOR_VENV ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	command -v $$p; break; fi; done)

export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint format typecheck template-check unit integration e2e bench build clean

# Two installs: `make run` needs the gateway's runtime, the client and the local stack; `make test`
# adds the checks (SAM CLI, cfn-lint, mypy, pytest…). Both are pinned by constraints.txt.
# uv (itself pinned there, installed by the venv's own pip) resolves, downloads and compiles in
# parallel: a cold `make run` is ready in well under a minute. uv reads its own settings
# (UV_DEFAULT_INDEX, UV_CACHE_DIR, uv.toml), not pip.conf.
UV := $(BIN)/uv
INSTALL := $(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt

$(RUN_STAMP): pyproject.toml constraints.txt layers/gateway/requirements.txt client/pyproject.toml
	@test -n "$(PYTHON_FOR_VENV)" || { echo "No Python 3.11+ found on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON_FOR_VENV)"; $(PYTHON_FOR_VENV) -m venv $(VENV); }
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(INSTALL) -r layers/gateway/requirements.txt -e ./client --group run
	@# The core and the local stack are no distribution: the venv finds them in this checkout.
	@printf '%s\n' "$(CURDIR)/layers/gateway" "$(CURDIR)/local" \
		> "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/assets-gateway-checkout.pth"
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(INSTALL) --group dev
	@touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m gateway_local

# The tests also run the real wrangler CLI (pinned in package-lock.json, with the Node.js 22 it
# needs from the same registry): `make test` installs it once; `make run` never needs Node.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

test: lint typecheck template-check $(NODE_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy layers/gateway/assets_gateway layers/gateway/assets_gateway_common client/src/assets_gateway_client client/tests local/gateway_local functions tests bench scripts

template-check: $(STAMP)
	$(BIN)/sam validate --lint --region us-east-1
	$(BIN)/cfn-lint template.yaml

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -q tests/e2e

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python bench/manifest_parsers.py
	$(BIN)/python bench/hostile_bodies.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/round_trips.py
	$(BIN)/python bench/end_to_end.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/quota.py
	$(BIN)/python bench/budget_edges.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/local_stack_memory.py
	$(BIN)/python bench/wrangler_deploy.py
	$(BIN)/python bench/upload_vs_wrangler.py

# sam build looks for python3.13 on PATH: the venv's interpreter directory provides it.
build: $(STAMP)
	PATH="$(dir $(PYTHON_FOR_VENV)):$$PATH" $(BIN)/sam build

clean:
	rm -rf $(VENV) node_modules .local .aws-sam .mypy_cache .ruff_cache .pytest_cache
