#!/bin/sh
### BEGIN INIT INFO
# Provides:          micropvs
# Required-Start:    $remote_fs $syslog $network
# Required-Stop:     $remote_fs $syslog $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: MicroPVS recordings HTTP server (test stand-in)
# Description:       Debian's nginx running as a separate instance with
#                    /usr/local/nginx-micropvr/conf/nginx.conf on port 8080.
### END INIT INFO
#
# Actions: start|stop|restart|reload|force-reload|status|configtest
#   start       runs "nginx -t" first and fails with its message if the config is bad;
#               starting a running server is a successful no-op.
#   stop        QUIT (graceful), then TERM, then KILL; removes the pid file.
#   reload      configtest, then SIGHUP.  force-reload = reload (restart if not running).
#   status      LSB: 0 running, 1 dead but pid file exists, 3 not running.

PATH=/sbin:/usr/sbin:/bin:/usr/bin
NAME=micropvs
DESC="MicroPVS HTTP server"
DAEMON=/usr/sbin/nginx
PREFIX=/usr/local/nginx-micropvr
CONFIG=$PREFIX/conf/nginx.conf
# Must match the "pid" directive of $CONFIG.  Debian's own nginx uses /run/nginx.pid.
PIDFILE=$PREFIX/logs/nginx.pid
NGINX_ARGS="-p $PREFIX/ -e $PREFIX/logs/error.log -c $CONFIG"

# Removed but not purged (or nginx gone): nothing to do.
if [ ! -x "$DAEMON" ] || [ ! -r "$CONFIG" ]; then
    exit 0
fi

# shellcheck disable=SC1091
[ -r /etc/default/micropvs ] && . /etc/default/micropvs

# shellcheck disable=SC1091
[ -r /lib/lsb/init-functions ] && . /lib/lsb/init-functions

is_running() {
    start-stop-daemon --status --pidfile "$PIDFILE" --exec "$DAEMON"
}

do_configtest() {
    # shellcheck disable=SC2086
    if ! output=$("$DAEMON" -t $NGINX_ARGS 2>&1); then
        echo "$output" >&2
        return 1
    fi
    return 0
}

do_start() {
    if is_running; then
        echo "$DESC is already running (pid $(cat "$PIDFILE"))."
        return 0
    fi
    mkdir -p "$PREFIX/logs" "$PREFIX/temp"
    if ! do_configtest; then
        echo "Not starting $DESC: configuration test failed" >&2
        return 1
    fi
    rm -f "$PIDFILE"
    echo "Starting $DESC: $NAME"
    # nginx binds its ports before it daemonizes and writes the pid file, so a failure to
    # listen makes this command fail.
    # shellcheck disable=SC2086
    start-stop-daemon --start --quiet --pidfile "$PIDFILE" --exec "$DAEMON" -- $NGINX_ARGS || {
        echo "$NAME failed to start; see $PREFIX/logs/error.log" >&2
        return 1
    }
    # Wait (up to 5 s) for the pid file of the new master.
    i=0
    while [ "$i" -lt 50 ]; do
        is_running && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "$NAME did not write $PIDFILE" >&2
    return 1
}

do_stop() {
    echo "Stopping $DESC: $NAME"
    rc=0
    start-stop-daemon --stop --quiet --retry=QUIT/5/TERM/5/KILL/5 --pidfile "$PIDFILE" \
        --exec "$DAEMON" --remove-pidfile || rc=$?
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
    if ! do_configtest; then
        echo "Not reloading $DESC: configuration test failed" >&2
        return 1
    fi
    echo "Reloading $DESC configuration: $NAME"
    start-stop-daemon --stop --signal HUP --quiet --pidfile "$PIDFILE" --exec "$DAEMON"
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
    restart)
        do_configtest || { echo "Not restarting $DESC: configuration test failed" >&2; exit 1; }
        do_stop && do_start
        ;;
    reload)
        do_reload
        ;;
    force-reload)
        if is_running; then do_reload; else do_start; fi
        ;;
    status)
        do_status
        ;;
    configtest)
        do_configtest && echo "$NAME: configuration $CONFIG is OK"
        ;;
    *)
        echo "Usage: /etc/init.d/$NAME {start|stop|restart|reload|force-reload|status|configtest}" >&2
        exit 3
        ;;
esac
