"""Backup ids that name no set, or try to leave the backup root, are refused with a clear message."""

import pytest

from gatelib import TARGET, assert_unchanged, host_state, run_module, take_backup


@pytest.fixture(scope='module')
def real_set(host):
    return take_backup(host, 'gate: a real set next to the unknown ids')


def test_unknown_backup_id_is_refused(host, real_set):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id='20200101T000000Z')
    assert rc != 0 and result.get('changed') is False, result
    assert result['msg'] == 'refusing to install %s: no backup set 20200101T000000Z in /var/backups/micropvr' % TARGET
    assert_unchanged(host, before)


@pytest.mark.parametrize('template', ['../etc', '../micropvr/{set}', '{set}/..', '../../../var/backups/micropvr/{set}'])
def test_path_in_backup_id_is_refused(host, real_set, template):
    """Even a path that leads to a real, verified set is not accepted as its id."""
    backup_id = template.format(set=real_set)
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result.get('changed') is False, result
    assert result['msg'] == ("refusing to install %s: backup id %r must be a plain name, not a path (no '/' or '..')"
                             % (TARGET, backup_id)), result['msg']
    assert_unchanged(host, before)


@pytest.mark.parametrize('backup_id', ['latest', '2026-11-26', ' '])
def test_malformed_backup_id_is_refused(host, real_set, backup_id):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result.get('changed') is False, result
    assert 'is not of the form YYYYMMDDTHHMMSSZ' in result['msg'], result['msg']
    assert_unchanged(host, before)
