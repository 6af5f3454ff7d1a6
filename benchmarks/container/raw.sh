#!/usr/bin/env bash
# The raw baselines of `make bench`: what an expert types on a MicroPVR host without the
# collection, plus the untimed set-up steps the harness needs. Runs inside a bench container
# (installed as /usr/local/sbin/bench-raw); the harness times each call from the outside.
#
#   bench-raw backup DIR [verify]   sqlite3 .backup of both databases + tar of the same config
#                                   paths as the collection, no compression (the collection's
#                                   default); "verify" adds PRAGMA integrity_check and sha256sum
#   bench-raw profile DIR           the parts of a verified backup, each timed here, one
#                                   "part seconds" line each: copy (sqlite3 .backup of both
#                                   databases), tar, quick_check (PRAGMA quick_check of both
#                                   copies), sha256 (sha256sum of the copies and the tar)
#   bench-raw save DIR              untimed: the .debs of the installed version and copies of the
#                                   databases, for a later raw rollback
#   bench-raw update VERSION        apt-get update; apt-get install micropvr=V micropvs=V; restart
#   bench-raw rollback DIR          stop; dpkg -i the saved .debs (policy-rc.d: no daemon starts);
#                                   copy the databases back; restart
#   bench-raw pristine              untimed: keep the current databases as the reset point
#   bench-raw reset                 untimed: back to 1.9.0-1 with the pristine databases, no
#                                   backup sets, no history, no holds; services running
#   bench-raw state                 prints "micropvr=V micropvs=V records=S tasks=S rows=N running=yes|no"
#                                   (S: schema versions, N: rows in records)
#   bench-raw change N              untimed: a few rows changed, as between two nightly sets: 10
#                                   records spread over records.db updated, 5 added, 2 tasks
#                                   cancelled (N varies the values from round to round)
#   bench-raw digest                prints aggregates of both databases' rows (equal digests: the
#                                   same rows, as far as the off-host benchmark compares them)
set -euo pipefail

readonly DBS=(/etc/micropvr/records.db /etc/micropvr/tasks.db)
readonly CONFIG_PATHS=(/etc/micropvr /usr/local/nginx-micropvr/conf /etc/init.d/micropvr /etc/init.d/micropvs)
readonly SERVICES=(micropvr micropvs)
readonly PACKAGES=(micropvr micropvs)
readonly REPO=/srv/micropvr-repo
readonly PRISTINE=/var/lib/bench-pristine
readonly BASE_VERSION=1.9.0-1
readonly POLICY=/usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive

die() { printf 'bench-raw: %s\n' "$*" >&2; exit 1; }

services() { # services ACTION
    local name
    for name in "${SERVICES[@]}"; do
        /etc/init.d/"${name}" "$1" >/dev/null
    done
}

deny_starts() { printf '#!/bin/sh\nexit 101\n' >"${POLICY}"; chmod 0755 "${POLICY}"; }

put_databases_back() { # put_databases_back DIR
    local db
    for db in "${DBS[@]}"; do
        rm -f "${db}-journal" "${db}-wal" "${db}-shm"
        cp "$1/$(basename "${db}")" "${db}"
    done
}

copy_all() { # copy_all DIR: sqlite3 .backup of every database into DIR
    local db
    for db in "${DBS[@]}"; do
        sqlite3 "${db}" ".backup '$1/$(basename "${db}")'"
    done
}

config_tar() { # config_tar DIR: the configuration paths, databases excluded, into DIR/config.tar
    tar -cf "$1/config.tar" --exclude='*.db' --exclude='*.db-journal' "${CONFIG_PATHS[@]}" 2>/dev/null
}

check_all() { # check_all DIR PRAGMA: PRAGMA (integrity_check, quick_check) of every copy in DIR says ok
    local db
    for db in "${DBS[@]}"; do
        [[ $(sqlite3 "$1/$(basename "${db}")" "PRAGMA $2") == ok ]] \
            || die "$2 failed for $1/$(basename "${db}")"
    done
}

cmd_backup() {
    local dir=$1 verify=${2:-}
    mkdir -p "${dir}"
    copy_all "${dir}"
    config_tar "${dir}"
    if [[ ${verify} == verify ]]; then
        check_all "${dir}" integrity_check
        (cd "${dir}" && sha256sum -- * >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
    fi
}

timed() { # timed PART COMMAND...: run it, print "PART seconds"
    local part=$1 start=${EPOCHREALTIME}
    shift
    "$@"
    awk -v part="${part}" -v start="${start}" -v end="${EPOCHREALTIME}" 'BEGIN { printf "%s %.3f\n", part, end - start }'
}

sha256_all() { # sha256_all DIR
    (cd "$1" && sha256sum -- * >/dev/null)
}

cmd_profile() {
    local dir=$1
    rm -rf "${dir}"
    mkdir -p "${dir}"
    timed copy copy_all "${dir}"
    timed tar config_tar "${dir}"
    # Whether the raw copies are durable as a set is (the collection fsyncs every file of it):
    # what sync -f of their filesystem still has to flush. sqlite3's .backup syncs the copy when it
    # commits, so this is about 0 (2026-12-03; 0.55-0.67 s for 1 GiB left dirty by dd).
    timed sync sync -f "${dir}"
    timed quick_check check_all "${dir}" quick_check
    timed sha256 sha256_all "${dir}"
    rm -rf "${dir}"
}

cmd_save() {
    local dir=$1 specs=() name
    rm -rf "${dir}"
    mkdir -p "${dir}"
    for name in "${PACKAGES[@]}"; do
        specs+=("${name}=$(dpkg-query -W -f '${Version}' "${name}")")
    done
    (cd "${dir}" && apt-get download -q "${specs[@]}" >/dev/null)
    copy_all "${dir}"
}

cmd_update() {
    local version=$1 specs=() name
    for name in "${PACKAGES[@]}"; do
        specs+=("${name}=${version}")
    done
    apt-get update -q >/dev/null
    apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${specs[@]}" >/dev/null
    services restart
}

cmd_rollback() {
    local dir=$1
    services stop
    deny_starts
    dpkg -i --force-confdef --force-confold "${dir}"/*.deb >/dev/null
    rm -f "${POLICY}"
    put_databases_back "${dir}"
    services restart
}

cmd_pristine() {
    local db
    services stop
    rm -rf "${PRISTINE}"
    mkdir -p "${PRISTINE}"
    for db in "${DBS[@]}"; do
        sqlite3 "${db}" ".backup '${PRISTINE}/$(basename "${db}")'"
    done
    services start
}

cmd_reset() {
    local debs=() name
    [[ -d ${PRISTINE} ]] || die "no pristine databases in ${PRISTINE} (run: bench-raw pristine)"
    for name in "${PACKAGES[@]}"; do
        debs+=("${REPO}/${name}_${BASE_VERSION}_amd64.deb")
    done
    services stop
    apt-mark unhold "${PACKAGES[@]}" >/dev/null
    deny_starts
    dpkg -i --force-confdef --force-confold "${debs[@]}" >/dev/null
    rm -f "${POLICY}"
    put_databases_back "${PRISTINE}"
    rm -rf /var/backups/micropvr /var/lib/microimpuls-micropvr /var/backups/bench-raw
    services start
}

cmd_state() {
    local name out=() db
    for name in "${PACKAGES[@]}"; do
        out+=("${name}=$(dpkg-query -W -f '${Version}' "${name}")")
    done
    for db in "${DBS[@]}"; do
        out+=("$(basename "${db}" .db)=$(sqlite3 "${db}" 'PRAGMA user_version')")
    done
    out+=("rows=$(sqlite3 "${DBS[0]}" 'SELECT count(*) FROM records')")
    if /etc/init.d/micropvr status >/dev/null 2>&1 && /etc/init.d/micropvs status >/dev/null 2>&1; then
        out+=(running=yes)
    else
        out+=(running=no)
    fi
    echo "${out[*]}"
}

cmd_change() {
    local n=$1
    [[ ${n} =~ ^[0-9]+$ ]] || die "change: N must be a number"
    # Spread over the whole file, so that the changed pages are not all in one chunk of restic's.
    sqlite3 "${DBS[0]}" "BEGIN IMMEDIATE;
        UPDATE records SET size = size + ${n} + 1
            WHERE id IN (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 10)
                         SELECT i * (SELECT max(id) FROM records) / 11 FROM k);
        INSERT INTO records (id, task_id, channel_id, path, start_time, duration, size)
            SELECT id + 5, task_id, channel_id, path || '.${n}', start_time, duration, size
            FROM records WHERE id > (SELECT max(id) - 5 FROM records);
        COMMIT;"
    sqlite3 "${DBS[1]}" "UPDATE tasks SET status = 'cancelled'
        WHERE id IN (1 + ${n}, (SELECT max(id) FROM tasks) / 2 + ${n})"
}

cmd_digest() {
    sqlite3 "${DBS[0]}" 'SELECT count(*), total(id), total(size), total(duration), total(length(path)) FROM records'
    sqlite3 "${DBS[1]}" "SELECT count(*), total(id), total(status = 'cancelled'), total(length(name)) FROM tasks"
}

(($# >= 1)) || die "usage: bench-raw backup|profile|save|update|rollback|pristine|reset|state|change|digest [ARG...]"
command=$1
shift
case "${command}" in
    backup) (($# >= 1)) || die "usage: bench-raw backup DIR [verify]"; cmd_backup "$@" ;;
    profile) (($# == 1)) || die "usage: bench-raw profile DIR"; cmd_profile "$1" ;;
    save) (($# == 1)) || die "usage: bench-raw save DIR"; cmd_save "$1" ;;
    update) (($# == 1)) || die "usage: bench-raw update VERSION"; cmd_update "$1" ;;
    rollback) (($# == 1)) || die "usage: bench-raw rollback DIR"; cmd_rollback "$1" ;;
    pristine) cmd_pristine ;;
    reset) cmd_reset ;;
    state) cmd_state ;;
    change) (($# == 1)) || die "usage: bench-raw change N"; cmd_change "$1" ;;
    digest) cmd_digest ;;
    *) die "unknown command ${command}" ;;
esac
