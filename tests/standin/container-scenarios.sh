#!/usr/bin/env bash
# Runs INSIDE a micropvr-testbed container (tini as PID 1, no init system) with the stand-in
# repository mounted at /srv/micropvr-repo; started by container-check.sh after container-lib.sh
# (the helpers).  Walks the package lifecycle: install 1.9.0, upgrade to 1.10.0 (migration,
# kept conffile edit), package-only downgrade (refused start), the bad release 1.10.1,
# policy-rc.d, stop/status, purge.
# Prints "ok - ..." / "not ok - ..." lines and a closing "LABEL: N passed, M failed".

section "$LABEL: $(cat /etc/debian_version), $(nginx -v 2>&1)"
echo 'deb [trusted=yes] file:/srv/micropvr-repo ./' >/etc/apt/sources.list.d/micropvr-standin.list
check "apt-get update (local stand-in repository)" apt-get update "${APTSRC[@]}"
check "repository lists all three micropvr versions" \
    bash -c "apt-cache madison micropvr | grep -c micropvr | grep -qx 3"

section "1. install 1.9.0"
check "apt-get install micropvr=1.9.0-1 micropvs=1.9.0-1" \
    apt-get install -y "${APTSRC[@]}" micropvr=1.9.0-1 micropvs=1.9.0-1
check_rc "service micropvr status -> 0" 0 service micropvr status
check_rc "service micropvs status -> 0" 0 service micropvs status
check "is_alive true" rpc_is is_alive '{}' 'r["is_alive"] is True and r["session_count"] == 0'
check "get_version 1.9.0 / schema 1" rpc_is get_version '{}' 'r == {"version": "1.9.0", "schema_version": 1}'
check "curl /nginx-stats (stub_status)" bash -c "curl -fsS http://127.0.0.1:8080/nginx-stats | grep -q 'Active connections'"
check "curl /health" bash -c "[ \"\$(curl -fsS http://127.0.0.1:8080/health)\" = ok ]"
mkdir -p /var/pvr_links/ch_7 && echo recording >/var/pvr_links/ch_7/probe.ts
check "curl /pvr/ serves records-link-dir" bash -c "[ \"\$(curl -fsS http://127.0.0.1:8080/pvr/ch_7/probe.ts)\" = recording ]"
check "micropvs pid file is its own" bash -c \
    "[ -s /usr/local/nginx-micropvr/logs/nginx.pid ] && ! grep -qx \"\$(cat /usr/local/nginx-micropvr/logs/nginx.pid)\" /run/nginx.pid 2>/dev/null"
check "records.db user_version 1" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'PRAGMA user_version')\" = 1 ]"
check "tasks.db user_version 1" bash -c "[ \"\$(sqlite3 /etc/micropvr/tasks.db 'PRAGMA user_version')\" = 1 ]"
check "startup line in the log" grep_q "micropvr 1.9.0 started: schema version 1, JSON-RPC listening on 0.0.0.0:4089" /var/log/micropvr/micropvr.log
check "create_new_task #1" rpc_is create_new_task '{"channel_id": 7, "name": "News", "start_time": "2024-05-01 20:00:00", "duration": 90}' 'r["task_id"] == 1'
check "create_new_task #2" rpc_is create_new_task '{"channel_id": 8, "name": "Film", "start_time": "2024-12-31 23:30:00", "duration": 150, "record_location": "/srv/rec"}' 'r["task_id"] == 2'
check "create_new_task #3" rpc_is create_new_task '{"channel_id": 7, "name": "Late", "start_time": 1714600800, "duration": 30}' 'r["task_id"] == 3'
check "cancel_task 3" rpc_is cancel_task '{"task_id": 3}' 'r["status"] == "cancelled"'
check "get_records channel 7 (schema 1 rows)" rpc_is get_records '{"channel_id": 7}' \
    '[(x["id"], x["start_time"], x["duration"]) for x in r] == [(1, "2024-05-01 20:00:00", 90), (3, "2024-05-01 22:00:00", 30)]'
check "starting a running daemon is a no-op success" service micropvr start
check "JSON-RPC errors: positional params -> -32602" bash -c \
    "standin-rpc get_records '[7]' 2>&1 | grep -q -- -32602"

section "2. edit micropvr.conf, upgrade to 1.10.0 keeping the edit"
sed -i 's/"records-min-free-space": 10240/"records-min-free-space": 20480/' /etc/micropvr/micropvr.conf
check "conffile edited" grep_q '"records-min-free-space": 20480' /etc/micropvr/micropvr.conf
check "apt-get install micropvr=1.10.0-1 micropvs=1.10.0-1 (confold)" \
    apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.10.0-1 micropvs=1.10.0-1
check "edit kept" grep_q '"records-min-free-space": 20480' /etc/micropvr/micropvr.conf
check "vendor's new conffile left as .dpkg-dist" grep_q 'score-max-cpu-la1' /etc/micropvr/micropvr.conf.dpkg-dist
check "records.db user_version 2" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'PRAGMA user_version')\" = 2 ]"
check "tasks.db user_version 2" bash -c "[ \"\$(sqlite3 /etc/micropvr/tasks.db 'PRAGMA user_version')\" = 2 ]"
check "tasks rows migrated exactly" bash -c "[ \"\$(sqlite3 /etc/micropvr/tasks.db 'SELECT id,channel_id,name,start_time,duration,end_time,record_location,status FROM tasks ORDER BY id')\" = \"\$(printf '%s\n' \
    '1|7|News|1714593600|5400|1714599000|/var/pvr|scheduled' \
    '2|8|Film|1735687800|9000|1735696800|/srv/rec|scheduled' \
    '3|7|Late|1714600800|1800|1714602600|/var/pvr|cancelled')\" ]"
check "records rows migrated exactly" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'SELECT id,task_id,path,start_time,duration,end_time FROM records ORDER BY id')\" = \"\$(printf '%s\n' \
    '1|1|/var/pvr/ch_7/1_20240501200000.ts|1714593600|5400|1714599000' \
    '2|2|/srv/rec/ch_8/2_20241231233000.ts|1735687800|9000|1735696800' \
    '3|3|/var/pvr/ch_7/3_20240501220000.ts|1714600800|1800|1714602600')\" ]"
check "migration logged" grep_q "migrated schema version 1 -> 2 (3 rows)" /var/log/micropvr/micropvr.log
check_rc "service micropvr status -> 0" 0 service micropvr status
check_rc "service micropvs status -> 0" 0 service micropvs status
check "get_version 1.10.0 / schema 2" rpc_is get_version '{}' 'r == {"version": "1.10.0", "schema_version": 2}'
check "is_alive true" rpc_is is_alive '{}' 'r["is_alive"] is True'
check "data preserved (3 tasks, 3 records)" rpc_is get_tasks '{}' 'len(r) == 3 and r[1]["name"] == "Film"'
check "curl /nginx-stats after upgrade" bash -c "curl -fsS http://127.0.0.1:8080/nginx-stats | grep -q 'Active connections'"
check "new task after upgrade" rpc_is create_new_task '{"channel_id": 9, "name": "New", "start_time": "2025-01-01 00:00:00", "duration": 10}' 'r["task_id"] == 4'
check "draining: 401 of 500 sessions -> is_alive false" bash -c \
    "standin-rpc standin_set_session_count '{\"count\": 401}' && standin-rpc is_alive | grep -q '\"is_alive\": false'"
standin-rpc standin_set_session_count '{"count": 0}' >/dev/null

section "3. package-only downgrade to 1.9.0: the old daemon refuses schema 2"
check_fails "apt-get install --allow-downgrades micropvr=1.9.0-1 fails in postinst" \
    apt-get install -y --allow-downgrades "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.9.0-1
grep -E "schema|Not starting|returned error|Errors were" "$OUT" | sed "s/^/    > /" | head -n 8
check "dpkg: micropvr 1.9.0-1 left half-configured" installed_version micropvr "1.9.0-1 install ok half-configured"
check_fails "service micropvr start fails" service micropvr start
check "start failure names the schema problem" grep_q "has schema version 2, newer than 1 supported by micropvr 1.9.0" "$OUT"
check "log names the schema problem" grep_q "records.db has schema version 2, newer than 1 supported by micropvr 1.9.0" /var/log/micropvr/micropvr.log
check_rc "service micropvr status -> 3" 3 service micropvr status
check "no micropvr process" no_process micropvr

section "4. the bad release 1.10.1"
check "apt-get install micropvr=1.10.1-1 micropvs=1.10.1-1" \
    apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.10.1-1 micropvs=1.10.1-1
check_rc "service micropvr status -> 0" 0 service micropvr status
check "get_version 1.10.1" rpc_is get_version '{}' 'r["version"] == "1.10.1"'
check "is_alive false (bad release)" rpc_is is_alive '{}' 'r["is_alive"] is False and r["score"] > 100'
check "data still served" rpc_is get_tasks '{}' 'len(r) == 4'

section "5. policy-rc.d exit 101: installs do not start the daemons"
check "service micropvr stop" service micropvr stop
check "service micropvs stop" service micropvs stop
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
check "reinstall micropvr/micropvs 1.10.1 under policy-rc.d" \
    apt-get install -y --reinstall "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.10.1-1 micropvs=1.10.1-1
check "invoke-rc.d reported the denial" grep_q "policy-rc.d denied execution of start" "$OUT"
check_rc "micropvr not started (status 3)" 3 service micropvr status
check_rc "micropvs not started (status 3)" 3 service micropvs status
check "rollback-style downgrade to 1.9.0 under policy-rc.d succeeds" \
    apt-get install -y --allow-downgrades "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.9.0-1 micropvs=1.9.0-1
check "micropvr 1.9.0-1 configured" installed_version micropvr "1.9.0-1 install ok installed"
check_rc "micropvr still not started (status 3)" 3 service micropvr status
check "no micropvr process" no_process micropvr
rm -f /usr/sbin/policy-rc.d
check "without policy-rc.d: upgrade to 1.10.0 starts again" \
    apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.10.0-1 micropvs=1.10.0-1
check_rc "service micropvr status -> 0" 0 service micropvr status
check_rc "service micropvs status -> 0" 0 service micropvs status

section "6. stop, status, zombies; reload; bad config"
check "service micropvr reload" service micropvr reload
check "service micropvs reload" service micropvs reload
check "service micropvr restart" service micropvr restart
check "is_alive after restart" rpc_is is_alive '{}' 'r["is_alive"] is True'
check "service micropvr stop" service micropvr stop
check_rc "service micropvr status -> 3" 3 service micropvr status
check "pid file removed" test ! -e /run/micropvr.pid
check "no micropvr process" no_process micropvr
check "service micropvr stop when stopped is a success" service micropvr stop
check "service micropvs stop" service micropvs stop
check_rc "service micropvs status -> 3" 3 service micropvs status
check "no zombies" no_zombies
cp /etc/micropvr/micropvr.conf /tmp/micropvr.conf.good
sed -i 's/"json-rpc-enabled": true,/"json-rpc-enabled": true/' /etc/micropvr/micropvr.conf
check_fails "start with a missing comma fails" service micropvr start
check "message names micropvr.conf and the line" grep_q "micropvr.conf:[0-9]*: missing ','" "$OUT"
check "no traceback" bash -c "cat $OUT; ! grep -q Traceback $OUT"
cp /tmp/micropvr.conf.good /etc/micropvr/micropvr.conf
sed -i 's/listen 8080;/listen 8080/' /usr/local/nginx-micropvr/conf/nginx.conf
check_fails "micropvs start with a bad nginx.conf fails" service micropvs start
check "nginx -t message shown" grep_q "nginx.conf" "$OUT"
sed -i 's/listen 8080$/listen 8080;/' /usr/local/nginx-micropvr/conf/nginx.conf
check "both start again" bash -c "service micropvr start && service micropvs start"

section "7. purge keeps the databases"
check "apt-get purge micropvr micropvs" apt-get purge -y "${APTSRC[@]}" micropvr micropvs
check "databases kept" test -s /etc/micropvr/records.db -a -s /etc/micropvr/tasks.db
check "logs removed" test ! -e /var/log/micropvr
check "no micropvr/micropvs process left" no_standin_processes
check "no zombies" no_zombies

summary
