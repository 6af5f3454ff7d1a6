#!/usr/bin/env bash
# Runs INSIDE a micropvr-testbed container with the STRICT variant's repository (OUTDIR/strict)
# mounted at /srv/micropvr-repo; started by container-check.sh after container-lib.sh (the
# helpers).  Briefly checks what the strict variant changes: epoch versions, the micropvr-control
# companion pinned to micropvr's exact version, WAL from 1.10, micropvr-migrate in 1.9.0's
# postinst refusing a newer schema even under a deny-all policy-rc.d, and a 1.9.0 daemon on
# databases restored in DELETE mode and on databases left in WAL mode.
# Prints "ok - ..." / "not ok - ..." lines and a closing "LABEL: N passed, M failed".

OLD=1:1.9.0-1
NEW=1:1.10.0-1
PKGS=(micropvr micropvs micropvr-control)
at() { # at VERSION: PACKAGE=VERSION for every package
    local p
    for p in "${PKGS[@]}"; do printf '%s=%s\n' "$p" "$1"; done
}
all_at() { # all_at VERSION: every package installed and configured at VERSION
    local p
    for p in "${PKGS[@]}"; do installed_version "$p" "$1 install ok installed" || return 1; done
}
audit_clean() {
    dpkg --audit
    [[ -z "$(dpkg --audit)" ]]
}
journal() { sqlite3 "$1" 'PRAGMA journal_mode'; }
journal_is() { # journal_is MODE: both databases
    local db
    for db in records tasks; do
        echo "$db: $(journal "/etc/micropvr/$db.db")"
        [[ "$(journal "/etc/micropvr/$db.db")" == "$1" ]] || return 1
    done
}
mapfile -t OLD_SPECS < <(at "$OLD")
mapfile -t NEW_SPECS < <(at "$NEW")

section "$LABEL: $(cat /etc/debian_version), strict variant"
echo 'deb [trusted=yes] file:/srv/micropvr-repo ./' >/etc/apt/sources.list.d/micropvr-standin.list
check "apt-get update (strict repository)" apt-get update "${APTSRC[@]}"
check "repository lists epoch versions of all three packages" bash -c \
    "apt-cache madison micropvr micropvr-control | grep -c ' 1:1\.\(9\.0\|10\.0\|10\.1\)-1 ' | grep -qx 6"

section "1. install $OLD (micropvr-migrate in every release, DELETE journal)"
check "apt-get install ${OLD_SPECS[*]}" apt-get install -y "${APTSRC[@]}" "${OLD_SPECS[@]}"
check "all three at $OLD" all_at "$OLD"
check "1.9.0 ships micropvr-migrate" test -x /usr/sbin/micropvr-migrate
check "get_version 1.9.0 / schema 1" rpc_is get_version '{}' 'r == {"version": "1.9.0", "schema_version": 1}'
check "journal mode delete" journal_is delete
check "create_new_task #1" rpc_is create_new_task '{"channel_id": 7, "name": "News", "start_time": "2024-05-01 20:00:00", "duration": 90}' 'r["task_id"] == 1'
check "create_new_task #2" rpc_is create_new_task '{"channel_id": 8, "name": "Film", "start_time": "2024-12-31 23:30:00", "duration": 150}' 'r["task_id"] == 2'
check "micropvr_control -H 127.0.0.1 -p 4089 -f get_version" bash -c \
    "micropvr_control -H 127.0.0.1 -p 4089 -f get_version | grep -q '\"version\": \"1.9.0\"'"
check "micropvr_control -f get_records -A channel_id=7" bash -c \
    "micropvr_control -f get_records -A channel_id=7 | grep -q '\"path\": \"/var/pvr/ch_7/1_'"
check_rc "micropvr_control on a closed port -> 1" 1 micropvr_control -p 9 -f is_alive
# The operator's backup of 1.9.0's data (daemon stopped: plain copies are consistent).
check "stop, keep a copy of the 1.9.0 databases, start" bash -c \
    "service micropvr stop && mkdir -p /root/pre && cp -p /etc/micropvr/records.db /etc/micropvr/tasks.db /root/pre/ \
     && sqlite3 /root/pre/tasks.db .dump >/root/pre/tasks.sql && service micropvr start"

section "2. upgrade to $NEW: migrated, WAL"
check "apt-get install ${NEW_SPECS[*]}" apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" "${NEW_SPECS[@]}"
check "all three at $NEW" all_at "$NEW"
check "get_version 1.10.0 / schema 2" rpc_is get_version '{}' 'r == {"version": "1.10.0", "schema_version": 2}'
check "journal mode wal" journal_is wal
check "the switch is logged" grep_q "journal mode delete -> wal" /var/log/micropvr/micropvr.log
check "create_new_task in WAL mode (tasks.db and records.db)" bash -c \
    "standin-rpc create_new_task '{\"channel_id\": 9, \"name\": \"WAL\", \"start_time\": 1714600800, \"duration\": 30}' \
     && [ \"\$(sqlite3 /etc/micropvr/records.db 'SELECT count(*) FROM records WHERE task_id = 3')\" = 1 ]"
check "-wal and -shm files beside the databases while the daemon runs" \
    ls /etc/micropvr/records.db-wal /etc/micropvr/records.db-shm /etc/micropvr/tasks.db-wal /etc/micropvr/tasks.db-shm

section "3. micropvr-control is pinned to micropvr's exact version"
check_fails "dpkg -i micropvr-control $OLD next to micropvr $NEW fails on Depends" \
    dpkg -i /srv/micropvr-repo/micropvr-control_1.9.0-1_amd64.deb
check "dpkg names the exact dependency" grep_q "depends on micropvr (= $OLD)" "$OUT"
check_fails "apt-get install micropvr-control=$OLD alone is refused" \
    apt-get install -y "${APTSRC[@]}" micropvr-control="$OLD"
check "back to micropvr-control $NEW" dpkg -i /srv/micropvr-repo/micropvr-control_1.10.0-1_amd64.deb
check "dpkg --audit clean" audit_clean

section "4. package-only downgrade to $OLD under a deny-all policy-rc.d: the old postinst refuses"
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
check_fails "apt-get install --allow-downgrades ${OLD_SPECS[*]} fails in postinst" \
    apt-get install -y --allow-downgrades "${APTSRC[@]}" "${CONFOPTS[@]}" "${OLD_SPECS[@]}"
check "the message names the database, both schemas and what to do" grep_q \
    "micropvr-migrate: database /etc/micropvr/records.db has schema version 2, newer than 1 supported by micropvr 1.9.0; restore a backup of this release's databases" "$OUT"
check "micropvr is left half-configured (dpkg --audit)" bash -c "dpkg --audit | grep -q micropvr"
check "the databases were not touched (schema 2)" bash -c \
    "[ \"\$(sqlite3 /etc/micropvr/records.db 'PRAGMA user_version')\" = 2 ] && [ \"\$(sqlite3 /etc/micropvr/tasks.db 'PRAGMA user_version')\" = 2 ]"

section "5. restore the 1.9.0 databases (DELETE mode), then configure: the order a rollback needs"
check "stop the daemon, restore the copies (no -wal/-shm)" bash -c \
    "/etc/init.d/micropvr stop && rm -f /etc/micropvr/*.db-wal /etc/micropvr/*.db-shm \
     && cp -p /root/pre/records.db /root/pre/tasks.db /etc/micropvr/"
rm -f /usr/sbin/policy-rc.d
check "dpkg --configure -a completes" dpkg --configure -a
check "all three at $OLD" all_at "$OLD"
check "dpkg --audit clean" audit_clean
check "get_version 1.9.0 / schema 1" rpc_is get_version '{}' 'r == {"version": "1.9.0", "schema_version": 1}'
check "1.9.0 leaves the restored files in DELETE mode" journal_is delete
check "tasks exactly as in the copy" bash -c "sqlite3 /etc/micropvr/tasks.db .dump | cmp - /root/pre/tasks.sql"

section "6. a 1.9.0 daemon on databases left in WAL mode"
check "stop, switch both files to WAL, start" bash -c \
    "service micropvr stop && for db in records tasks; do sqlite3 /etc/micropvr/\$db.db 'PRAGMA journal_mode=WAL' >/dev/null; done \
     && service micropvr start"
check "journal mode stays wal under 1.9.0" journal_is wal
check "create_new_task under 1.9.0 in WAL mode" rpc_is create_new_task \
    '{"channel_id": 7, "name": "Old on WAL", "start_time": "2024-06-01 10:00:00", "duration": 10}' 'r["task_id"] == 3'
check "get_records sees it" rpc_is get_records '{"task_id": 3}' 'len(r) == 1 and r[0]["duration"] == 10'

summary
