"""Fault 11: the vendor repository cannot be reached. A rollback completes from the .deb files
saved in the backup set; an update stops at its pre-flight, naming apt-get's error, before it
changes anything (it never checks the target against apt's stale lists)."""

import pytest

from faultlib import assert_data_as_before, assert_healthy_on, baseline, reset, run_playbook, target
from gatelib import LOCK, host_state

SOURCE = '/etc/apt/sources.list.d/micropvr-standin.list'


@pytest.fixture(scope='module')
def rollback(host):
    reset(host)
    update = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert update.returncode == 0, update.output
    host.check_output('cp %s /root/standin.list.good && mv /srv/micropvr-repo /srv/micropvr-repo.away' % SOURCE)
    # Connection refused on the repository, and nothing left in apt's cache.
    host.check_output("echo 'deb [trusted=yes] http://127.0.0.1:9/micropvr ./' > %s && apt-get clean" % SOURCE)
    try:
        unreachable = host.run('apt-get update -o APT::Update::Error-Mode=any')
        rolled_back = run_playbook(host, 'rollback.yml')
        before = host_state(host)
        update = run_playbook(host, 'update.yml', micropvr_version=target(host))
        yield rolled_back, unreachable, dict(result=update, before=before, after=host_state(host))
    finally:
        host.check_output('mv /srv/micropvr-repo.away /srv/micropvr-repo && cp /root/standin.list.good %s' % SOURCE)
        host.run('apt-get update')


def test_the_repository_really_is_unreachable(rollback):
    dummy, unreachable, dummy = rollback
    assert unreachable.rc != 0 and '127.0.0.1:9' in unreachable.stdout + unreachable.stderr


def test_rollback_completes_from_the_saved_packages(host, rollback):
    result, dummy, dummy = rollback
    assert result.returncode == 0, result.output
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def test_an_update_stops_at_its_preflight_and_changes_nothing(host, rollback):
    dummy, dummy, update = rollback
    output = update['result'].output
    assert update['result'].returncode != 0, output
    assert 'update_cache: apt-get update failed (rc=100) 5 times, the package lists are not refreshed' in output
    assert '127.0.0.1:9' in output
    # The pre-flight takes the lock only once its checks passed: none was taken.
    assert not host.file(LOCK).exists
    assert update['after'] == update['before']
    assert_healthy_on(host, baseline(host))
