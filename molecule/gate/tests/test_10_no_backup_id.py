"""The install module called on its own, with no backup set named, refuses and changes nothing."""

from gatelib import TARGET, assert_unchanged, host_state, run_module


def test_module_without_backup_id_is_refused(host):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET)
    assert rc != 0 and result.get('changed') is False, result
    assert 'refusing to install %s without a backup' % TARGET in result['msg'], result['msg']
    assert 'backup_id is not set' in result['msg']
    assert 'micropvr_update_without_backup' in result['msg']
    assert_unchanged(host, before)


def test_empty_backup_id_is_refused(host):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id='')
    assert rc != 0 and result.get('changed') is False, result
    assert 'without a backup' in result['msg'] and 'micropvr_update_without_backup' in result['msg']
    assert_unchanged(host, before)


def test_check_mode_is_refused_too(host):
    """Check mode runs the gate as well: it never reports that an ungated install would go ahead."""
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', '--check', version=TARGET)
    assert rc != 0 and result.get('changed') is False, result
    assert 'without a backup' in result['msg']
    assert_unchanged(host, before)
