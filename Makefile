# The two commands a newcomer needs are `make run` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean help browser-deps proxy-deps stubs

help:  ## List the targets.
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

install: $(STAMP)  ## Create .venv (when missing) and install the project with test and dev extras.

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--config-settings editable_mode=compat -e '.[test,dev]'
	@touch $(STAMP)

run: install  ## Start Redis (if none answers), the sandbox, web, worker and Flower.
	$(BIN)/python -m app.devstack

lint: install  ## ruff (lint + format check) and mypy.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install  ## Apply ruff's fixes and formatting.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suites that exercise the event store (publish, streams and replay, the leak checks, the
# account stream, a step's bookkeeping, the workflow, chaos with its takeovers) and the cluster's own,
# run a second time on a local 3-master Redis Cluster (TEST_CLUSTER=0 skips that run).
CLUSTER_SUITES ?= tests/integration/test_publish.py tests/integration/test_stream.py \
	tests/integration/test_account_stream.py tests/integration/test_bookkeeping.py \
	tests/integration/test_workflow.py tests/integration/test_chaos.py \
	tests/integration/test_cluster.py tests/integration/test_reconciler.py \
	tests/integration/test_many_hosts.py
TEST_CLUSTER ?= 1

test: lint browser-deps proxy-deps  ## Lint, then the whole suite (unit, integration, browser), then the event store's suites on a Redis Cluster.
	$(BIN)/pytest $(PYTEST_ARGS)
	[ "$(TEST_CLUSTER)" = 0 ] || TEST_REDIS_CLUSTER=1 $(BIN)/pytest $(CLUSTER_SUITES)

# Install Debian package $(1) for the $(2) tests when we can (root, or passwordless sudo, with
# apt-get), then run $(3); otherwise those tests skip and say why.
define apt_install
sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
if command -v apt-get >/dev/null 2>&1 && $$sudo true 2>/dev/null; then \
  echo "Installing Debian's $(1) for the $(2) tests..."; \
  if $$sudo apt-get install -y -q $(1) >/dev/null 2>&1 || \
    { $$sudo apt-get update -q >/dev/null 2>&1 && $$sudo apt-get install -y -q $(1) >/dev/null 2>&1; }; \
  then $(or $(3),:); \
  else echo "$(1) could not be installed: the $(2) tests will be skipped"; fi; \
else echo "$(1) is missing and cannot be installed here: the $(2) tests will be skipped"; fi
endef

# The browser tests drive Debian's chromium (never a downloaded browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  $(call apt_install,chromium,browser); }

# The proxy tests run Debian's nginx (1.22 on bookworm) on free ports of their own. The
# package may start a system nginx on port 80 (unless policy-rc.d forbids it): stop it and
# keep it from starting at boot, since nothing here uses it.
NGINX_SERVICE_OFF := if [ -d /run/systemd/system ]; then $$sudo systemctl disable --now nginx; \
	else $$sudo service nginx stop; fi >/dev/null 2>&1 || true
proxy-deps:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  $(call apt_install,nginx,proxy,$(NGINX_SERVICE_OFF)); }

# The Pub/Sub API stubs are generated from the vendored proto and kept in git; protoc writes
# `import pubsub_api_pb2`, which only works with the folder on sys.path, so make it relative.
PUBSUB := integrations/pubsub
stubs: install  ## Regenerate the Pub/Sub API gRPC stubs from integrations/pubsub/pubsub_api.proto.
	$(BIN)/python -m grpc_tools.protoc -I $(PUBSUB) --python_out=$(PUBSUB) \
		--grpc_python_out=$(PUBSUB) --pyi_out=$(PUBSUB) $(PUBSUB)/pubsub_api.proto
	sed -i 's/^import pubsub_api_pb2 as/from . import pubsub_api_pb2 as/' $(PUBSUB)/pubsub_api_pb2_grpc.py

bench: install  ## Benchmarks; one JSON line per scenario, results in bench/results/.
	$(BIN)/python -m bench

clean:  ## Remove the virtualenv and local state.
	rm -rf $(VENV) .sandbox .pytest-sandbox .pytest_cache .mypy_cache .ruff_cache
