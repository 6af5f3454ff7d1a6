# shellcheck shell=sh
# standin_invoke_rc_d SERVICE ACTION
#
# The maintainer scripts call invoke-rc.d like dh_installinit's would, so /usr/sbin/policy-rc.d
# is honoured (exit 101 = do not start/stop).  One addition: in a container without an init
# system (tini or sleep as PID 1) the runlevel is unknown, and invoke-rc.d then silently skips
# "start" unless a policy-rc.d allows it.  Only in that case -- no policy-rc.d, no systemd, no
# runlevel -- the init script is run directly, so packages installed in such a container start
# their service like on a real host.
standin_invoke_rc_d() {
    if [ -x /usr/sbin/policy-rc.d ] || [ -d /run/systemd/system ] \
        || { [ -x /sbin/runlevel ] && /sbin/runlevel >/dev/null 2>&1; }; then
        invoke-rc.d "$1" "$2"
    else
        echo "$1: no init system, runlevel or policy-rc.d found: running /etc/init.d/$1 $2" >&2
        "/etc/init.d/$1" "$2"
    fi
}
