"""update.yml to the bad release 1.10.1-1: health fails, the host rolls itself back."""

import json

import pytest

from micropvr_testlib import db_dump, installed_version, rpc, run_playbook, service_status


@pytest.fixture(scope='module')
def update(host):
    return run_playbook(host, 'update.yml', micropvr_version='1.10.1-1')


def test_play_fails_with_a_clear_message(update):
    assert update.returncode != 0
    assert 'Update of' in update.output and 'to 1.10.1-1 FAILED at "Check that MicroPVR serves again' in update.output
    assert 'rpc probe failed: is_alive=false' in update.output
    assert 'The host was rolled back automatically to backup set' in update.output
    assert '(micropvr 1.9.0-1, micropvs 1.9.0-1) and is healthy again' in update.output


@pytest.mark.parametrize('package', ['micropvr', 'micropvs'])
def test_back_on_the_old_version(host, update, package):
    assert installed_version(host, package) == '1.9.0-1'


def test_database_contents_identical_to_before(host, update):
    now = db_dump(host)
    for db in ('records', 'tasks'):
        before = host.file('/root/pre-update-%s.sql' % db).content_string
        assert now['/etc/micropvr/%s.db' % db] == before.rstrip('\n')


def test_services_healthy_again(host, update):
    assert service_status(host, 'micropvr') == 0 and service_status(host, 'micropvs') == 0
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert rpc(host, 'get_version') == {'version': '1.9.0', 'schema_version': 1}


def test_history_says_rolled_back(host, update):
    events = [json.loads(line) for line in
              host.file('/var/lib/microimpuls-micropvr/history.jsonl').content_string.splitlines()]
    assert [e['event'] for e in events] == ['rollback', 'update']
    assert events[-1]['outcome'] == 'rolled back'
    assert 'Check that MicroPVR serves again' in events[-1]['failure']
    assert events[0]['backup_id'] == events[-1]['backup_id']


def test_lock_released(host, update):
    assert not host.file('/var/lib/microimpuls-micropvr/update.lock').exists


def test_no_policy_rc_d_left(host, update):
    assert not host.file('/usr/sbin/policy-rc.d').exists
