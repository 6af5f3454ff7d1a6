#!/usr/bin/env bash
# Check the stand-in packages for real in the micropvr-testbed Debian images:
#
#   tests/standin/container-check.sh [OUTDIR] [IMAGE...]
#
# Builds the repository into OUTDIR (default: a temporary directory; skipped when up to date),
# then for each IMAGE (default: micropvr-testbed:debian12, :debian13, :debian12-db and
# :debian13-db, built by tests/testbed/) runs, after the helpers of container-lib.sh,
# container-scenarios.sh (the SQLite lifecycle), or on a *-db image container-external-db.sh
# (the external tasks database lifecycle on PostgreSQL and MariaDB), in a fresh container with
# OUTDIR mounted read-only at /srv/micropvr-repo, and removes the container afterwards.  On
# micropvr-testbed:debian12 only, a second fresh container checks the strict variant
# (container-strict.sh, OUTDIR/strict mounted instead).  Each run ends with a
# "TAG: N passed, M failed" line.  Never pulls images.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUTDIR="${1:-}"
shift || true
IMAGES=("$@")
[[ ${#IMAGES[@]} -gt 0 ]] || IMAGES=(micropvr-testbed:debian12 micropvr-testbed:debian13
    micropvr-testbed:debian12-db micropvr-testbed:debian13-db)

CONTAINERS=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local c
    for c in "${CONTAINERS[@]}"; do
        docker rm -f "$c" >/dev/null 2>&1 || true
    done
    if [[ -n ${TMP_OUTDIR:-} ]]; then
        rm -rf "$TMP_OUTDIR"
    fi
}
trap cleanup EXIT

if [[ -z $OUTDIR ]]; then
    TMP_OUTDIR="$(mktemp -d)"
    OUTDIR="$TMP_OUTDIR"
fi
"$HERE/build.sh" "$OUTDIR" >/dev/null
OUTDIR="$(cd "$OUTDIR" && pwd)"

status=0
for image in "${IMAGES[@]}"; do
    if ! docker image inspect "$image" >/dev/null 2>&1; then
        echo "$image: image not found (build it with tests/testbed/); not pulling" >&2
        status=1
        continue
    fi
    tag="${image##*:}"
    name="standin-check-$tag-$$"
    CONTAINERS+=("$name")
    docker run -d --name "$name" -v "$OUTDIR:/srv/micropvr-repo:ro" "$image" >/dev/null
    scenario="$HERE/container-scenarios.sh"
    [[ $tag != *-db ]] || scenario="$HERE/container-external-db.sh"
    cat "$HERE/container-lib.sh" "$scenario" | docker exec -i "$name" bash -s -- "$tag" || status=1
    docker rm -f "$name" >/dev/null
    # The strict variant, briefly, on one image (tests/standin/README.md).
    if [[ $tag == debian12 ]]; then
        name="standin-check-$tag-strict-$$"
        CONTAINERS+=("$name")
        docker run -d --name "$name" -v "$OUTDIR/strict:/srv/micropvr-repo:ro" "$image" >/dev/null
        cat "$HERE/container-lib.sh" "$HERE/container-strict.sh" |
            docker exec -i "$name" bash -s -- "$tag-strict" || status=1
        docker rm -f "$name" >/dev/null
    fi
done
exit "$status"
