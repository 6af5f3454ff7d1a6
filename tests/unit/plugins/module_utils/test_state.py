import datetime
import json
import os
import stat

from ansible_collections.microimpuls.micropvr.plugins.module_utils import state

NOW = datetime.datetime(2026, 11, 26, 22, 0, 0, tzinfo=datetime.timezone.utc)


def test_history_appends_in_order_with_time(tmp_path):
    root = tmp_path / 'state'
    first = state.append_history(str(root), dict(event='update', outcome='updated'), now=NOW)
    state.append_history(str(root), dict(event='rollback'))
    assert first['time'] == '2026-11-26T22:00:00Z'
    events = state.read_history(str(root))
    assert [e['event'] for e in events] == ['update', 'rollback']
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / state.HISTORY_FILE).st_mode) == 0o600


def test_history_survives_an_unreadable_line(tmp_path):
    (tmp_path / state.HISTORY_FILE).write_text('{"event": "update"}\nnot json\n\n{"event": "rollback"}\n')
    assert state.read_history(str(tmp_path)) == [dict(event='update'), dict(event='unreadable', line=2),
                                                 dict(event='rollback')]


def test_missing_history_is_empty(tmp_path):
    assert state.read_history(str(tmp_path / 'none')) == []


def test_ensure_dir_tightens_an_open_directory(tmp_path):
    os.chmod(tmp_path, 0o755)
    state.ensure_dir(str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700


def test_lock_is_exclusive_and_removable(tmp_path):
    lock = dict(owner='run-1', purpose='update to 1.10.0-1', acquired_at='2026-11-26T22:00:00Z')
    assert state.create_lock(str(tmp_path), lock) is True
    assert state.create_lock(str(tmp_path), dict(lock, owner='run-2')) is False
    assert state.read_lock(str(tmp_path)) == lock
    assert stat.S_IMODE(os.stat(tmp_path / state.LOCK_FILE).st_mode) == 0o600
    assert state.remove_lock(str(tmp_path)) is True
    assert state.read_lock(str(tmp_path)) is None
    assert state.remove_lock(str(tmp_path)) is False


def test_lock_age(tmp_path):
    assert state.lock_age(dict(acquired_at='2026-11-26T21:00:00Z'), now=NOW) == 3600
    assert state.lock_age(dict(acquired_at='garbage'), now=NOW) is None
    assert state.lock_age({}, now=NOW) is None


def test_unreadable_lock_is_still_a_lock(tmp_path):
    (tmp_path / state.LOCK_FILE).write_text('{broken')
    lock = state.read_lock(str(tmp_path))
    assert lock['purpose'] == 'unreadable lock file' and state.lock_age(lock) is None
    (tmp_path / state.LOCK_FILE).write_text(json.dumps(['not', 'a', 'dict']))
    assert state.read_lock(str(tmp_path))['purpose'] == 'unreadable lock file'
