#!/usr/bin/env bash
# Print the path of a Python interpreter of version X.Y (a pyenv one, or one on PATH); fail
# with the fix when there is none.
set -euo pipefail
version=${1:?usage: find_python.sh X.Y}
candidates=()
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for found in "${root}"/versions/"${version}".*/bin/python"${version}"; do
        [[ -x ${found} ]] && candidates+=("${found}")
    done
fi
candidates+=("python${version}" "/usr/bin/python${version}")
for candidate in "${candidates[@]}"; do
    if "${candidate}" -c 'import sys; print(sys.version_info[:2])' >/dev/null 2>&1; then
        command -v "${candidate}"
        exit 0
    fi
done
echo "find_python.sh: no Python ${version} here; install it (pyenv install ${version}) to run the relay's tests on it" >&2
exit 1
