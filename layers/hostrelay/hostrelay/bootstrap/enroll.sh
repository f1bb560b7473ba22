#!/usr/bin/env bash
# hostrelay enrollment of host ${host}. This script works once: its token is consumed by the
# first successful enrollment and expires at ${valid_until} UTC.
set -euo pipefail

HOSTRELAY_URL=${url}
HOSTRELAY_HOST=${host}
HOSTRELAY_ENROLL_TOKEN=${token}
DEFAULT_RELAY_PACKAGE=${relay_package}
RELAY_PACKAGE="$${HOSTRELAY_PACKAGE:-$$DEFAULT_RELAY_PACKAGE}"
PREFIX="$${HOSTRELAY_PREFIX:-/opt/hostrelay}"
CONFIG_DIR="$${HOSTRELAY_CONFIG_DIR:-/etc/hostrelay}"
STATE_DIR="$${HOSTRELAY_STATE_DIR:-/var/lib/hostrelay}"
PYTHON="$${HOSTRELAY_PYTHON:-python3}"

say() { printf 'hostrelay: %s\n' "$$*" >&2; }

# What this needs, checked before anything on this host is changed: root; Python 3.10 or newer
# with its venv module (Debian/Ubuntu: the python3-venv package, installed here with apt-get
# when missing); the registry or RELAY_PACKAGE reachable. No compiler: every dependency is
# installed from a wheel. systemd is optional (the relay is started by hand without it).
say "requirements: root, python3 >= 3.10 with venv, no compiler needed"
[ "$$(id -u)" -eq 0 ] || { say "run this as root (pipe it to 'sudo bash')"; exit 1; }
command -v "$$PYTHON" >/dev/null 2>&1 \
  || { say "$$PYTHON not found: install Python 3.10 or newer (apt-get install python3), then run this again"; exit 1; }
"$$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { say "python 3.10 or newer is required ($$("$$PYTHON" -V 2>&1) found)"; exit 1; }
if ! "$$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  venv_package="python3-venv"
  if command -v apt-get >/dev/null 2>&1; then
    say "installing $$venv_package (the Python venv module, missing here)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$$venv_package" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$$venv_package" >/dev/null 2>&1; } \
      || { say "could not install $$venv_package: run 'apt-get install $$venv_package', then this again"; exit 1; }
  else
    say "the Python venv module is missing: install it (Debian/Ubuntu: python3-venv; RHEL: python3), then run this again"
    exit 1
  fi
fi
# Where the distribution's C LDAP client is installed (python3-ldap), the relay's venv sees it
# and directory syncs take the fast path; otherwise they use the pure-Python client.
venv_options=""
if "$$PYTHON" -c 'import ldap' >/dev/null 2>&1; then
  venv_options="--system-site-packages"
  say "using the system's python3-ldap (fast LDAP path)"
fi

# A failed enrollment leaves no trace: remove what this run installed.
created_prefix=""
[ -e "$$PREFIX" ] || created_prefix=1
undo() {
  status=$$?
  if [ "$$status" -ne 0 ] && [ -n "$$created_prefix" ]; then rm -rf -- "$$PREFIX"; fi
  [ "$$status" -eq 0 ] || say "enrollment of $$HOSTRELAY_HOST failed; nothing was left on this host"
}
trap undo EXIT

say "installing the relay into $$PREFIX/venv"
install -d -m 0755 "$$PREFIX"
# shellcheck disable=SC2086 # venv_options is one option or none
[ -x "$$PREFIX/venv/bin/python" ] || "$$PYTHON" -m venv $$venv_options "$$PREFIX/venv"
"$$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
  "$$RELAY_PACKAGE"

say "generating this host's key and enrolling as $$HOSTRELAY_HOST"
# The private key is generated here and never leaves this host; only a CSR is sent.
printf '%s' "$$HOSTRELAY_ENROLL_TOKEN" | "$$PREFIX/venv/bin/hostrelay-relay" enroll \
  --url "$$HOSTRELAY_URL" --host "$$HOSTRELAY_HOST" --token-stdin \
  --config-dir "$$CONFIG_DIR" --state-dir "$$STATE_DIR"
trap - EXIT  # enrolled: from here on, keep what was installed

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  unit="$$("$$PREFIX/venv/bin/python" -c 'import hostrelay_relay, pathlib; print(pathlib.Path(hostrelay_relay.__file__).parent / "systemd" / "hostrelay-relay.service")')"
  sed -e "s#/opt/hostrelay/venv/bin/hostrelay-relay#$$PREFIX/venv/bin/hostrelay-relay#" \
      -e "s#/etc/hostrelay/relay.toml#$$CONFIG_DIR/relay.toml#" \
      -e "s#ReadWritePaths=/var/lib/hostrelay #ReadWritePaths=$$STATE_DIR #" \
      "$$unit" > /etc/systemd/system/hostrelay-relay.service
  chmod 0644 /etc/systemd/system/hostrelay-relay.service
  systemctl daemon-reload
  systemctl enable hostrelay-relay.service
  systemctl restart hostrelay-relay.service  # a re-enrolled host picks up its new certificate
  say "relay started: systemctl status hostrelay-relay"
else
  say "no systemd here: start the relay with $$PREFIX/venv/bin/hostrelay-relay run --config $$CONFIG_DIR/relay.toml"
fi
say "enrolled $$HOSTRELAY_HOST"
