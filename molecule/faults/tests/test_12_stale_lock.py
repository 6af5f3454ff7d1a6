"""Fault 12: a lock left by a crashed run. Younger than micropvr_lock_ttl, it stops the update;
older, it is reported and taken over, and the update completes."""

import json

import pytest

from faultlib import LOCK, assert_healthy_on, baseline, reset, run_playbook, target
from gatelib import host_state

CRASHED = dict(owner='20261127T010000Z-update-crashed')


def crashed(host):
    """The lock of the crashed run: an update to the host's target version."""
    return dict(CRASHED, purpose='update to %s' % target(host))


def write_lock(host, age_seconds):
    host.check_output("mkdir -p -m 0700 /var/lib/microimpuls-micropvr && printf '%%s' '%s' > %s && chmod 0600 %s"
                      % (json.dumps(dict(crashed(host), acquired_at=host.check_output(
                          "date -u -d '-%d seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ" % age_seconds))), LOCK, LOCK))


@pytest.fixture(scope='module', autouse=True)
def prepared(host):
    reset(host)


def test_a_young_lock_of_another_run_stops_the_update(host):
    write_lock(host, 600)
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=target(host), micropvr_lock_ttl=3600)
    assert result.returncode != 0
    assert 'the host is locked by another run (update to %s, owner %s' % (target(host), CRASHED['owner']) \
        in result.output
    assert 'the lock expires after 3600 s (micropvr_lock_ttl)' in result.output
    assert host_state(host) == before
    assert before['versions']['micropvr'] == baseline(host)
    assert json.loads(host.file(LOCK).content_string)['owner'] == CRASHED['owner']


def test_a_stale_lock_is_reported_and_taken_over(host):
    write_lock(host, 7300)
    result = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert result.returncode == 0, result.output
    assert 'took over an abandoned lock (update to %s, owner %s' % (target(host), CRASHED['owner']) in result.output
    assert 'older than 7200 s (micropvr_lock_ttl)' in result.output
    assert_healthy_on(host, target(host))
