"""Fault 5: a file of a backup set is corrupted after the backup. The gate refuses it, and a
rollback to that set refuses before it touches anything."""

import pytest

from faultlib import baseline, manifest, module_args, packages, reset, run_module, run_playbook, target
from gatelib import flip_byte, host_state, set_file, take_backup
from micropvr_testlib import create_tasks


@pytest.fixture(scope='module', autouse=True)
def prepared(host):
    reset(host)


def damaged_file(host, backup_id, kind):
    """Path in the set of its first file of ``kind`` (sqlite, package, database)."""
    return [f['path'] for f in manifest(host, backup_id)['files'] if f['kind'] == kind][0]


@pytest.mark.parametrize('kind', ['sqlite', 'package', 'database'])
def test_corrupted_set_closes_the_gate_and_is_not_restored(host, kind):
    backup_id = take_backup(host, 'faults: to corrupt')
    relpath = damaged_file(host, backup_id, kind)
    flip_byte(host, set_file(backup_id, relpath, host), 200)
    # The host moves on after the backup, so a restore would have something to change.
    create_tasks(host, 2, channel=40)
    before = host_state(host)

    rc, result = run_module(host, 'micropvr_install', version=target(host), backup_id=backup_id,
                            **module_args(host, 'packages', 'backup_root'))
    assert rc != 0 and result.get('changed') is False, result
    assert 'the backup gate is closed' in result['msg']
    assert '%s: sha256 does not match the manifest' % relpath in result['msg'], result['msg']

    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert rollback.returncode != 0
    assert ('refusing to restore from backup set %s: it does not verify, nothing was changed: %s: sha256 does not '
            'match the manifest' % (backup_id, relpath)) in rollback.output, rollback.output
    assert host_state(host) == before
    assert before['versions'] == dict((name, baseline(host)) for name in packages(host))
