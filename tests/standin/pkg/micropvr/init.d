#!/bin/sh
### BEGIN INIT INFO
# Provides:          micropvr
# Required-Start:    $remote_fs $syslog $network
# Required-Stop:     $remote_fs $syslog $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: MicroPVR records manager (test stand-in)
# Description:       Schedules recordings, keeps the records and tasks indexes
#                    and serves the JSON-RPC API (test stand-in, records nothing).
### END INIT INFO
#
# Actions: start|stop|restart|force-reload|reload|status
#   start    checks config and databases first, then waits up to START_TIMEOUT seconds until
#            the daemon answers JSON-RPC; fails (exit 1, with the reason) if it died.
#            Starting a running daemon is a successful no-op.
#   stop     TERM, up to 10 s, then KILL (5 s); removes the pid file.
#   reload   checks the config, then SIGHUP (log level and score limits; listen address and
#            database paths need a restart).  force-reload = restart.
#   status   LSB: 0 running, 1 dead but pid file exists, 3 not running.

PATH=/sbin:/usr/sbin:/bin:/usr/bin
NAME=micropvr
DESC="MicroPVR records manager"
DAEMON=/usr/sbin/micropvr
PIDFILE=/run/micropvr.pid
CONFIG=/etc/micropvr/micropvr.conf
STDERR_LOG=/var/log/micropvr/micropvr.stderr.log
START_TIMEOUT=10

# Removed but not purged: nothing to do.
[ -x "$DAEMON" ] || exit 0

# shellcheck disable=SC1091
[ -r /etc/default/micropvr ] && . /etc/default/micropvr

# Under systemd this redirects to systemctl (sysv-generator unit), as Debian's scripts do.
# shellcheck disable=SC1091
[ -r /lib/lsb/init-functions ] && . /lib/lsb/init-functions

is_running() {
    start-stop-daemon --status --pidfile "$PIDFILE" --name "$NAME"
}

do_start() {
    if is_running; then
        echo "$DESC is already running (pid $(cat "$PIDFILE"))."
        return 0
    fi
    # Refuse early, with the daemon's own message (config syntax, database schema).
    if ! check_output=$("$DAEMON" -c "$CONFIG" --check 2>&1); then
        echo "Not starting $DESC: ${check_output#micropvr: }" >&2
        return 1
    fi
    rm -f "$PIDFILE"
    mkdir -p "$(dirname "$STDERR_LOG")"
    : >"$STDERR_LOG"
    echo "Starting $DESC: $NAME"
    start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$PIDFILE" \
        --name "$NAME" --startas "$DAEMON" --output "$STDERR_LOG" -- -c "$CONFIG" || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [ -z "$pid" ]; then
        echo "$NAME: no pid file after start" >&2
        return 1
    fi
    rc=0
    "$DAEMON" -c "$CONFIG" --wait-ready --pid "$pid" --timeout "$START_TIMEOUT" || rc=$?
    case "$rc" in
        0)
            return 0
            ;;
        1)
            echo "$NAME failed to start: the daemon exited:" >&2
            if [ -s "$STDERR_LOG" ]; then
                tail -n 5 "$STDERR_LOG" >&2
            else
                echo "(see /var/log/micropvr/micropvr.log)" >&2
            fi
            rm -f "$PIDFILE"
            return 1
            ;;
        *)
            echo "$NAME (pid $pid) did not answer on its JSON-RPC port within ${START_TIMEOUT}s" >&2
            return 1
            ;;
    esac
}

do_stop() {
    echo "Stopping $DESC: $NAME"
    rc=0
    start-stop-daemon --stop --quiet --retry=TERM/10/KILL/5 --pidfile "$PIDFILE" \
        --name "$NAME" --remove-pidfile || rc=$?
    case "$rc" in
        0|1)
            rm -f "$PIDFILE"
            return 0
            ;;
        *)
            echo "$NAME could not be stopped" >&2
            return 1
            ;;
    esac
}

do_reload() {
    if ! is_running; then
        echo "$DESC is not running" >&2
        return 7
    fi
    if ! check_output=$("$DAEMON" -c "$CONFIG" --check 2>&1); then
        echo "Not reloading $DESC: ${check_output#micropvr: }" >&2
        return 1
    fi
    echo "Reloading $DESC configuration: $NAME"
    start-stop-daemon --stop --signal HUP --quiet --pidfile "$PIDFILE" --name "$NAME"
}

do_status() {
    rc=0
    is_running || rc=$?
    case "$rc" in
        0) echo "$NAME is running (pid $(cat "$PIDFILE"))." ;;
        1) echo "$NAME is not running, but pid file $PIDFILE exists." ;;
        3) echo "$NAME is not running." ;;
        *) echo "$NAME: status unknown." ;;
    esac
    return "$rc"
}

case "$1" in
    start)
        do_start
        ;;
    stop)
        do_stop
        ;;
    restart|force-reload)
        do_stop && do_start
        ;;
    reload)
        do_reload
        ;;
    status)
        do_status
        ;;
    *)
        echo "Usage: /etc/init.d/$NAME {start|stop|restart|force-reload|reload|status}" >&2
        exit 3
        ;;
esac
