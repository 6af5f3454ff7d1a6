"""A backup set with one flipped byte does not open the gate."""

from gatelib import TARGET, assert_unchanged, flip_byte, host_state, run_module, set_file, take_backup


def test_flipped_byte_in_a_database_copy_is_refused(host):
    backup_id = take_backup(host, 'gate: to damage')
    flip_byte(host, set_file(backup_id, 'sqlite/tasks.db'), 3000)
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result.get('changed') is False, result
    assert 'the backup gate is closed' in result['msg']
    assert 'sqlite/tasks.db: sha256 does not match the manifest' in result['msg'], result['msg']
    assert ['backup set %s is damaged: sqlite/tasks.db: sha256 does not match the manifest' % backup_id] == \
        result['gate_problems']
    assert_unchanged(host, before)
