"""Fault 2: a maintainer script of the new version exits non-zero in the middle of the install.
The update rolls back; dpkg is left consistent."""

import pytest

from faultlib import (
    FAULTS_FILE, assert_data_as_before, assert_healthy_on, baseline, history, reset, run_playbook, target)


@pytest.fixture(scope='module')
def update(host):
    reset(host)
    host.check_output('echo "micropvs %s postinst fail" > %s' % (target(host), FAULTS_FILE))
    try:
        yield run_playbook(host, 'update.yml', micropvr_version=target(host))
    finally:
        host.run('rm -f %s' % FAULTS_FILE)


def test_the_play_names_the_failed_install_and_the_rollback(update):
    assert update.returncode != 0
    assert 'FAILED at "Install the target version behind the backup gate: apt-get install' in update.output
    assert 'micropvs postinst: injected failure' in update.output
    assert 'The host was rolled back automatically to backup set' in update.output


def test_dpkg_is_consistent_and_the_host_healthy_on_the_old_version(host, update):
    assert host.check_output('dpkg --audit') == ''
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def test_history_says_rolled_back(host, update):
    record = history(host)[-1]
    assert (record['event'], record['outcome'], record['target']) == ('update', 'rolled back', target(host))
