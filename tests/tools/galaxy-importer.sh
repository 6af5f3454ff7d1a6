#!/usr/bin/env bash
# Run galaxy-importer, what Galaxy and Automation Hub run on upload, over the built tarball.
#
# Usage: tests/tools/galaxy-importer.sh DIR|TARBALL
#   DIR     a directory holding exactly one microimpuls-micropvr-*.tar.gz (make tarball)
# Settings: tests/tools/galaxy-importer.cfg. Fails when the import fails, and also on every
# WARNING or ERROR line the importer logs (ansible-lint findings, a missing role README, a
# bad docstring): Galaxy accepts an upload with warnings and shows them to every user.
# Needs galaxy-importer, ansible-core and ansible-lint on PATH (tests/requirements-dev.txt).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR

die() { printf 'galaxy-importer: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 DIR|TARBALL"
target=$1
if [[ -d ${target} ]]; then
    shopt -s nullglob
    tarballs=("${target}"/microimpuls-micropvr-*.tar.gz)
    shopt -u nullglob
    [[ ${#tarballs[@]} -eq 1 ]] || die "expected one microimpuls-micropvr-*.tar.gz in ${target}, found ${#tarballs[@]}"
    tarball=${tarballs[0]}
else
    tarball=${target}
fi
[[ -f ${tarball} ]] || die "no such tarball: ${tarball}"
tarball=$(cd -- "$(dirname -- "${tarball}")" && pwd -P)/$(basename -- "${tarball}")

# The importer writes importer_result.json into its working directory and its scratch files
# under ~/.ansible/tmp: keep both in a directory of our own.
work=$(mktemp -d)
trap 'rm -rf -- "${work}"' EXIT
# Unbuffered: the log shows each step as it happens, not all at the end.
export PYTHONUNBUFFERED=1
export GALAXY_IMPORTER_CONFIG=${SCRIPT_DIR}/galaxy-importer.cfg
export GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=${work}/ansible-tmp
export GALAXY_IMPORTER_TMP_ROOT_DIR=${work}
mkdir -p "${GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP}"

log=${work}/importer.log
rc=0
# pipefail: rc is the importer's own exit status.
(cd "${work}" && python3 -m galaxy_importer.main "${tarball}") 2>&1 | tee "${log}" || rc=$?

[[ ${rc} -eq 0 ]] || die "galaxy-importer exited with ${rc}"
grep -q '^Importer processing completed successfully' "${log}" \
    || die "galaxy-importer did not report a successful import"
if grep -E '^(WARNING|ERROR|CRITICAL):' "${log}" >"${work}/findings"; then
    die "galaxy-importer reported $(wc -l <"${work}/findings") warning(s)/error(s):
$(cat "${work}/findings")"
fi
printf 'galaxy-importer: %s imports cleanly\n' "$(basename -- "${tarball}")"
