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

[ "$$(id -u)" -eq 0 ] || { say "run this as root (pipe it to 'sudo bash')"; exit 1; }
"$$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "python 3.11 or newer is required ($$PYTHON)"; exit 1; }

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
[ -x "$$PREFIX/venv/bin/python" ] || "$$PYTHON" -m venv "$$PREFIX/venv"
"$$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check "$$RELAY_PACKAGE"

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
