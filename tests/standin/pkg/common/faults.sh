# shellcheck shell=sh
# standin_fault_hook PACKAGE VERSION SCRIPT
#
# Test-only fault injection (the real vendor packages have nothing like it).  Each line of
# /etc/micropvr-standin-faults reads "PACKAGE VERSION SCRIPT ACTION [SECONDS]":
#   micropvr 1.10.0-1 postinst fail       -> this maintainer script exits 1
#   micropvr 1.10.0-1 postinst sleep 120  -> it sleeps first (time to kill the run)
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
