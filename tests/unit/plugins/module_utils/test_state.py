import datetime
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from step_holder import start_step_holder
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import UnsafePathError

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


def test_ensure_dir_creates_the_state_dir_private(tmp_path):
    assert state.ensure_dir(str(tmp_path / 'lib' / 'state')) is True
    assert stat.S_IMODE(os.stat(tmp_path / 'lib' / 'state').st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / 'lib').st_mode) == 0o755
    assert state.ensure_dir(str(tmp_path / 'lib' / 'state')) is False


def test_ensure_dir_never_chmods_a_directory_it_did_not_create(tmp_path):
    """It used to chmod 0700 whatever it was given: /tmp lost its sticky bit."""
    os.chmod(tmp_path, 0o755)
    state.ensure_dir(str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755
    os.chmod(tmp_path, 0o775)
    with pytest.raises(UnsafePathError, match=r'^state_dir: \S+ is writable by group or others \(mode 0775\)'):
        state.ensure_dir(str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o775


@pytest.mark.parametrize('path', ['', 'relative/state'])
def test_nothing_is_written_without_an_absolute_state_dir(path, tmp_path, monkeypatch):
    """System directories are refused the same way (test_safepath.py); not tried here for real."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePathError, match='^state_dir: '):
        state.create_lock(path, dict(owner='run-1'))
    with pytest.raises(UnsafePathError, match='^state_dir: '):
        state.append_history(path, dict(event='update'))
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_into_a_directory_of_another_user(tmp_path):
    os.chmod(tmp_path, 0o700)
    os.chown(tmp_path, 54321, -1)
    with pytest.raises(UnsafePathError, match='is owned by uid 54321'):
        state.create_lock(str(tmp_path), dict(owner='run-1'))
    with pytest.raises(UnsafePathError, match='is owned by uid 54321'):
        state.append_history(str(tmp_path), dict(event='update'))
    assert list(tmp_path.iterdir()) == []


# --- symbolic links in the state directory are never followed ------------------------------------

@pytest.fixture
def planted(tmp_path):
    """A private state dir and, outside it, a file that a link in it points to."""
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    target = tmp_path / 'victim'
    target.write_text('precious\n')

    def plant(name, to=target):
        (state_dir / name).symlink_to(to)
        return str(state_dir)
    plant.target = target
    return plant


def test_a_symlinked_lock_file_is_not_followed(planted):
    state_dir = planted(state.LOCK_FILE)
    with pytest.raises(UnsafePathError, match=r'update.lock is a symbolic link; refusing to follow it'):
        state.read_lock(state_dir)
    assert state.create_lock(state_dir, dict(owner='run-1')) is False
    assert planted.target.read_text() == 'precious\n'
    assert state.remove_lock(state_dir) is True  # the link, not its target
    assert planted.target.read_text() == 'precious\n'


def test_a_symlinked_dangling_lock_file_is_removed_as_a_link(planted, tmp_path):
    state_dir = planted(state.LOCK_FILE, to=tmp_path / 'nowhere')
    assert state.create_lock(state_dir, dict(owner='run-1')) is False
    assert not (tmp_path / 'nowhere').exists()
    assert state.remove_lock(state_dir) is True
    assert state.create_lock(state_dir, dict(owner='run-1')) is True


def test_a_symlinked_new_lock_file_is_not_written_through(planted):
    state_dir = planted(state.LOCK_FILE + '.new')
    state.create_lock(state_dir, dict(owner='run-1', purpose='update', acquired_at='2026-11-26T22:00:00Z'))
    with pytest.raises(UnsafePathError, match=r'update.lock.new is a symbolic link'):
        state.write_lock(state_dir, dict(owner='run-1', step=dict(name='install')))
    assert planted.target.read_text() == 'precious\n'
    assert state.read_lock(state_dir)['owner'] == 'run-1' and 'step' not in state.read_lock(state_dir)


def test_a_step_does_not_write_through_a_symlinked_new_lock_file(planted):
    state_dir = planted(state.LOCK_FILE + '.new')
    state.create_lock(state_dir, dict(owner='run-1', purpose='update', acquired_at='2026-11-26T22:00:00Z'))
    with pytest.raises(UnsafePathError):
        with state.step(state_dir, 'run-1', 'install'):
            pytest.fail('the step ran')
    assert planted.target.read_text() == 'precious\n'


def test_a_symlinked_history_is_not_appended_to_or_read(planted):
    state_dir = planted(state.HISTORY_FILE)
    with pytest.raises(UnsafePathError, match=r'history.jsonl is a symbolic link'):
        state.append_history(state_dir, dict(event='update'))
    with pytest.raises(UnsafePathError, match=r'history.jsonl is a symbolic link'):
        state.read_history(state_dir)
    assert planted.target.read_text() == 'precious\n'


def test_a_symlinked_step_file_is_not_followed(planted, tmp_path):
    state_dir = planted(state.STEP_FILE, to=tmp_path / 'created-elsewhere')
    state.create_lock(state_dir, dict(owner='run-1', purpose='update', acquired_at='2026-11-26T22:00:00Z'))
    with pytest.raises(UnsafePathError, match=r'step.flock is a symbolic link'):
        with state.step(state_dir, 'run-1', 'install'):
            pytest.fail('the step ran')
    with pytest.raises(UnsafePathError, match=r'step.flock is a symbolic link'):
        state.step_in_progress(state_dir)
    assert not (tmp_path / 'created-elsewhere').exists()


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


# --- steps: what a killed run leaves behind -----------------------------------------------------


def locked(tmp_path, owner='run-1'):
    state.create_lock(str(tmp_path), dict(owner=owner, purpose='update to 1.10.0-1', acquired_at='2026-11-26T22:00:00Z'))


def test_step_marks_the_lock_while_it_runs_and_clears_it_after(tmp_path):
    locked(tmp_path)
    with state.step(str(tmp_path), 'run-1', 'install', backup_id='20261126T220000Z', version='1.10.0-1') as step:
        during = state.read_lock(str(tmp_path))
        assert during['step'] == step
        assert step['name'] == 'install' and step['backup_id'] == '20261126T220000Z' and step['pid'] == os.getpid()
        assert during['owner'] == 'run-1'
        # This process holds the step: it is in progress, not interrupted.
        assert state.interrupted_step(during, str(tmp_path)) is None
    after = state.read_lock(str(tmp_path))
    assert 'step' not in after and after['owner'] == 'run-1'
    assert stat.S_IMODE(os.stat(tmp_path / state.LOCK_FILE).st_mode) == 0o600


def test_a_failing_step_is_cleared_too(tmp_path):
    """A module that fails (fail_json raises SystemExit) ended its step: the run is alive."""
    locked(tmp_path)
    with pytest.raises(SystemExit):
        with state.step(str(tmp_path), 'run-1', 'install'):
            raise SystemExit(1)
    assert 'step' not in state.read_lock(str(tmp_path))


def test_a_killed_step_stays_in_the_lock_and_is_seen_as_interrupted(tmp_path):
    locked(tmp_path)
    proc = start_step_holder(tmp_path)
    try:
        lock = state.read_lock(str(tmp_path))
        assert lock['step']['pid'] == proc.pid
        assert state.step_in_progress(str(tmp_path)) is True
        assert state.interrupted_step(lock, str(tmp_path)) is None  # alive: not interrupted
    finally:
        proc.kill()
        proc.wait()
    lock = state.read_lock(str(tmp_path))
    assert state.step_in_progress(str(tmp_path)) is False
    assert state.interrupted_step(lock, str(tmp_path)) == lock['step']
    assert lock['step']['backup_id'] == '20261126T220000Z'


def test_a_lock_without_step_is_not_interrupted(tmp_path):
    locked(tmp_path)
    assert state.interrupted_step(state.read_lock(str(tmp_path)), str(tmp_path)) is None
    assert state.interrupted_step(None, str(tmp_path)) is None


def test_step_of_a_run_that_does_not_hold_the_lock_is_refused(tmp_path):
    locked(tmp_path, owner='run-1')
    with pytest.raises(state.LockError, match=r'run run-2 does not hold the host lock \(held by run-1\)'):
        with state.step(str(tmp_path), 'run-2', 'install'):
            pytest.fail('the step ran')
    assert 'step' not in state.read_lock(str(tmp_path))


def test_step_without_owner_on_a_locked_host_is_refused(tmp_path):
    locked(tmp_path, owner='run-1')
    with pytest.raises(state.LockError, match=r'the host is locked by run run-1 \(update to 1.10.0-1'):
        with state.step(str(tmp_path), None, 'install'):
            pytest.fail('the step ran')


def test_step_without_owner_on_an_unlocked_host_runs_unmarked(tmp_path):
    with state.step(str(tmp_path), None, 'install') as step:
        assert step is None
    assert state.read_lock(str(tmp_path)) is None


HOLD_POSIX_LOCK = textwrap.dedent('''
    import fcntl, sys
    handle = open(sys.argv[1], 'w')
    fcntl.lockf(handle, fcntl.LOCK_EX)
    print('locked', flush=True)
    sys.stdin.readline()
''')


def test_package_manager_busy_sees_a_posix_lock_without_taking_it(tmp_path):
    """dpkg and apt lock with fcntl; a killed module's apt-get may still hold it."""
    frontend = tmp_path / 'lock-frontend'
    frontend.write_text('')
    assert state.package_manager_busy([str(frontend), str(tmp_path / 'absent')]) is None
    proc = subprocess.Popen([sys.executable, '-c', HOLD_POSIX_LOCK, str(frontend)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'locked\n'
        assert state.package_manager_busy([str(frontend)]) == proc.pid
        lock = dict(owner='run-1', step=dict(name='install'))
        assert state.interrupted_step(lock, str(tmp_path), lock_paths=[str(frontend)]) is None
    finally:
        proc.communicate('\n')
    assert state.package_manager_busy([str(frontend)]) is None
    assert state.interrupted_step(lock, str(tmp_path), lock_paths=[str(frontend)]) == dict(name='install')


def test_a_step_that_failed_half_way_stays_in_the_lock_with_why(tmp_path):
    d = str(tmp_path)
    state.create_lock(d, dict(owner='run-1', purpose='rollback', acquired_at=state.iso(state.utc_now())))
    with pytest.raises(state.StepUnfinished):
        with state.step(d, 'run-1', 'restore', backup_id='20261126T220000Z'):
            raise state.StepUnfinished('configure the packages: dpkg --configure failed (rc=1)')
    lock = state.read_lock(d)
    assert lock['step']['name'] == 'restore' and lock['step']['backup_id'] == '20261126T220000Z'
    assert lock['step']['failed'] == 'configure the packages: dpkg --configure failed (rc=1)'
    assert state.interrupted_step(lock, d, lock_paths=()) == lock['step']


@pytest.mark.parametrize('events, expected', [
    ([], None),
    ([dict(event='update', outcome='updated', backup_id='20261101T000000Z'),
      dict(event='rollback', backup_id='20261101T000000Z'),
      dict(event='update', outcome='rolled back', backup_id='20261102T000000Z'),
      dict(event='unreadable', line=4)], '20261101T000000Z'),
    ([dict(event='update', outcome='updated', backup_id='20261101T000000Z'),
      dict(event='update', outcome='updated', backup_id='20261103T000000Z')], '20261103T000000Z'),
    # An update without a backup (the gate overridden): nothing to protect, not an older set.
    ([dict(event='update', outcome='updated', backup_id='20261101T000000Z'),
      dict(event='update', outcome='updated', backup_id=None)], None),
])
def test_last_updated_set(events, expected):
    assert state.last_updated_set(events) == expected
