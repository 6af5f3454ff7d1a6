"""Fault 8: an unknown or malformed target version, an unknown backup id, a backup id with a
path in it: a clear error before anything changes."""

import pytest

from faultlib import TARGET, reset, run_module, run_playbook
from gatelib import assert_unchanged, host_state, take_backup

BACKUP_TASK = 'TASK [microimpuls.micropvr.backup'


@pytest.fixture(scope='module')
def real_set(host):
    reset(host)
    host.check_output('apt-mark unhold micropvr micropvs')
    return take_backup(host, 'faults: a real set next to the bad ids')


@pytest.mark.parametrize('version, reason', [
    ('1.10.0 -1', "micropvr_version: version '1.10.0 -1' has embedded spaces"),
    ('abc', "micropvr_version: version 'abc': the upstream version must start with a digit"),
    ('9.9.9-1', 'micropvr_version: micropvr 9.9.9-1 is not available from the apt sources (they offer: '
                '1.10.1-1, 1.10.0-1, 1.9.0-1)'),
    ('1.8.0-1', 'micropvr_version: micropvr 1.8.0-1 is not available from the apt sources'),
])
def test_bad_target_version_is_refused_before_the_backup(host, real_set, version, reason):
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=version)
    assert result.returncode != 0, result.output
    assert reason in result.output, result.output
    assert BACKUP_TASK not in result.output
    assert_unchanged(host, before)  # no new backup set, no lock, no history


def test_unknown_backup_id_is_refused(host, real_set):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id='20200101T000000Z')
    assert rc != 0 and result['msg'] == 'refusing to install %s: no backup set 20200101T000000Z in ' \
                                        '/var/backups/micropvr' % TARGET
    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id='20200101T000000Z')
    assert rollback.returncode != 0
    assert 'micropvr_backup_id: no backup set 20200101T000000Z in /var/backups/micropvr (sets there: ' \
        in rollback.output and real_set in rollback.output
    assert_unchanged(host, before)


@pytest.mark.parametrize('template', ['../etc', '../micropvr/{set}', '{set}/..', '../../../var/backups/micropvr/{set}'])
def test_backup_id_with_a_path_is_refused_even_when_it_leads_to_a_real_set(host, real_set, template):
    backup_id = template.format(set=real_set)
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result['msg'] == ("refusing to install %s: backup id %r must be a plain name, not a path "
                                         "(no '/' or '..')" % (TARGET, backup_id)), result['msg']
    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert rollback.returncode != 0
    assert "micropvr_backup_id: backup id %r must be a plain name, not a path" % backup_id in rollback.output, \
        rollback.output
    assert_unchanged(host, before)


@pytest.mark.parametrize('backup_id', ['latest', '2026-11-26', ' '])
def test_malformed_backup_id_is_refused(host, real_set, backup_id):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and 'is not of the form YYYYMMDDTHHMMSSZ' in result['msg'], result['msg']
    assert_unchanged(host, before)
