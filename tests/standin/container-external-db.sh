#!/usr/bin/env bash
# Runs INSIDE a micropvr-testbed:*-db container (PostgreSQL and MariaDB servers, python3-psycopg2
# and python3-pymysql preinstalled) with the stand-in repository mounted at /srv/micropvr-repo;
# started by container-check.sh after container-lib.sh (the helpers).  For each engine
# (postgresql, then mysql on MariaDB) the external tasks database lifecycle:
#   0. role/user, database and a root-only password file; micropvr.conf with the tasks-db-* keys
#   1. install 1.9.0: the daemon creates the external tasks table at schema 1; tasks via
#      JSON-RPC land there, records in records.db; the password is in no log and no command line
#   2. upgrade to 1.10.0: postinst's micropvr-migrate migrates the table (rows exactly), idempotent
#   3. package-only downgrade to 1.9.0: refused (schema 2 newer than 1); data untouched
#   4. missing driver, bad password file mode, server down: clear refusals
# then purge.  Prints "ok - ..." / "not ok - ..." lines and a closing "LABEL: N passed, M failed".

cd / || exit 1  # psql runs as postgres, who cannot read root's home
PWFILE=/etc/micropvr/tasks-db.password
CONF=/etc/micropvr/micropvr.conf

# ext_q ENGINE SQL: run SQL as the server's administrator in the micropvr database; rows come
# out as "a|b|c" lines.  SQL goes on stdin, so no password is ever on a command line.
ext_q() {
    if [[ $1 == postgresql ]]; then
        printf '%s\n' "$2" | su postgres -c "psql --no-psqlrc -X -q -At -F '|' -v ON_ERROR_STOP=1 -d micropvr"
    else
        printf '%s\n' "$2" | mysql --batch --skip-column-names micropvr | tr '\t' '|'
    fi
}
# ext_rows ENGINE SQL LINE...: the query's rows must be exactly these lines
ext_rows() {
    local engine="$1" sql="$2" have want
    shift 2
    have="$(ext_q "$engine" "$sql")" || return 1
    want="$(printf '%s\n' "$@")"
    printf 'have:\n%s\nwant:\n%s\n' "$have" "$want"
    [[ $have == "$want" ]]
}
# secret_nowhere: the password (read from the file by grep -f, so not on grep's command line
# either) is in no log and in no process's command line
secret_nowhere() {
    local hits
    hits="$(grep -rlF -f "$PWFILE" /var/log/micropvr /proc/[0-9]*/cmdline 2>/dev/null)"
    echo "files with the password: ${hits:-none}"
    [[ -z $hits ]]
}
module_dir() { python3 -c "import os, $1; print(os.path.dirname($1.__file__))"; }

# write_conf ENGINE PORT-LINE: the shipped 1.9.0 micropvr.conf with the tasks-db-* keys added
write_conf() {
    local engine="$1" port_line="$2"
    mkdir -p /etc/micropvr
    dpkg-deb --fsys-tarfile /srv/micropvr-repo/micropvr_1.9.0-1_amd64.deb |
        tar -xO ./etc/micropvr/micropvr.conf |
        awk -v engine="$engine" -v port="$port_line" -v pw="$PWFILE" '
            { print }
            /^    "tasks-db-path":/ {
                print "    \"tasks-db-engine\": \"" engine "\","
                print "    \"tasks-db-name\": \"micropvr\","
                print "    \"tasks-db-host\": \"127.0.0.1\","
                if (port != "") print "    " port
                print "    \"tasks-db-user\": \"micropvr\","
                print "    \"tasks-db-password-file\": \"" pw "\","
            }' >"$CONF"
}

# setup_db ENGINE PASSWORD: role/user and database, password file (0600 root)
setup_db() {
    if [[ $1 == postgresql ]]; then
        su postgres -c "psql --no-psqlrc -X -q -v ON_ERROR_STOP=1" <<SQL
CREATE ROLE micropvr LOGIN PASSWORD '$2';
CREATE DATABASE micropvr OWNER micropvr;
SQL
    else
        mysql --batch <<SQL
CREATE DATABASE micropvr;
CREATE USER 'micropvr'@'localhost' IDENTIFIED BY '$2';
GRANT ALL ON micropvr.* TO 'micropvr'@'localhost';
SQL
    fi || return 1
    mkdir -p /etc/micropvr
    (umask 077 && printf '%s\n' "$2" >"$PWFILE")
    stat -c '%a %U' "$PWFILE"
    [[ "$(stat -c '%a %U' "$PWFILE")" == "600 root" ]]
}

lifecycle() { # lifecycle ENGINE PORT PASSWORD PORT-LINE SERVICE
    local e="$1" port="$2" password="$3" port_line="$4" service="$5"
    local url="$e://micropvr@127.0.0.1:$port/micropvr" ver_sql="SELECT version FROM micropvr_schema"
    local cols1="id, channel_id, name, start_time, duration, record_location, status"
    local cols2="id, channel_id, name, start_time, duration, end_time, record_location, status"

    section "$e.0 database, user, password file, micropvr.conf with the tasks-db-* keys"
    check "$e: create the user and the database; password file 0600 root" setup_db "$e" "$password"
    write_conf "$e" "$port_line"
    check "$e: micropvr.conf has tasks-db-engine $e" grep_q "\"tasks-db-engine\": \"$e\"" "$CONF"

    section "$e.1 install 1.9.0: the tasks table is created at schema 1 in $e"
    check "$e: apt-get install micropvr=1.9.0-1 (our micropvr.conf kept)" \
        apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.9.0-1
    check "$e: micropvr.conf kept" grep_q "\"tasks-db-engine\": \"$e\"" "$CONF"
    check_rc "$e: service micropvr status -> 0" 0 service micropvr status
    check "$e: get_version 1.9.0 / schema 1" rpc_is get_version '{}' 'r == {"version": "1.9.0", "schema_version": 1}'
    check "$e: log: external table created" grep_q "created database $url (schema version 1)" /var/log/micropvr/micropvr.log
    check "$e: log: tasks in $url" grep_q "tasks in $url (tasks-db-engine $e), records in /etc/micropvr/records.db" /var/log/micropvr/micropvr.log
    check "$e: micropvr_schema version 1" ext_rows "$e" "$ver_sql" 1
    check "$e: no SQLite tasks.db" test ! -e /etc/micropvr/tasks.db
    check "$e: records.db user_version 1" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'PRAGMA user_version')\" = 1 ]"
    check "$e: create_new_task #1" rpc_is create_new_task '{"channel_id": 7, "name": "News", "start_time": "2024-05-01 20:00:00", "duration": 90}' 'r == {"task_id": 1, "record_id": 1}'
    check "$e: create_new_task #2" rpc_is create_new_task '{"channel_id": 8, "name": "Film", "start_time": "2024-12-31 23:30:00", "duration": 150, "record_location": "/srv/rec"}' 'r == {"task_id": 2, "record_id": 2}'
    check "$e: create_new_task #3" rpc_is create_new_task '{"channel_id": 7, "name": "Late", "start_time": 1714600800, "duration": 30}' 'r == {"task_id": 3, "record_id": 3}'
    check "$e: cancel_task 3" rpc_is cancel_task '{"task_id": 3}' 'r == {"task_id": 3, "status": "cancelled"}'
    check "$e: cancel_task 99 -> -32001 not found" bash -c "standin-rpc cancel_task '{\"task_id\": 99}' 2>&1 | grep -q -- -32001"
    check "$e: get_tasks channel 7 (schema 1 rows)" rpc_is get_tasks '{"channel_id": 7}' \
        '[(x["id"], x["start_time"], x["duration"], x["status"]) for x in r] == [(1, "2024-05-01 20:00:00", 90, "scheduled"), (3, "2024-05-01 22:00:00", 30, "cancelled")]'
    check "$e: tasks rows in $e (schema 1)" ext_rows "$e" "SELECT $cols1 FROM tasks ORDER BY id" \
        '1|7|News|2024-05-01 20:00:00|90|/var/pvr|scheduled' \
        '2|8|Film|2024-12-31 23:30:00|150|/srv/rec|scheduled' \
        '3|7|Late|2024-05-01 22:00:00|30|/var/pvr|cancelled'
    check "$e: records rows in records.db" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'SELECT id,task_id,path,start_time,duration FROM records ORDER BY id')\" = \"\$(printf '%s\n' \
        '1|1|/var/pvr/ch_7/1_20240501200000.ts|2024-05-01 20:00:00|90' \
        '2|2|/srv/rec/ch_8/2_20241231233000.ts|2024-12-31 23:30:00|150' \
        '3|3|/var/pvr/ch_7/3_20240501220000.ts|2024-05-01 22:00:00|30')\" ]"
    check "$e: password in no log and no command line" secret_nowhere

    section "$e.2 upgrade to 1.10.0: postinst's micropvr-migrate migrates the $e table"
    check "$e: apt-get install micropvr=1.10.0-1" \
        apt-get install -y "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.10.0-1
    check "$e: micropvr_schema version 2" ext_rows "$e" "$ver_sql" 2
    check "$e: tasks rows migrated exactly" ext_rows "$e" "SELECT $cols2 FROM tasks ORDER BY id" \
        '1|7|News|1714593600|5400|1714599000|/var/pvr|scheduled' \
        '2|8|Film|1735687800|9000|1735696800|/srv/rec|scheduled' \
        '3|7|Late|1714600800|1800|1714602600|/var/pvr|cancelled'
    check "$e: columns as designed, no scratch tables left" ext_rows "$e" \
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = $([[ $e == postgresql ]] && echo 'current_schema()' || echo 'DATABASE()') ORDER BY table_name, ordinal_position" \
        "micropvr_schema|version|$([[ $e == postgresql ]] && echo integer || echo int)" \
        "tasks|id|$([[ $e == postgresql ]] && echo integer || echo int)" \
        "tasks|channel_id|$([[ $e == postgresql ]] && echo integer || echo int)" \
        "tasks|name|$([[ $e == postgresql ]] && echo text || echo varchar)" \
        "tasks|start_time|bigint" \
        "tasks|duration|$([[ $e == postgresql ]] && echo integer || echo int)" \
        "tasks|end_time|bigint" \
        "tasks|record_location|text" \
        "tasks|status|$([[ $e == postgresql ]] && echo text || echo varchar)"
    check "$e: records.db user_version 2, rows migrated" bash -c "[ \"\$(sqlite3 /etc/micropvr/records.db 'PRAGMA user_version; SELECT id,start_time,duration,end_time FROM records ORDER BY id')\" = \"\$(printf '%s\n' \
        2 '1|1714593600|5400|1714599000' '2|1735687800|9000|1735696800' '3|1714600800|1800|1714602600')\" ]"
    check "$e: migration logged" grep_q "micropvr-migrate: $url: migrated schema version 1 -> 2 (3 rows)" /var/log/micropvr/micropvr.log
    check "$e: still no SQLite tasks.db" test ! -e /etc/micropvr/tasks.db
    check_rc "$e: service micropvr status -> 0" 0 service micropvr status
    check "$e: get_version 1.10.0 / schema 2" rpc_is get_version '{}' 'r == {"version": "1.10.0", "schema_version": 2}'
    check "$e: new task after the upgrade gets id 4" rpc_is create_new_task '{"channel_id": 9, "name": "New", "start_time": "2025-01-01 00:00:00", "duration": 10}' 'r == {"task_id": 4, "record_id": 4}'
    check "$e: task 4 stored at schema 2" ext_rows "$e" "SELECT $cols2 FROM tasks WHERE id = 4" \
        '4|9|New|1735689600|600|1735690200|/var/pvr|scheduled'
    check "$e: get_tasks serves schema 2 rows" rpc_is get_tasks '{"status": "cancelled"}' \
        'r == [{"id": 3, "channel_id": 7, "name": "Late", "start_time": 1714600800, "duration": 1800, "end_time": 1714602600, "record_location": "/var/pvr", "status": "cancelled"}]'
    check "$e: micropvr-migrate again (idempotent): nothing to do" bash -c \
        "out=\$(micropvr-migrate) && echo \"\$out\" && echo \"\$out\" | grep -q 'nothing to do'"
    check "$e: still schema 2, 4 rows" ext_rows "$e" "SELECT (SELECT max(version) FROM micropvr_schema), count(*) FROM tasks" '2|4'
    check "$e: password in no log and no command line" secret_nowhere

    section "$e.3 package-only downgrade to 1.9.0: refused (schema 2 newer than 1)"
    check_fails "$e: apt-get install --allow-downgrades micropvr=1.9.0-1 fails in postinst" \
        apt-get install -y --allow-downgrades "${APTSRC[@]}" "${CONFOPTS[@]}" micropvr=1.9.0-1
    grep -E "schema|Not starting|Errors were" "$OUT" | sed "s/^/    > /" | head -n 4
    check "$e: dpkg: micropvr 1.9.0-1 half-configured" installed_version micropvr "1.9.0-1 install ok half-configured"
    check_rc "$e: service micropvr status -> 3" 3 service micropvr status
    check "$e: no micropvr process" no_process micropvr
    sed 's|"records-db-path": "/etc/micropvr/records.db"|"records-db-path": "/tmp/fresh-records.db"|' "$CONF" >/tmp/alt.conf
    check_fails "$e: micropvr --check (fresh records.db) refuses the $e table" micropvr -c /tmp/alt.conf --check
    check "$e: ... naming it: schema version 2, newer than 1" \
        grep_q "micropvr: database $url has schema version 2, newer than 1 supported by micropvr 1.9.0" "$OUT"
    check "$e: $e data untouched (schema 2, 4 rows)" ext_rows "$e" "SELECT (SELECT max(version) FROM micropvr_schema), count(*) FROM tasks" '2|4'

    section "$e.4 refusals: missing driver, password file mode, server down"
    local module dir
    module=$([[ $e == postgresql ]] && echo psycopg2 || echo pymysql)
    dir="$(module_dir "$module")"
    mv "$dir" "/tmp/$module.aside"
    check_fails "$e: without $module micropvr --check fails" micropvr --check
    check "$e: ... with micropvr.conf:LINE and the module" grep_q \
        "micropvr: $CONF:[0-9]*: 'tasks-db-engine' is \"$e\" but the Python module $module is missing (install python3-$module)" "$OUT"
    check "$e: no traceback" bash -c "! grep -q Traceback $OUT"
    mv "/tmp/$module.aside" "$dir"
    chmod 0644 "$PWFILE"
    check_fails "$e: password file mode 0644: micropvr --check fails" micropvr --check
    check "$e: ... with micropvr.conf:LINE, the file and the mode" grep_q \
        "micropvr: $CONF:[0-9]*: password file $PWFILE must be readable by root only (mode 0644; chmod 600 $PWFILE)" "$OUT"
    check "$e: ... password not echoed" bash -c "! grep -qF -f $PWFILE $OUT"
    chmod 0600 "$PWFILE"
    service "$service" stop >/dev/null 2>&1
    check_fails "$e: server stopped: micropvr --check fails" micropvr -c /tmp/alt.conf --check
    check "$e: ... cannot connect to $url" grep_q "micropvr: $url: cannot connect: " "$OUT"
    check "$e: password in no log and no command line" secret_nowhere
    check "service $service start" service "$service" start

    section "$e.5 purge"
    check "$e: dpkg --purge micropvr" dpkg --purge micropvr
    check "$e: no micropvr process" no_process micropvr
    rm -rf /etc/micropvr /tmp/alt.conf /tmp/fresh-records.db
}

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
section "$LABEL: $(cat /etc/debian_version), postgresql $(pkgver postgresql), mariadb-server $(pkgver mariadb-server)"
echo 'deb [trusted=yes] file:/srv/micropvr-repo ./' >/etc/apt/sources.list.d/micropvr-standin.list
check "apt-get update (local stand-in repository)" apt-get update "${APTSRC[@]}"
check "drivers present: python3-psycopg2, python3-pymysql" python3 -c 'import psycopg2, pymysql'
check "service postgresql start" service postgresql start
check "service mariadb start" service mariadb start

lifecycle postgresql 5432 'Pg-Standin-Secret-4711' '"tasks-db-port": 5432,' postgresql
lifecycle mysql 3306 'My-Standin-Secret-4712' '' mariadb

summary
