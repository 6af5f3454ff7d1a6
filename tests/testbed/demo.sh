#!/usr/bin/env bash
# `make demo`: a Debian 12 container with stand-in MicroPVR 1.9.0, and the
# collection's playbooks run against it. Expects the Makefile's set-up (images,
# stand-in repository, virtualenv, collection link) to be done.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CONTAINER=micropvr-demo
IMAGE=micropvr-testbed:debian12
INVENTORY=inventories/testbed/hosts.yml
PLAYBOOK=${ANSIBLE_PLAYBOOK:-$ROOT/.venv/bin/ansible-playbook}

step() { printf '\n==> %s\n' "$*"; }

step "Starting a fresh $CONTAINER container from $IMAGE"
docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
docker run -d --name "$CONTAINER" --hostname "$CONTAINER" "$IMAGE" \
  /usr/bin/tini -s -- sleep infinity >/dev/null

step "Installing stand-in MicroPVR 1.9.0 from the local apt repository"
"$PLAYBOOK" -i "$INVENTORY" tests/testbed/install-standin.yml

step "microimpuls.micropvr.facts: what is installed and running"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.facts

step "microimpuls.micropvr.backup: a verified backup set of what is installed"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.backup -e '{"micropvr_backup_reason": "make demo"}'

step "microimpuls.micropvr.backup_verify: list and re-verify every backup set on the host"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.backup_verify

step "microimpuls.micropvr.update to 1.10.0-1: pre-flight, pinned backup, gated install, health checks"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.update -e micropvr_version=1.10.0-1

step "microimpuls.micropvr.update to 1.10.1-1, a bad release: health fails, automatic rollback (this play fails on purpose)"
if "$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.update -e micropvr_version=1.10.1-1 -e micropvr_health_retries=5; then
    echo "demo: the update to the bad release should have failed" >&2
    exit 1
fi

step "microimpuls.micropvr.rollback: back to the state before the first update"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.rollback \
    -e micropvr_backup_id="$(docker exec "$CONTAINER" python3 -c \
        'import json; print([e for e in map(json.loads, open("/var/lib/microimpuls-micropvr/history.jsonl")) if e["event"] == "update" and e["outcome"] == "updated"][0]["backup_id"])')"

step "microimpuls.micropvr.facts: the host after the rollback"
"$PLAYBOOK" -i "$INVENTORY" microimpuls.micropvr.facts

step "Done. The demo host keeps running: docker exec -it $CONTAINER bash; remove it with: docker rm -f $CONTAINER"
