# microimpuls.micropvr — developer entry points. Run as root on Debian 12.
#   make demo                      stand-in host + the collection's playbooks against it
#   make test                      unit tests, lint, collection build, every Molecule scenario
#   make unit | lint | build-test | standin-check | molecule SCENARIO=<name>
#   make bench [BENCH_DB_MB=1024] [BENCH_RUNS=3] [BENCH_FLEET="1 4 8 16"]   benchmarks vs raw commands (not in test)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV        := $(CURDIR)/.venv
BIN         := $(VENV)/bin
STANDIN_REPO := $(CURDIR)/build/standin-repo
COLLECTIONS := $(CURDIR)/.cache/collections
SCENARIOS   := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
SCENARIO    ?= default
SHELL_SCRIPTS := .ci/run $(wildcard tests/testbed/*.sh tests/standin/*.sh tests/standin/pkg/common/*.sh tests/tools/*.sh) \
                 $(wildcard tests/standin/pkg/*/init.d) benchmarks/container/raw.sh

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export MICROPVR_STANDIN_REPO := $(STANDIN_REPO)
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0

.PHONY: help host venv collection images standin testbed demo unit lint tarball sanity importer build-test standin-check molecule molecule-all test clean bench

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

host:
	tests/testbed/host-setup.sh

# The virtualenv is rebuilt when the pinned requirements change.
$(VENV)/.requirements.sha256: tests/requirements-dev.txt
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r tests/requirements-dev.txt
	sha256sum tests/requirements-dev.txt > $@

venv: host $(VENV)/.requirements.sha256

# The working tree is the collection: link it where Ansible looks for collections.
collection:
	@mkdir -p $(COLLECTIONS)/ansible_collections/microimpuls
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/microimpuls/micropvr

images: host
	tests/testbed/build-images.sh

standin: host
	tests/standin/build.sh $(STANDIN_REPO)

testbed: images standin

demo: venv collection testbed
	tests/testbed/demo.sh

# Two pytest-xdist workers: the suite is CPU-bound and its tests share nothing.
unit: venv collection
	$(BIN)/pytest -p no:cacheprovider -n 2 tests/unit

# sanity and importer are each mostly one busy core: side by side they share the one tarball build.
lint: venv collection
	$(BIN)/ruff check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	shellcheck $(SHELL_SCRIPTS)
	$(MAKE) -j2 --output-sync=target sanity importer

# The collection as Galaxy would receive it (galaxy.yml build_ignore decides what is in it).
tarball: venv
	rm -rf build/collection && mkdir -p build/collection
	$(BIN)/ansible-galaxy collection build --output-path build/collection .

# ansible-test sanity over the shipped content (the installed tarball), in its own venvs.
sanity: tarball
	tests/tools/sanity.sh build/collection

# galaxy-importer: what Galaxy and Automation Hub run on upload.
importer: tarball
	tests/tools/galaxy-importer.sh build/collection

build-test: venv collection images
	$(BIN)/pytest -p no:cacheprovider tests/integration

# The stand-in's own lifecycle checks in bare containers (no Ansible involved).
standin-check: testbed
	tests/standin/container-check.sh $(STANDIN_REPO)

molecule: venv collection testbed
	$(BIN)/molecule test -s $(SCENARIO)

# One scenario: make scenario-<name> (what molecule-all runs for each, timed).
scenario-%: venv collection testbed
	$(BIN)/molecule test -s $*

molecule-all: venv collection testbed
	tests/tools/phases.sh $(addprefix scenario-,$(SCENARIOS))

# Phase by phase, with the time of each at the end of the log (the CI job has a hard limit).
test:
	tests/tools/phases.sh venv collection testbed unit lint build-test standin-check molecule-all

# Benchmarks in bench-* containers; settings and what each figure means: benchmarks/README.md.
bench: venv collection testbed
	$(BIN)/pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf build .cache .pytest_cache
