# hostrelay — `make run` starts the whole stack locally, `make test` runs the full suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3.11
DEB_PACKAGES := mosquitto samba ldb-tools slapd ldap-utils libldap2-dev libsasl2-dev iproute2
DEB_COMMANDS := /usr/sbin/mosquitto:mosquitto /usr/bin/samba-tool:samba /usr/bin/ldbmodify:ldb-tools \
	/usr/sbin/slapd:slapd /usr/bin/ldapsearch:ldap-utils /usr/include/ldap.h:libldap2-dev \
	/usr/include/sasl/sasl.h:libsasl2-dev /usr/sbin/ip:iproute2
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test unit lint format system-deps venv bench validate build clean

run: system-deps $(STAMP)
	$(VENV)/bin/hostrelay-local run

test: system-deps $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/sam validate --lint

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Debian packages the stack and the tests run for real; installed when missing.
system-deps:
	@missing=""; for pair in $(DEB_COMMANDS); do \
		[ -e "$${pair%%:*}" ] || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y$$missing" >&2; exit 1; \
		fi; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml relay/pyproject.toml layers/hostrelay/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -e ./relay
	touch $(STAMP)

bench: $(STAMP)
	for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

validate: $(STAMP)
	$(VENV)/bin/sam validate --lint

build: $(STAMP)
	$(VENV)/bin/sam build

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
