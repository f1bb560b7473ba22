#!/usr/bin/env bash
# Install the relay as enrollment does on a stock host (no compiler: wheels only) into a fresh
# venv of the given Python, then run `hostrelay-relay --version` and `doctor`.
set -euo pipefail
python=${1:?usage: relay_wheel_check.sh PYTHON}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT

"${python}" -m pip wheel -q --no-deps --wheel-dir "${work}/dist" "${repo}/relay"
wheel=$(ls "${work}"/dist/hostrelay_relay-*.whl)
"${python}" -m venv "${work}/venv"
# No compiler may be used: every dependency must come as a wheel (binary or pure Python).
"${work}/venv/bin/python" -m pip install -q --only-binary=:all: \
    -c "${repo}/relay/requirements.lock" "${wheel}"
echo "relay-wheel-check: $("${work}/venv/bin/hostrelay-relay" --version) on $("${work}/venv/bin/python" -V)"

# doctor on a minimal config: it must run and report (a host without certificates fails some
# checks, which is doctor's job); a crash or a configuration error fails this check.
cat >"${work}/relay.toml" <<TOML
host = "dc01"
state_dir = "${work}/state"
TOML
status=0
"${work}/venv/bin/hostrelay-relay" doctor --config "${work}/relay.toml" >"${work}/doctor.out" 2>&1 || status=$?
cat "${work}/doctor.out"
if grep -q "Traceback" "${work}/doctor.out" || ! grep -q "configuration: host dc01" "${work}/doctor.out"; then
    echo "relay-wheel-check: doctor did not run on the installed wheel" >&2
    exit 1
fi
echo "relay-wheel-check: doctor ran (exit ${status}); the wheel installs with no compiler"
