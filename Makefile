# The README's two commands are `make run` and `make test`; both work on a
# fresh machine (they create .venv, install the requirements and Azurite, and
# start or check PostgreSQL, Redis and Azurite). docs/development.md explains.

SHELL := /bin/bash
# Every recipe line fails on the first failing command, pipes included, so no
# exit code (pytest's 5 for "no tests collected" among them) is ever masked.
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# What `source .venv/bin/activate` does, for every recipe (and for func,
# which picks the Python on PATH). azure-functions-doctor reads VIRTUAL_ENV.
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)

PORT ?= 7071
FUNC ?= 0
ARGS ?=
PYTEST_ARGS ?=

.PHONY: help run test lint doctor infra lock pytest simulate replay-poison bench services services-status \
	services-stop bootstrap settings migrate clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' \
		| sed -e 's/$$(PORT)/$(PORT)/g' | expand -t 24

# --- the two commands ---------------------------------------------------------------

run: bootstrap services settings migrate ## serve the app at http://localhost:$(PORT)/api/ (FUNC=1: func start)
ifeq ($(FUNC),1)
	@command -v func >/dev/null || { echo "make run FUNC=1 needs Azure Functions Core Tools (func) on PATH" >&2; exit 1; }
	func start --port $(PORT)
else
	$(PY) -m devhost --port $(PORT)
endif

test: bootstrap services settings lint doctor infra pytest ## everything CI runs: lint, types, doctor, infra checks, all tests

# --- steps -------------------------------------------------------------------------------

bootstrap: ## create .venv and install the locked requirements (only when they changed)
	@scripts/bootstrap.sh

lock: ## recompile requirements*.txt (exact versions, hashes) from requirements/*.in
	@scripts/lock_requirements.sh $(ARGS)

services: ## start or check PostgreSQL, Redis and Azurite
	@scripts/services.sh ensure

services-status: ## show whether each service answers
	@scripts/services.sh status

services-stop: ## stop the Azurite that services.sh started
	@scripts/services.sh stop

settings: bootstrap ## create local.settings.json from the sample (this checkout's own names) when missing
	@if [[ ! -f local.settings.json ]]; then \
		$(PY) -m scripts.local_settings; \
	elif [[ local.settings.sample.json -nt local.settings.json ]]; then \
		echo "settings: note: local.settings.sample.json is newer than local.settings.json; compare them"; \
	fi

# The migration CLI is not a Functions host, so it does not read
# local.settings.json itself; pass its POSTGRES_DSN (the environment winning),
# so `make run` migrates the database the app will use.
migrate: bootstrap services settings ## create the database if missing and apply sql/ migrations
	@echo "migrate: python -m shared.migrate (POSTGRES_DSN from the environment, else local.settings.json)"
	@$(PY) -m shared.migrate --dsn "$$($(PY) -c 'import json, os; print(os.environ.get("POSTGRES_DSN") or json.load(open("local.settings.json"))["Values"].get("POSTGRES_DSN", ""))')"

lint: bootstrap ## ruff check, ruff format --check, mypy (strict)
	ruff check .
	ruff format --check .
	mypy .

pytest: bootstrap services ## the pytest suite (a selection: PYTEST_ARGS="tests/unit -k eventgen")
	pytest $(PYTEST_ARGS)

infra: ## offline checks of infra/, azure.yaml and the workflow (own venv: .tools/infra-venv)
	@bash scripts/infra_checks.sh

# azure-functions-doctor checks the app as the Functions host and a deployment
# would see it (see docs/development.md). It fails only on required checks, so
# the gate below also fails on any warning not listed as accepted here:
# Core Tools cannot be installed on these machines (where `func` is on PATH its
# checks must pass), and Application Insights is set in the Azure app's
# settings, never in a local checkout.
DOCTOR_JSON := .doctor.json
# The locked requirements name cryptography (through azure-identity): it ships
# manylinux wheels, and Flex Consumption deploys build remotely (docs/deploy.md).
DOCTOR_ACCEPTED := check_app_insights check_native_dependency_risk \
	$(if $(shell command -v func),,check_func_cli check_func_core_tools_version)

define DOCTOR_GATE
import json, sys

path, doctor_exit, accepted = sys.argv[1], int(sys.argv[2]), set(sys.argv[3:])
marks = {"pass": "ok  ", "skip": "skip", "warn": "WARN", "fail": "FAIL"}
problems = 0
for section in json.load(open(path))["results"]:
    for item in section["items"]:
        status = item["status"]
        line = (item.get("value") or "").strip().splitlines() or [""]
        note = ""
        if status == "fail" or (status == "warn" and item["rule_id"] not in accepted):
            problems += 1
        elif status == "warn":
            note = " (accepted)"
        print(f"  {marks.get(status, status)}  {item['label']}: {line[0][:110]}{note}")
        if status in ("warn", "fail") and note == "":
            for extra in line[1:]:
                print(f"          {extra}")
            if item.get("hint"):
                print(f"          fix: {item['hint']}")
if doctor_exit or problems:
    print(f"azure-functions-doctor: {problems} problem(s), exit code {doctor_exit}")
    sys.exit(1)
print("azure-functions-doctor: no problems")
endef
export DOCTOR_GATE

doctor: bootstrap settings ## azure-functions-doctor on the app (fails on any unaccepted warning)
	@echo "azure-functions-doctor $$(azure-functions-doctor --version 2>/dev/null | tail -n 1) --profile full on $(CURDIR)"
	@rm -f $(DOCTOR_JSON); status=0; \
	azure-functions-doctor doctor --path . --profile full --format json --output $(DOCTOR_JSON) >/dev/null || status=$$?; \
	$(PY) -c "$$DOCTOR_GATE" $(DOCTOR_JSON) $$status $(DOCTOR_ACCEPTED)

# --- tools -------------------------------------------------------------------------------

simulate: bootstrap ## send simulated events to the app on PORT: ARGS="--events 5000", or ARGS=--live
	$(PY) -m scripts.simulate --url http://localhost:$(PORT) $(ARGS)

QUEUE ?=
replay-poison: bootstrap ## move dead-lettered messages back: make replay-poison QUEUE=activity-persist
	@[[ -n "$(QUEUE)" ]] || { echo "replay-poison: say which queue: QUEUE=<name of the sink queue>" >&2; exit 1; }
	$(PY) -m scripts.replay_poison $(QUEUE) $(ARGS)

BENCH ?= *
bench: bootstrap services ## run scripts/bench_*.py (one: BENCH=postgres ARGS="--events 1000")
	@benches=(); for file in scripts/bench_$(BENCH).py; do if [[ -f $$file ]]; then benches+=("$$file"); fi; done; \
	if (( $${#benches[@]} == 0 )); then echo "bench: no scripts/bench_$(BENCH).py" >&2; exit 1; fi; \
	for bench in "$${benches[@]}"; do module=$$(basename "$$bench" .py); echo "== scripts.$$module"; $(PY) -m "scripts.$$module" $(ARGS); done

clean: ## remove caches and generated reports (keeps .venv, Azurite and its data)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis $(DOCTOR_JSON) bench-results
	find . \( -path ./.venv -o -path ./.tools -o -path ./.git -o -name node_modules \) -prune \
		-o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean services-stop ## also remove .venv, the Azurite install and Azurite's data
	rm -rf .venv tools/azurite/node_modules .azurite
