# authops.celery_tuning — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/.cache/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/authops/celery_tuning
SANITY_TREE := $(or $(TMPDIR),/tmp)/authops-celery-tuning-sanity/ansible_collections/authops/celery_tuning
# NAME@VERSION runs a scenario with another ansible-core (scripts/molecule-venv.sh; 2.20 and later in the Debian
# 13 controller container): the real Auth server (auth55) runs on the oldest and the newest that
# meta/runtime.yml declares, the others on .venv's 2.19. The longest first. `make test-full` adds FULL_EXTRA.
SCENARIOS ?= faults default prefork cluster auth55@2.21 auth55@2.16 auth4 epel rollback supervisor
FULL_EXTRA ?= adopt
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: help venv link lint sanity units integration molecule images test checks test-full ssh-check demo demo-clean build clean bench bench-noop bench-auth matrix

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements/dev.txt
	scripts/bootstrap-host.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@

venv: $(BIN)/.installed ## install the pinned toolchain into .venv

link: ## make the collection importable as ansible_collections/authops/celery_tuning
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

lint: venv link ## yamllint, ansible-lint (production profile), argument_specs vs defaults
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python scripts/check-argument-specs.py
	$(BIN)/python scripts/module-docs.py --check
	$(BIN)/python scripts/role-docs.py --check

sanity: venv ## ansible-test sanity on a copy under ansible_collections/authops/celery_tuning
	scripts/ansible-test-shim.sh
	rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE)
	git ls-files -z --cached --others --exclude-standard | tar -c --null --ignore-failed-read -T - 2>/dev/null | tar -x -C $(SANITY_TREE)
	cd $(SANITY_TREE) && $(BIN)/ansible-test sanity --venv --python 3.11 --color no

units: venv link ## pytest on plugins/module_utils and the modules
	$(BIN)/pytest -q tests/unit

MATRIX_VERSIONS ?= 2.16 2.17 2.18 2.19 2.20 2.21
matrix: venv ## units and sanity on each ansible-core of meta/runtime.yml (MATRIX_VERSIONS; venvs in .cache/matrix)
	@# 2.20 and later run in a Debian 13 container (Python 3.13; scripts/controller.sh): its image is built once.
	scripts/ensure-docker.sh && scripts/build-images.sh debian13
	scripts/matrix.sh $(MATRIX_VERSIONS)

integration: venv link ## modules against a real supervisord in a temporary directory
	$(BIN)/pytest -q tests/integration

images: ## make sure dockerd runs and the systemd base images and the real Auth 5.5 and 4.13.1 images exist
	scripts/ensure-docker.sh
	scripts/build-images.sh
	scripts/build-auth-image.sh
	AUTH_VERSION=4.13.1 scripts/build-auth-image.sh

molecule: venv link images ## molecule test for $(SCENARIOS) (NAME@VERSION: with that ansible-core)
	MOLECULE=$(BIN)/molecule scripts/molecule-parallel.sh $(SCENARIOS)

test: ## every test: lint, sanity, units, integration, build (beside the image builds), then matrix and molecule side by side
	@# Installs first (apt runs one at a time), then the checks beside the images (debootstrap mostly waits on
	@# the mirror), then the matrix (CPU) beside molecule (mostly waiting on containers). .venv is ansible-core
	@# 2.19, which lint, sanity and units cover. Logs: .cache/matrix/, .cache/molecule/.
	$(MAKE) --no-print-directory venv link
	scripts/ensure-docker.sh
	$(MAKE) --no-print-directory -j2 checks images
	$(MAKE) --no-print-directory -j2 matrix molecule MATRIX_VERSIONS="2.16 2.17 2.18 2.20 2.21"

checks: venv link ## lint, sanity, units, integration and build, one after another
	$(MAKE) --no-print-directory -j1 lint sanity units integration build

test-full: ## make test, plus the scenarios CI leaves out (FULL_EXTRA: adopt) and the SSH check (ssh-check)
	$(MAKE) --no-print-directory test SCENARIOS="$(SCENARIOS) $(FULL_EXTRA)"
	$(MAKE) --no-print-directory ssh-check

ssh-check: venv link images ## tune.yml twice, rollback.yml, tune.yml, from ansible-core 2.21 (Python 3.13) over SSH with become, against a stock Auth 5.5
	@[ -x .cache/matrix/2.21/venv/bin/ansible-playbook ] || scripts/matrix.sh 2.21
	scripts/ssh-check.sh

build: venv ## build the collection artifact
	$(BIN)/ansible-galaxy collection build --force --output-path build/

clean: ## remove build products (not .venv)
	rm -rf build .cache .pytest_cache

demo: venv link ## the main job (playbooks/tune.yml) on a local stand-in Auth under .demo/
	scripts/demo.sh

demo-clean: ## stop the demo's supervisord and remove .demo/
	-[ -x .demo/venv/bin/supervisorctl ] && .demo/venv/bin/supervisorctl -c .demo/supervisord.conf shutdown
	rm -rf .demo

bench: venv link ## pools, graceful restart, memmon; no-op tune; Auth's own tasks (BENCH_ARGS=--quick, BENCH_AUTH_ARGS)
	@cat bench/requirements.txt extensions/standin/requirements.txt | cmp -s - .cache/bench-venv/.installed || { \
	  $(PYTHON) -m venv .cache/bench-venv && .cache/bench-venv/bin/pip install -q -r bench/requirements.txt && \
	  cat bench/requirements.txt extensions/standin/requirements.txt >.cache/bench-venv/.installed; }
	.cache/bench-venv/bin/python bench/bench.py $(BENCH_ARGS)
	$(BIN)/python bench/noop.py
	$(BIN)/python bench/auth_tasks.py $(BENCH_AUTH_ARGS)

bench-noop: venv link ## a no-change tune.yml against a real Auth 5.5 container vs a bare gather-facts play
	scripts/ensure-docker.sh
	$(BIN)/python bench/noop.py

bench-auth: venv link ## Auth 5.5's own update tasks in the real Auth image under the worker configs (auth_tasks in results/bench.json)
	scripts/ensure-docker.sh
	$(BIN)/python bench/auth_tasks.py $(BENCH_AUTH_ARGS)
