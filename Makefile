# Switchboard: `make run` to try it, `make test` for everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PLAYGROUND_PORT ?= 56150
PORT ?= 3978
# The bench measures the server as production runs it: the image's python:3.11-slim is CPython
# built with profile-guided and link-time optimisation, and so is Debian's python3.11, where
# the machine has it; pyenv's default build (python3 on this machine) has neither, and costs
# about a quarter more CPU per chat. `make bench BENCH_PYTHON=python3` measures with it.
BENCH_PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) $(PYTHON))
BENCH_VENV := $(if $(filter $(PYTHON),$(BENCH_PYTHON)),$(VENV),.venv-bench)
BENCH_STAMP := $(BENCH_VENV)/.bench-installed
# Python dependencies come from hashed lock files (requirements/*.txt, made by `make lock`):
# runtime.txt (the image), test.txt (runtime + test tools: `make test`, `make run`),
# bench.txt (test + the bench's extras, botbuilder for the stock baseline).
UV_VERSION ?= 0.13.9
LOCK := $(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --universal \
        --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock" \
        $(if $(UPGRADE),--upgrade)
# The production image's base, pinned by digest in the Dockerfile; `make pin-base` moves the pin
# to what the registry serves now (a Docker daemon and the registry reachable).
BASE_IMAGE ?= python:3.11-slim-bookworm

.PHONY: e2e-deps run test lint typecheck layers pytest package package-dev icons lint-docker \
        docker-image pin-base lock bench clean

# Exactly what the lock says (every file checked against its hash), then the project itself
# (editable, no dependencies of its own, built with the locked setuptools).
$(STAMP): requirements/test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/test.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(BENCH_STAMP): requirements/bench.txt pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/bench.txt
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# Regenerate the lock files after changing dependencies in pyproject.toml (kept pins stay
# unless they must move; `make lock UPGRADE=1` takes the newest allowed versions). Each file
# is constrained by the one before, so the three agree on every shared package.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --extra test -c requirements/runtime.txt -o requirements/test.txt
	$(LOCK) --extra test --extra bench -c requirements/test.txt -o requirements/bench.txt

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: $(STAMP) $(NODE_STAMP)
	@echo "Customer side: http://localhost:$(PORT)  —  agent side (Agents Playground): http://localhost:$(PLAYGROUND_PORT)"
	@echo "My Sessions page (local-mode sign-in): http://localhost:$(PORT)/tabs/sessions"
	@TEAMSAPPTESTER_BROWSER=none node node_modules/@microsoft/m365agentsplayground/cli.js \
	    -e http://127.0.0.1:$(PORT)/api/messages -c msteams -p $(PLAYGROUND_PORT) \
	    >/dev/null 2>&1 & playground=$$!; \
	  trap 'kill $$playground 2>/dev/null' EXIT; \
	  PORT=$(PORT) $(PY) -m bot

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict bot

# The import contract (domain, services, Bot SDK, stores): fails fast, before the long suite.
layers: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit/test_layers.py

# Debian's Chromium (the widget's end-to-end tests) and a colour emoji font.
e2e-deps:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -q "Noto Color Emoji" || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium fonts-noto-color-emoji >/dev/null; }

# The layer contract ran already (make layers); `make pytest` alone still runs everything.
pytest: $(STAMP) $(NODE_STAMP) e2e-deps
	$(VENV)/bin/pytest -q $(if $(filter test,$(MAKECMDGOALS)),--deselect tests/unit/test_layers.py)

test: lint typecheck layers lint-docker docker-image pytest

package: $(STAMP) $(NODE_STAMP)  ## build/appPackage.zip (needs MicrosoftAppId and SWITCHBOARD_PUBLIC_HOST)
	$(PY) manifest/build.py --out build/appPackage.zip

package-dev: $(STAMP) $(NODE_STAMP)  ## a validated example package with placeholder id and host
	$(PY) manifest/build.py --dev --out build/appPackage.zip

icons: $(STAMP)  ## redraw manifest/color.png and manifest/outline.png
	$(PY) manifest/make_icons.py

lint-docker: $(STAMP)
	$(VENV)/bin/hadolint Dockerfile

# The Teams JavaScript client the tabs load, copied from npm (committed; no CDN at run time).
.PHONY: tabs-assets
tabs-assets: $(NODE_STAMP)  ## refresh bot/tabs/static/vendor/MicrosoftTeams.min.js from node_modules
	sed 's|//# sourceMappingURL=MicrosoftTeams.min.js.map||' \
	  node_modules/@microsoft/teams-js/dist/umd/MicrosoftTeams.min.js \
	  > bot/tabs/static/vendor/MicrosoftTeams.min.js

# Builds the production image where a Docker daemon answers; elsewhere one line says it did not.
docker-image:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker build --quiet -t switchboard:test . ; \
	else \
	  echo "SKIPPED docker-image: no Docker daemon reachable, the production image was not built"; \
	fi

pin-base:  ## pin the Dockerfile's base image to the digest the registry serves now (needs Docker)
	digest=$$(docker buildx imagetools inspect $(BASE_IMAGE) --format '{{json .Manifest.Digest}}' \
	  | tr -d '"') && test -n "$$digest" && \
	  sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$(BASE_IMAGE)@$$digest|" Dockerfile
	grep '^ARG PYTHON_IMAGE=' Dockerfile

bench: $(BENCH_STAMP)  ## load driver + micro-benchmarks -> bench/results/latest.{json,md}, latency.png
	$(BENCH_VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(BENCH_VENV) node_modules build .mypy_cache .ruff_cache .pytest_cache
