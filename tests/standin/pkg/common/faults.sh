# shellcheck shell=sh
# standin_fault_hook PACKAGE VERSION SCRIPT
#
# Test-only fault injection (the real vendor packages have nothing like it).  Each line of
# /etc/micropvr-standin-faults reads "PACKAGE VERSION SCRIPT ACTION [SECONDS]":
#   micropvr 1.10.0-1 postinst fail       -> this maintainer script exits 1
#   micropvr 1.10.0-1 postinst sleep 120  -> it sleeps first (time to kill the run)
#   micropvr 1.10.0-1 postinst nostart    -> configure does not start the daemon, like a
#                                            package built with dh_installinit --no-start
#   micropvs 1.10.0-1 prerm nostop        -> the upgrade TO that version leaves the old daemon
#                                            running (--no-stop-on-upgrade without a restart):
#                                            the postinst's start finds it running, so the old
#                                            binary keeps serving.  Matched against the new
#                                            version ($2 of "prerm upgrade"), as the old
#                                            package's prerm is the one that runs.
#                                            (micropvr 1.10.x's postinst then fails: its migration tool
#                                            refuses to migrate under a running daemon.)
# A line applies only to the package version named, so a rollback to the saved
# old version runs clean scripts.  While a sleep lasts, /run/micropvr-standin-fault.sleeping
# names it, so that a test knows the install is under way.
STANDIN_FAULTS=/etc/micropvr-standin-faults
standin_fault_hook() {
    [ -r "$STANDIN_FAULTS" ] || return 0
    while read -r fault_package fault_version fault_script fault_action fault_seconds; do
        if [ "$fault_package" != "$1" ] || [ "$fault_version" != "$2" ] || [ "$fault_script" != "$3" ]; then
            continue
        fi
        case "$fault_action" in
            nostart|nostop)
                # Asked for with standin_fault_is; nothing to do here.
                ;;
            fail)
                echo "$1 $3: injected failure ($STANDIN_FAULTS)" >&2
                exit 1
                ;;
            sleep)
                echo "$1 $3 $$" > /run/micropvr-standin-fault.sleeping
                sleep "${fault_seconds:-60}"
                rm -f /run/micropvr-standin-fault.sleeping
                ;;
        esac
    done < "$STANDIN_FAULTS"
}

# standin_fault_is PACKAGE VERSION SCRIPT ACTION: exit 0 when that line is in the faults file.
standin_fault_is() {
    [ -r "$STANDIN_FAULTS" ] || return 1
    while read -r fault_package fault_version fault_script fault_action _; do
        if [ "$fault_package" = "$1" ] && [ "$fault_version" = "$2" ] && [ "$fault_script" = "$3" ] \
            && [ "$fault_action" = "$4" ]; then
            echo "$1 $3: injected fault \"$4\" ($STANDIN_FAULTS)" >&2
            return 0
        fi
    done < "$STANDIN_FAULTS"
    return 1
}
