#!/usr/bin/env bash
# Helpers of the container checks (container-scenarios.sh, container-external-db.sh): sent to
# bash INSIDE the container by container-check.sh, ahead of the scenario script, as in
#   cat container-lib.sh container-scenarios.sh | docker exec -i NAME bash -s -- LABEL
# check / check_fails / check_rc print "ok - ..." / "not ok - ..." (with the tail of the
# command's output); summary prints the closing "LABEL: N passed, M failed" line.
set -uo pipefail

LABEL="${1:-standin}"
PASS=0
FAIL=0
OUT=/tmp/standin-check.out
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2034  # CONFOPTS and APTSRC are for the scenario scripts
CONFOPTS=(-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
# Only the local source: the image's Debian sources are not needed (nginx is preinstalled).
# shellcheck disable=SC2034
APTSRC=(-o Dir::Etc::sourcelist=/etc/apt/sources.list.d/micropvr-standin.list
    -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0)

ok() {
    PASS=$((PASS + 1))
    echo "ok - $*"
}
not_ok() {
    FAIL=$((FAIL + 1))
    echo "not ok - $*"
    sed 's/^/    | /' "$OUT" | tail -n 25
}
# run COMMAND...: output to $OUT (replaced only afterwards, so a command may read the
# previous command's output from $OUT)
run() {
    local rc=0
    "$@" >"$OUT.new" 2>&1 || rc=$?
    mv -f "$OUT.new" "$OUT"
    return "$rc"
}
# check DESCRIPTION COMMAND...: COMMAND must succeed
check() {
    local desc="$1"
    shift
    if run "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# check_fails DESCRIPTION COMMAND...: COMMAND must fail
check_fails() {
    local desc="$1"
    shift
    if run "$@"; then not_ok "$desc (unexpectedly succeeded)"; else ok "$desc"; fi
}
# check_rc DESCRIPTION RC COMMAND...: COMMAND must exit with RC
check_rc() {
    local desc="$1" want="$2" rc=0
    shift 2
    run "$@" || rc=$?
    if [[ $rc -eq $want ]]; then ok "$desc"; else
        echo "exit status $rc, wanted $want" >>"$OUT"
        not_ok "$desc"
    fi
}
section() { echo "# $*"; }

cat >/usr/local/bin/standin-rpc <<'EOF'
#!/usr/bin/python3
"""standin-rpc METHOD [JSON-PARAMS]: one JSON-RPC call to 127.0.0.1:4089, prints the result."""
import json, socket, sys
req = {"jsonrpc": "2.0", "method": sys.argv[1], "id": 1,
       "params": json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}}
with socket.create_connection(("127.0.0.1", 4089), timeout=5) as s:
    s.sendall(json.dumps(req).encode())      # no newline on purpose: framing by JSON value
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
resp = json.loads(data)
if "error" in resp:
    print(json.dumps(resp["error"]), file=sys.stderr)
    sys.exit(1)
print(json.dumps(resp["result"], sort_keys=True))
EOF
chmod 0755 /usr/local/bin/standin-rpc

uv() { sqlite3 "$1" 'PRAGMA user_version'; }
rpc_is() { # rpc_is METHOD PARAMS PYTHON-EXPR-ON-r
    local res
    res=$(standin-rpc "$1" "$2") || return 1
    echo "$res"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$res" "$3"
}
no_zombies() {
    ps -eo pid,ppid,stat,comm
    # shellcheck disable=SC2009  # all states listed above, so grep them
    ! ps -eo stat= | grep -q '^Z'
}
no_process() { ! pgrep -x "$1"; }
no_standin_processes() {
    ps -eo pid,args
    ! pgrep -x micropvr && ! pgrep -f '^nginx: master process .*nginx-micropvr'
}
installed_version() { # PACKAGE "VERSION STATUS"
    local have
    have="$(dpkg-query -W -f='${Version} ${Status}' "$1")"
    echo "$have"
    [[ $have == "$2" ]]
}
grep_q() { grep -q -- "$1" "$2" || { cat "$2"; return 1; }; }
summary() {
    echo "$LABEL: $PASS passed, $FAIL failed"
    [[ $FAIL -eq 0 ]]
}
