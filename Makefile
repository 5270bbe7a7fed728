# GoTicket — every setup step lives here, so a bare machine needs only Python 3.11 and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins its own world (boto3, bc-python-hcl2, ...): it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
SRC := $(wildcard src tests bench testbed deploy)
# promtool (alert rule tests): the one on PATH, else extracted from Debian's prometheus package
# (downloaded, not installed: no Prometheus server is set up on this machine).
PROMTOOL := $(or $(shell command -v promtool),.tools/promtool)

.DEFAULT_GOAL := help
.PHONY: help install run migrate lint lint-deploy fmt typecheck test test-fast cov bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv from the lock file

run: install ## serve the API (embedded PostgreSQL unless GOTICKET_DATABASE_URL is set)
	$(BIN)/goticket serve

migrate: install ## migrate the configured (or embedded) database
	$(BIN)/goticket migrate

lint: install lint-deploy ## ruff, formatting, mypy --strict, layer rules, deploy files
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

lint-deploy: install $(CHECKOV_STAMP) $(PROMTOOL) ## hadolint, compose schema, actionlint, HCL, checkov, alert rules
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yml
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/actionlint .github/workflows/ci.yml
	$(BIN)/python deploy/check_hcl.py deploy/opentofu
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform --directory deploy/opentofu

fmt: install ## format and autofix
	$(BIN)/ruff format $(SRC)
	$(BIN)/ruff check --fix $(SRC)

test: lint ## lint, then the whole test suite on real PostgreSQL, with coverage
	$(BIN)/pytest --cov --cov-report=term --cov-report=json:.coverage.json
	$(BIN)/python tests/coverage_gate.py .coverage.json

test-fast: install ## the test suite without lint or coverage
	$(BIN)/pytest -x -q

lock: ## re-resolve requirements.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lock-venv

bench: install ## benchmark bookings (engine on/off) and reads under wrk (BENCH_ARGS="--quick", "--reads", "--help")
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -c 'import matplotlib, psutil' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove the venv and caches (keeps .goticket data)
	rm -rf $(VENV) $(CHECKOV_VENV) .tools .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.json
