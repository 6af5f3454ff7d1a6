"""rollback.yml after a successful update to 1.10.0-1 and new writes."""

import re

import pytest

from micropvr_testlib import (
    create_tasks,
    db_dump,
    installed_version,
    rpc,
    run_playbook,
    service_status,
)


@pytest.fixture(scope='module')
def rollback(host):
    assert installed_version(host, 'micropvr') == '1.10.0-1', 'converge updates to 1.10.0-1'
    create_tasks(host, 5)
    # The vendor repository no longer serves anything: the rollback must not need it.
    host.check_output('rm -f /etc/apt/sources.list.d/micropvr-standin.list && rm -rf /srv/micropvr-repo')
    host.check_output('apt-get update -q')
    assert '1.9.0-1' not in host.check_output('apt-cache madison micropvr')
    first = run_playbook(host, 'rollback.yml')
    second = run_playbook(host, 'rollback.yml')
    return dict(first=first, second=second)


def test_rollback_succeeds(rollback):
    assert rollback['first'].returncode == 0, rollback['first'].output
    assert 'rolled back backup set' in rollback['first'].output


@pytest.mark.parametrize('package', ['micropvr', 'micropvs'])
def test_old_version_back_and_held(host, rollback, package):
    assert installed_version(host, package) == '1.9.0-1'
    assert package in host.check_output('apt-mark showhold').split()


def test_exactly_the_pre_update_data(host, rollback):
    now = db_dump(host)
    for db in ('records', 'tasks'):
        assert now['/etc/micropvr/%s.db' % db] == host.file('/root/pre-update-%s.sql' % db).content_string.rstrip('\n')


def test_services_healthy(host, rollback):
    assert service_status(host, 'micropvr') == 0 and service_status(host, 'micropvs') == 0
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert rpc(host, 'get_version') == {'version': '1.9.0', 'schema_version': 1}


def test_second_rollback_changes_nothing(rollback):
    assert rollback['second'].returncode == 0, rollback['second'].output
    assert 'already in the state of backup set' in rollback['second'].output
    recap = re.search(r'changed=(\d+)', rollback['second'].output.split('PLAY RECAP')[-1])
    assert recap and recap.group(1) == '0', rollback['second'].output.split('PLAY RECAP')[-1]


def test_no_journal_or_policy_left(host, rollback):
    assert not host.file('/usr/sbin/policy-rc.d').exists
    for db in ('records', 'tasks'):
        assert not host.file('/etc/micropvr/%s.db-journal' % db).exists
