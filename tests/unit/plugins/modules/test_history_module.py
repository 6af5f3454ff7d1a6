"""micropvr_history: records and reads the history only in a state directory of the collection's own."""

import os

import pytest

from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_history


def run(capsys, **args):
    return run_main(micropvr_history.main, capsys, **args)


def test_records_and_reads(tmp_path, capsys):
    state_dir = tmp_path / 'state'
    code, result = run(capsys, event='update', data=dict(result='updated'), state_dir=str(state_dir))
    assert code == 0 and result['changed'] is True and result['entry']['event'] == 'update'
    assert [e['event'] for e in result['history']] == ['update']
    code, result = run(capsys, state_dir=str(state_dir))
    assert code == 0 and result['changed'] is False and [e['result'] for e in result['history']] == ['updated']


def test_reading_a_state_dir_that_does_not_exist_yet_creates_nothing(tmp_path, capsys):
    for args in (dict(), dict(event='update', _ansible_check_mode=True)):
        code, result = run(capsys, state_dir=str(tmp_path / 'state'), **args)
        assert code == 0 and result['history'] == []
    assert not (tmp_path / 'state').exists()


@pytest.mark.parametrize('check_mode', [True, False])
@pytest.mark.parametrize('path, reason', [
    ('/tmp', '/tmp is a system directory'),
    ('/', '/ is a system directory'),
    ('/home', '/home is a system directory'),
    ('', "'' is not set"),
    ('state', 'state is not an absolute path'),
])
def test_a_bad_state_dir_is_refused(capsys, path, reason, check_mode):
    tmp_mode = os.lstat('/tmp').st_mode
    code, result = run(capsys, state_dir=path, _ansible_check_mode=check_mode)
    assert code == 1 and result['msg'].startswith('micropvr_state_dir: %s' % reason)
    assert os.lstat('/tmp').st_mode == tmp_mode
    assert not os.path.lexists(os.path.join('/tmp', state.HISTORY_FILE))


def test_a_symlinked_history_is_refused_and_its_target_untouched(tmp_path, capsys):
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    target = tmp_path / 'victim'
    target.write_text('precious\n')
    (state_dir / state.HISTORY_FILE).symlink_to(target)
    for args in (dict(event='update'), dict()):
        code, result = run(capsys, state_dir=str(state_dir), **args)
        assert code == 1
        assert result['msg'] == '%s/history.jsonl is a symbolic link; refusing to follow it' % state_dir
    assert target.read_text() == 'precious\n'


def test_a_group_writable_state_dir_is_refused_and_not_chmodded(tmp_path, capsys):
    os.chmod(str(tmp_path), 0o775)
    code, result = run(capsys, event='update', state_dir=str(tmp_path))
    assert code == 1 and 'is writable by group or others (mode 0775)' in result['msg']
    assert os.lstat(str(tmp_path)).st_mode & 0o777 == 0o775
    assert list(tmp_path.iterdir()) == []
