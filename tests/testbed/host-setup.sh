#!/usr/bin/env bash
# Prepare a Debian 12 host (root, no systemd needed) for the micropvr test bed:
#   - Debian packages: docker.io, debootstrap, dpkg-dev, make, shellcheck, restic, python3-venv,
#     and a debian-archive-keyring that knows the trixie keys;
#   - a running docker engine (dockerd started in the background if needed).
# Idempotent: every step says what it did or what it found already done.
# Usage: tests/testbed/host-setup.sh
set -euo pipefail

readonly DOCKERD_LOG=/var/log/dockerd-testbed.log
readonly DOCKERD_WAIT=60

log() { printf 'host-setup: %s\n' "$*"; }
die() { printf 'host-setup: ERROR: %s\n' "$*" >&2; exit 1; }

[[ ${EUID} -eq 0 ]] || die "must run as root (it installs Debian packages and starts dockerd)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script expects a Debian 12 host"

export DEBIAN_FRONTEND=noninteractive

# --- 1. Debian packages -------------------------------------------------------
missing=()
need_pkg() { # need_pkg PACKAGE WHAT-WAS-CHECKED OK?
    local pkg=$1 what=$2 ok=$3
    if [[ ${ok} == yes ]]; then
        log "found ${what} (package ${pkg} not needed)"
    else
        log "missing ${what}: will install ${pkg}"
        missing+=("${pkg}")
    fi
}
have() { if command -v "$1" >/dev/null 2>&1; then echo yes; else echo no; fi; }

# The docker client may come from elsewhere (e.g. /usr/local/bin/docker); the
# engine is what matters, so require both.
if [[ $(have docker) == yes && $(have dockerd) == yes ]]; then
    need_pkg docker.io "docker client and dockerd ($(command -v docker), $(command -v dockerd))" yes
else
    need_pkg docker.io "docker client and/or dockerd" no
fi
need_pkg debootstrap "debootstrap" "$(have debootstrap)"
need_pkg dpkg-dev "dpkg-scanpackages" "$(have dpkg-scanpackages)"
need_pkg make "make" "$(have make)"
need_pkg shellcheck "shellcheck" "$(have shellcheck)"
# The unit tests of micropvr_offsite run the real restic against local repositories.
need_pkg restic "restic" "$(have restic)"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_pkg python3-venv "python3 with venv+ensurepip ($(command -v python3))" yes
else
    need_pkg python3-venv "python3 venv/ensurepip" no
fi
# debootstrap of trixie verifies its Release file against this keyring.
# bookworm's current debian-archive-keyring (2023.3+deb12u2) has the trixie
# keys; an older one (without them) gets upgraded from Debian's bookworm repo.
if [[ -e /usr/share/keyrings/debian-archive-trixie-stable.gpg && -e /usr/share/keyrings/debian-archive-trixie-automatic.gpg ]]; then
    need_pkg debian-archive-keyring "debian-archive-keyring with the trixie keys" yes
else
    need_pkg debian-archive-keyring "trixie keys in debian-archive-keyring" no
fi

if ((${#missing[@]})); then
    log "apt-get update"
    apt-get update -q || die "apt-get update failed"
    log "apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
    [[ -e /usr/share/keyrings/debian-archive-trixie-stable.gpg ]] \
        || die "debian-archive-keyring still has no trixie keys after install"
else
    log "all Debian packages already present, no apt-get run"
fi

# --- 2. docker engine ---------------------------------------------------------
if docker info >/dev/null 2>&1; then
    log "docker engine already answers (server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
else
    log "docker engine does not answer: starting dockerd in the background (log: ${DOCKERD_LOG})"
    # No systemd in CI: setsid + nohup so dockerd outlives this shell and the
    # caller's session; stdin from /dev/null so it never holds a terminal. Every
    # other descriptor is closed first: dockerd lives on, and one it inherited
    # (say the lock of `flock /tmp/molecule.lock make ...`) would stay held by it.
    (
        for fd_path in /proc/"${BASHPID}"/fd/*; do
            fd=${fd_path##*/}
            if ((fd > 2)); then eval "exec ${fd}>&-"; fi
        done
        exec setsid nohup dockerd >>"${DOCKERD_LOG}" 2>&1 </dev/null
    ) &
    dockerd_pid=$!
    waited=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "${dockerd_pid}" 2>/dev/null; then
            printf 'host-setup: ERROR: dockerd (pid %s) exited; last lines of %s:\n' "${dockerd_pid}" "${DOCKERD_LOG}" >&2
            tail -n 30 "${DOCKERD_LOG}" >&2 || true
            exit 1
        fi
        if ((waited >= DOCKERD_WAIT)); then
            printf 'host-setup: ERROR: dockerd (pid %s) did not answer "docker info" within %ss; last lines of %s:\n' \
                "${dockerd_pid}" "${DOCKERD_WAIT}" "${DOCKERD_LOG}" >&2
            tail -n 30 "${DOCKERD_LOG}" >&2 || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "dockerd (pid ${dockerd_pid}) answers after ${waited}s (server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
fi

log "done"
