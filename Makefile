# hostrelay — `make run` starts the whole stack locally, `make test` runs the full suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3.11
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the stack and the tests run for real, installed by `system-deps` when missing:
#   mosquitto                     MQTT broker with TLS client certificates (local stack, tests)
#   samba samba-ad-provision      samba-tool domain provision: the demo and test AD domains
#     samba-dsdb-modules          (the AD schema and the DSDB ldb modules sam.ldb needs)
#     samba-vfs-modules attr      (sysvol ACLs: xattrs, set at provision time)
#   ldb-tools                     ldbmodify/ldbsearch, what macct jobs run on sam.ldb
#   slapd ldap-utils              a real OpenLDAP for directory tests; ldapsearch, the bench baseline
#   libldap2-dev libsasl2-dev     headers to build python-ldap (the fast LDAP path) in the dev venv
#   iproute2                      `ip`: network namespaces of exec jobs
#   chromium chromium-driver      headless browser tests of the web console (tests/e2e/console)
DEB_PACKAGES := mosquitto samba samba-ad-provision samba-dsdb-modules samba-vfs-modules attr ldb-tools slapd ldap-utils libldap2-dev libsasl2-dev iproute2 chromium chromium-driver

# The relay runs on Python 3.10-3.13: its tests also run on the lowest and the highest.
RELAY_PYTHONS ?= 3.10 3.13
# The contract's own tests that need nothing but it (the relay wheel ships it): its import
# rule, error codes and generated protocol table, on the relay's Pythons too.
CONTRACT_ONLY_TESTS := tests/unit/contract/test_contract_package.py \
	tests/unit/contract/test_error_codes.py tests/unit/contract/test_protocol_doc.py
RELAY_UNIT_TESTS := tests/unit/relay tests/unit/exec tests/unit/macct tests/unit/ldap \
	$(CONTRACT_ONLY_TESTS)
RELAY_INTEGRATION_TESTS := tests/integration/relay tests/integration/exec tests/integration/macct \
	tests/integration/ldap tests/integration/sources
# Needs the control plane's IoT stand-in (boto3), which is not part of the relay.
RELAY_MATRIX_IGNORE := --ignore=tests/integration/relay/test_iot_data_endpoint.py
# Integration tests that need nothing but the relay: relay-matrix runs them on 3.10 and 3.13, so
# the main run (3.11) leaves them out. It keeps tests/integration/ldap (python-ldap, the fast
# path, is only in the dev venv) and the IoT data endpoint test (the control plane's boto3).
MATRIX_ONLY_TESTS := tests/integration/exec tests/integration/macct $(filter-out \
	tests/integration/relay/test_iot_data_endpoint.py,$(wildcard tests/integration/relay/test_*.py))
# The main run spreads whole test files over this many processes (pytest-xdist --dist loadfile:
# a file's module fixtures, e.g. a local stack, are set up once, in one worker).
TEST_WORKERS ?= 2
# $(call timed,PHASE,COMMAND): run COMMAND, print its wall time, and fail when it failed.
timed = start=$$(date +%s); $(2); status=$$?; \
	echo "== $(1): $$(( $$(date +%s) - start )) s$$( [ $$status -eq 0 ] || echo ", FAILED ($$status)")"; \
	exit $$status

.PHONY: run test test-lint test-main unit lint format system-deps venv bench validate build clean \
	lock relay-matrix relay-wheel-check $(addprefix relay-matrix-,$(RELAY_PYTHONS))

run: system-deps $(STAMP)
	$(VENV)/bin/hostrelay-local run

# Lint, the main suite and the relay matrix's Pythons run side by side (most of the suite waits
# on real servers and subprocesses, so two cores carry all of them), then the wheel check. Each
# phase's output comes whole when it ends, with its wall time; any failure fails `make test`.
test: system-deps $(STAMP)
	@$(call timed,make test (lint + main suite + relay matrix),$(MAKE) --no-print-directory \
		-j$(words test-main test-lint $(RELAY_PYTHONS)) --output-sync=target \
		test-main test-lint $(addprefix relay-matrix-,$(RELAY_PYTHONS)))
	@$(call timed,relay-wheel-check,$(MAKE) --no-print-directory relay-wheel-check)

test-main: $(STAMP)
	@$(call timed,main suite,$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) \
		--dist loadfile $(addprefix --ignore=,$(MATRIX_ONLY_TESTS)))

test-lint: $(STAMP)
	@$(call timed,lint,$(MAKE) --no-print-directory lint)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --python-version 3.10 relay/hostrelay_relay relay/hostrelay_contract \
		relay/hostrelay_sources  # the relay's lowest Python
	$(VENV)/bin/lint-imports --no-cache --no-logo  # the layers contracts of pyproject.toml
	$(VENV)/bin/sam validate --lint

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Checks packages (dpkg status), not commands: samba-tool can exist without the provisioning
# data, and a half-installed machine is repaired too.
system-deps:
	@missing=""; for package in $(DEB_PACKAGES); do \
		[ "$$(dpkg-query -W -f='$${db:Status-Abbrev}' "$$package" 2>/dev/null)" = "ii " ] \
			|| missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null || exit 1; \
		else \
			echo "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing" >&2; exit 1; \
		fi; \
	fi

venv: $(STAMP)

# Locked versions only: requirements/dev.lock (everything for development and CI), then this
# checkout's packages without resolving again.
$(STAMP): requirements/dev.lock pyproject.toml relay/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps -e . -e ./relay
	touch $(STAMP)

# Rewrite the locks from the pyproject files (needs the registry): the dev venv's, the Lambda
# layer's (Python 3.11, manylinux, wheels only, the same versions as dev) and the relay's
# (Python 3.10-3.13, wheels only).
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml relay/pyproject.toml --extra dev --extra fast-ldap \
		--python-version 3.11 --python-platform x86_64-manylinux_2_17 --no-header \
		--annotation-style line -q -o requirements/dev.lock
	cd layers/hostrelay && ../../$(VENV)/bin/uv pip compile requirements.in \
		-c ../../requirements/dev.lock --python-version 3.11 \
		--python-platform x86_64-manylinux_2_17 --only-binary :all: --no-header \
		--annotation-style line -q -o requirements.txt
	$(VENV)/bin/uv pip compile relay/pyproject.toml --universal --python-version 3.10 \
		--only-binary :all: --no-header --annotation-style line -q -o relay/requirements.lock
	$(VENV)/bin/uv pip compile requirements/relay-test.in -c requirements/dev.lock --universal \
		--python-version 3.10 --only-binary :all: --no-header --annotation-style line -q \
		-o requirements/relay-test.lock

# The relay's unit and integration tests on its lowest and highest Python, each in a venv of
# the relay's locked wheels (no compiler) plus the test runner; `make -j2 relay-matrix` runs the
# Pythons side by side.
relay-matrix: $(addprefix relay-matrix-,$(RELAY_PYTHONS))

$(addprefix relay-matrix-,$(RELAY_PYTHONS)): relay-matrix-%: $(STAMP)
	@python=$$(scripts/find_python.sh $*) || exit 1; \
	venv=$(VENV)-relay-$*; \
	echo "== relay tests on $$($$python -V)"; \
	if [ ! -x $$venv/bin/python ] || [ $$venv/.installed -ot relay/requirements.lock ] \
			|| [ $$venv/.installed -ot requirements/relay-test.lock ]; then \
		$$python -m venv --clear $$venv || exit 1; \
		$$venv/bin/python -m pip install -q --only-binary=:all: -r relay/requirements.lock \
			-r requirements/relay-test.lock || exit 1; \
		$$venv/bin/python -m pip install -q --no-deps -e ./relay || exit 1; \
		touch $$venv/.installed; \
	fi; \
	$(call timed,relay matrix $*,PYTHONPATH=local $$venv/bin/python -m pytest -q \
		-p no:cacheprovider --confcutdir=tests/unit $(RELAY_UNIT_TESTS) \
		&& PYTHONPATH=local $$venv/bin/python -m pytest -q -p no:cacheprovider \
		--confcutdir=tests/integration $(RELAY_MATRIX_IGNORE) $(RELAY_INTEGRATION_TESTS))

# What enrollment does on a stock host: the built relay wheel and its dependencies from wheels
# only (no compiler) into a fresh venv of the lowest Python; then --version and doctor.
relay-wheel-check: $(STAMP)
	scripts/relay_wheel_check.sh $$(scripts/find_python.sh $(firstword $(RELAY_PYTHONS)))

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

validate: $(STAMP)
	$(VENV)/bin/sam validate --lint

build: $(STAMP)
	$(VENV)/bin/sam build

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache $(VENV)-relay-*
