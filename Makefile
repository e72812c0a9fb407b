# gpuhub: `make up` runs the platform, `make test` runs every test.
SHELL := /bin/bash
export COMPOSE_PROJECT_NAME ?= gpuhub
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help up down upgrade images lint test test-unit test-conda test-gpu venv benchmark cluster-up test-swarm

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

up: ## Install what is missing (root, Debian/Ubuntu), build, start, create the first admin
	@scripts/provision
	@scripts/up

down: ## Stop every user server (through the hub), then the hub and its network; keeps all data
	@scripts/down

upgrade: ## After git pull: back up the hub's database, rebuild, restart the hub; servers keep running
	@scripts/provision
	@scripts/upgrade

cluster-up: ## On a Swarm manager: initialise the swarm, print the join command, deploy the stack
	@scripts/cluster-up

images: ## Build the hub and stand-in images (falls back to a local Debian base)
	@scripts/build-images

$(PY): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r images/hub/requirements.txt -e '.[test]'
	@touch $(PY)

venv: $(PY) ## The dev/test virtualenv (.venv)

test: ## Provision what is missing, build images, run unit + integration tests
	@scripts/provision --for-tests
	@$(MAKE) -s venv lint images
	$(PY) -m pytest -m "not conda and not gpu" -p no:cacheprovider -ra

lint: venv ## ruff: lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-unit: venv ## Unit tests only (no Docker)
	$(PY) -m pytest tests/unit -p no:cacheprovider -q

test-conda: venv ## The conda suite: needs a conda channel (builds the production image)
	$(PY) -m pytest tests/conda -m conda -rs

test-swarm: venv images ## The Swarm suite alone: a manager and two GPU workers as Docker-in-Docker nodes
	$(PY) -m pytest tests/swarm -m swarm -p no:cacheprovider -ra

test-gpu: venv ## The GPU suite: an NVIDIA GPU, its container toolkit, a conda channel (builds every image)
	@scripts/build-images --production
	$(PY) -m pytest tests/gpu -m gpu -p no:cacheprovider -ra

benchmark: venv images ## Login storm: our spawner and image vs a stock deployment (N=1,10,25)
	$(PY) benchmarks/spawn.py
