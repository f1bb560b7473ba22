#!/usr/bin/env bash
# Install or upgrade the hostrelay relay on this host; safe to run again.
#
#   sudo relay/install.sh [PACKAGE]
#
# PACKAGE is what pip installs (default: the relay/ directory this script sits in; a wheel
# path works too). Overridable: HOSTRELAY_PREFIX (/opt/hostrelay), HOSTRELAY_CONFIG_DIR
# (/etc/hostrelay), HOSTRELAY_STATE_DIR (/var/lib/hostrelay), HOSTRELAY_UNIT_DIR
# (/etc/systemd/system), HOSTRELAY_BIN_DIR (/usr/local/bin), PYTHON (python3, 3.10+).
# Every dependency is installed from a wheel: no compiler or -dev headers are needed.
set -euo pipefail

prefix=${HOSTRELAY_PREFIX:-/opt/hostrelay}
config_dir=${HOSTRELAY_CONFIG_DIR:-/etc/hostrelay}
state_dir=${HOSTRELAY_STATE_DIR:-/var/lib/hostrelay}
unit_dir=${HOSTRELAY_UNIT_DIR:-/etc/systemd/system}
bin_dir=${HOSTRELAY_BIN_DIR:-/usr/local/bin}
python=${PYTHON:-python3}
package=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
unit=hostrelay-relay.service

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[[ ${EUID} -eq 0 ]] || die "run as root (the relay runs as root and installs a system unit)"
command -v "${python}" >/dev/null || die "${python} not found; install python3 (3.10+) first"
"${python}" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$("${python}" -V 2>&1) is too old; the relay needs Python 3.10 or newer"
"${python}" -c 'import ensurepip, venv' 2>/dev/null \
    || die "the Python venv module is missing: install python3-venv (Debian/Ubuntu) first"

venv=${prefix}/venv
install -d -m 0755 "${prefix}"
if [[ ! -x ${venv}/bin/python ]]; then
    say "creating ${venv}"
    "${python}" -m venv "${venv}"
fi
say "installing ${package} into ${venv}"
"${venv}/bin/python" -m pip install --quiet --upgrade pip
"${venv}/bin/python" -m pip install --quiet --upgrade --only-binary=:all: "${package}"

# Keys, certificates and job state: root only.
install -d -m 0700 "${config_dir}" "${state_dir}"
chmod 0700 "${config_dir}" "${state_dir}"

# The unit comes from the installed package, so it always matches the installed code.
unit_source=$("${venv}/bin/python" -c \
    'import importlib.resources as r; print(r.files("hostrelay_relay") / "systemd/hostrelay-relay.service")')
[[ -f ${unit_source} ]] || die "the installed package has no ${unit} (${unit_source})"
install -d -m 0755 "${unit_dir}"
sed -e "s#/opt/hostrelay/venv/bin/hostrelay-relay#${venv}/bin/hostrelay-relay#" \
    -e "s#/etc/hostrelay/relay.toml#${config_dir}/relay.toml#" \
    -e "s#ReadWritePaths=/var/lib/hostrelay #ReadWritePaths=${state_dir} #" \
    "${unit_source}" >"${unit_dir}/${unit}.new"
chmod 0644 "${unit_dir}/${unit}.new"
mv -f "${unit_dir}/${unit}.new" "${unit_dir}/${unit}"
install -d -m 0755 "${bin_dir}"
ln -sfn "${venv}/bin/hostrelay-relay" "${bin_dir}/hostrelay-relay"
say "installed ${unit_dir}/${unit} and ${bin_dir}/hostrelay-relay"

if [[ ! -d /run/systemd/system ]]; then
    say "systemd is not running here: start the relay with: hostrelay-relay run --config ${config_dir}/relay.toml"
    exit 0
fi
was_active=no
systemctl is-active --quiet "${unit}" && was_active=yes
systemctl daemon-reload
if [[ ! -f ${config_dir}/relay.toml ]]; then
    systemctl enable "${unit}"
    say "enabled ${unit}; write ${config_dir}/relay.toml (enrollment does), then: systemctl start ${unit}"
    exit 0
fi
systemctl enable --now "${unit}"
if [[ ${was_active} == yes ]]; then
    systemctl restart "${unit}"  # pick up the upgraded code
fi
say "${unit} is $(systemctl is-active "${unit}"); check it with: hostrelay-relay doctor"
