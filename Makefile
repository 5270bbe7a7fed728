# GoTicket — every setup step lives here, so a bare machine needs only Python 3.11 and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.installed-dev-stamp
# checkov pins its own world (boto3, bc-python-hcl2, ...): it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
SRC := $(wildcard src tests bench testbed deploy)
# promtool (alert rule tests): the one on PATH, else extracted from Debian's prometheus package
# (downloaded, not installed: no Prometheus server is set up on this machine).
PROMTOOL := $(or $(shell command -v promtool),.tools/promtool)
# The /docs test drives Debian's Chromium (Playwright cannot download its own browser here).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.DEFAULT_GOAL := help
.PHONY: help install install-dev run migrate lint lint-deploy fmt typecheck test test-fast cov bench lock chromium clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Two locks, both exact pins as pip resolved them (make lock): requirements.lock is what the
# service needs (make run, make install, the image); requirements-dev.lock adds the lint, test,
# deploy-check and bench tools with the same runtime pins. Separate stamps: make test after make run
# adds the dev tools to the same venv.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

$(DEV_STAMP): requirements-dev.lock $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $(DEV_STAMP)

install: $(STAMP) ## create .venv with what the service needs (requirements.lock)

install-dev: $(DEV_STAMP) ## add the lint, test and bench tools (requirements-dev.lock)

run: install ## serve the API (embedded PostgreSQL unless GOTICKET_DATABASE_URL is set)
	$(BIN)/goticket serve

migrate: install ## migrate the configured (or embedded) database
	$(BIN)/goticket migrate

lint: install-dev lint-deploy ## ruff, formatting, mypy --strict, layer rules, deploy files
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy
	$(BIN)/mypy --strict deploy/check_hcl.py
	$(BIN)/lint-imports

$(CHECKOV_STAMP): deploy/requirements-checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $@

.tools/promtool:
	mkdir -p .tools/deb
	cd .tools/deb && (apt-get download prometheus || (apt-get update && apt-get download prometheus))
	dpkg-deb -x "$$(ls .tools/deb/prometheus_*.deb | head -1)" .tools/deb/root
	cp .tools/deb/root/usr/bin/promtool $@
	rm -rf .tools/deb

lint-deploy: install-dev $(CHECKOV_STAMP) $(PROMTOOL) ## hadolint, compose schema, actionlint, HCL, checkov, alert rules
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yml
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/actionlint .github/workflows/ci.yml
	$(BIN)/python deploy/check_hcl.py deploy/opentofu
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform --directory deploy/opentofu

fmt: install-dev ## format and autofix
	$(BIN)/ruff format $(SRC)
	$(BIN)/ruff check --fix $(SRC)

test: lint chromium ## lint, then the whole test suite on real PostgreSQL, with coverage
	$(BIN)/pytest --cov --cov-report=term --cov-report=json:.coverage.json
	$(BIN)/python tests/coverage_gate.py .coverage.json

test-fast: install-dev chromium ## the test suite without lint or coverage
	$(BIN)/pytest -x -q

lock: ## re-resolve both lock files from pyproject.toml in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e .
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,bench]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements-dev.lock
	rm -rf .lock-venv

chromium: ## Debian's Chromium for the browser tests (installed with apt when missing)
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		elif command -v sudo >/dev/null; then sudo apt-get update && sudo apt-get install -y chromium; \
		else echo "make: $(CHROMIUM) is missing: install Debian's chromium package, or set CHROMIUM" >&2; exit 1; fi; }

bench: install-dev ## benchmark bookings (engine on/off) and reads under wrk (BENCH_ARGS="--quick", "--reads", "--help")
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove the venv and caches (keeps .goticket data)
	rm -rf $(VENV) $(CHECKOV_VENV) .tools .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.json
