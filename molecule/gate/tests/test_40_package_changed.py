"""A backup set taken before a package changed does not vouch for the host any more."""

import pytest

from gatelib import BASELINE, TARGET, assert_unchanged, host_state, run_module, take_backup
from micropvr_testlib import apt_install, installed_version, service_status


@pytest.fixture
def micropvs_changed_by_hand(host):
    backup_id = take_backup(host, 'gate: before micropvs changes')
    changed = apt_install(host, 'micropvs=%s' % TARGET)
    assert changed.rc == 0, changed.stdout + changed.stderr
    assert installed_version(host, 'micropvs') == TARGET
    assert installed_version(host, 'micropvr') == BASELINE
    yield backup_id
    back = apt_install(host, 'micropvs=%s' % BASELINE, extra='--allow-downgrades')
    assert back.rc == 0, back.stdout + back.stderr


def test_backup_before_a_package_change_is_refused(host, micropvs_changed_by_hand):
    backup_id = micropvs_changed_by_hand
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result.get('changed') is False, result
    assert 'the backup gate is closed' in result['msg']
    assert result['gate_problems'] == ['backup set %s has micropvs %s, but %s is installed'
                                       % (backup_id, BASELINE, TARGET)], result['msg']
    after = host_state(host)
    assert after == before, 'the refused install changed the host'
    assert after['versions'] == {'micropvr': BASELINE, 'micropvs': TARGET}
    assert after['held'] == [] and not after['locked']


def test_micropvs_is_back_at_the_baseline(host):
    assert installed_version(host, 'micropvs') == BASELINE
    assert installed_version(host, 'micropvr') == BASELINE
    assert service_status(host, 'micropvs') == 0 and service_status(host, 'micropvr') == 0
    assert_unchanged(host, host_state(host))
