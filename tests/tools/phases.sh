#!/usr/bin/env bash
# Run make targets one after another and print how long each took, also when one fails.
#
# Usage: tests/tools/phases.sh TARGET...
# `make test` runs through this so that every CI log ends with the time of each phase:
# the CI job has a hard limit, and a slow phase should be visible before it is a timeout.
set -uo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 TARGET..." >&2; exit 2; }

declare -a names=() seconds=()
status=0
start_all=${SECONDS}
for target in "$@"; do
    start=${SECONDS}
    echo "=== phase ${target} (at $(date -u +%H:%M:%S))"
    make --no-print-directory "${target}" || status=$?
    names+=("${target}")
    seconds+=($((SECONDS - start)))
    [[ ${status} -eq 0 ]] || break
done

echo "=== phase times"
for i in "${!names[@]}"; do
    printf '  %-16s %4d min %02d s\n' "${names[i]}" $((seconds[i] / 60)) $((seconds[i] % 60))
done
total=$((SECONDS - start_all))
printf '  %-16s %4d min %02d s%s\n' total $((total / 60)) $((total % 60)) \
    "$([[ ${status} -eq 0 ]] || echo "  (stopped: ${names[-1]} failed)")"
exit "${status}"
