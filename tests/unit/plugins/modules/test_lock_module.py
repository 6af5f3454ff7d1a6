"""micropvr_lock: who may take the host lock, and what a taken-over lock reports."""

import datetime
import json
import os
import stat

import pytest
from ansible.module_utils import basic

from module_runner import run_main
from step_holder import start_step_holder

from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_lock

@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: seen.append(message))
    return seen


def run(capsys, **args):
    return run_main(micropvr_lock.main, capsys, **args)


def lock_of(owner, age_seconds, **extra):
    moment = state.utc_now() - datetime.timedelta(seconds=age_seconds)
    return dict(owner=owner, purpose='update to 1.10.0-1', acquired_at=state.iso(moment), **extra)


def test_free_host_is_locked(tmp_path, capsys):
    code, result = run(capsys, owner='run-2', purpose='update', state_dir=str(tmp_path))
    assert code == 0 and result['changed'] is True
    assert state.read_lock(str(tmp_path))['owner'] == 'run-2'
    assert 'interrupted' not in result and 'taken_over' not in result


def test_a_live_run_keeps_its_lock(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 60))
    code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), ttl=7200)
    assert code == 1
    assert result['msg'].startswith('the host is locked by another run (update to 1.10.0-1, owner run-1, since ')
    assert 'wait for it to finish' in result['msg'] and 'micropvr_lock_ttl' in result['msg']
    assert state.read_lock(str(tmp_path))['owner'] == 'run-1'


def test_a_stale_lock_is_taken_over_and_reported(tmp_path, capsys, warnings):
    state.create_lock(str(tmp_path), lock_of('run-1', 7300))
    code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), ttl=7200)
    assert code == 0 and result['taken_over']['owner'] == 'run-1'
    assert 'interrupted' not in result
    assert state.read_lock(str(tmp_path))['owner'] == 'run-2'
    assert len(warnings) == 1 and warnings[0].startswith('took over an abandoned lock (update to 1.10.0-1, owner run-1')


def test_a_killed_step_is_taken_over_at_once_whatever_its_age(tmp_path, capsys, warnings):
    step = dict(name='install', backup_id='20261126T220000Z', pid=999999, started_at='2026-11-26T22:00:05Z')
    state.create_lock(str(tmp_path), lock_of('run-1', 30, step=step))
    code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), ttl=7200)
    assert code == 0
    assert result['interrupted'] == dict(owner='run-1', purpose='update to 1.10.0-1', step=step)
    assert state.read_lock(str(tmp_path))['owner'] == 'run-2'
    assert 'step' not in state.read_lock(str(tmp_path))
    assert warnings == ['run run-1 was interrupted during its install step (started 2026-11-26T22:00:05Z): the host '
                        'may be half-changed; this run takes over its lock to recover the host from backup set '
                        '20261126T220000Z']


def test_check_mode_reports_an_interrupted_run_without_taking_over(tmp_path, capsys, warnings):
    step = dict(name='restore', backup_id='20261126T220000Z', pid=999999, started_at='2026-11-26T22:00:05Z')
    state.create_lock(str(tmp_path), lock_of('run-1', 30, step=step))
    code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0 and result['interrupted']['step']['name'] == 'restore'
    assert state.read_lock(str(tmp_path))['owner'] == 'run-1'


def test_a_running_step_is_never_taken_over_even_after_the_ttl(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 9000))
    proc = start_step_holder(tmp_path)
    try:
        code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), ttl=7200)
        assert code == 1
        assert result['msg'] == ('the host is locked by another run (update to 1.10.0-1, owner run-1, since %s) whose '
                                 'install step is running right now (pid %d); wait for it to finish'
                                 % (result['lock']['acquired_at'], proc.pid))
    finally:
        proc.communicate('\n')
    assert state.read_lock(str(tmp_path))['owner'] == 'run-1'


def test_release_leaves_another_runs_lock(tmp_path, capsys, warnings):
    state.create_lock(str(tmp_path), lock_of('run-1', 10))
    code, result = run(capsys, owner='run-2', state='absent', state_dir=str(tmp_path))
    assert code == 0 and result['changed'] is False
    assert state.read_lock(str(tmp_path))['owner'] == 'run-1'
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path))
    assert code == 0 and result['changed'] is True and state.read_lock(str(tmp_path)) is None


def test_release_keeps_a_lock_with_an_unfinished_step_for_the_next_run(tmp_path, capsys, warnings):
    step = dict(name='restore', backup_id='20261126T220000Z', pid=999999, started_at='2026-11-26T22:00:05Z',
                failed='restore the SQLite databases: OSError: [Errno 28] No space left on device')
    state.create_lock(str(tmp_path), lock_of('run-1', 10, step=step))
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path))
    assert code == 0 and result['changed'] is False and result['kept'] is True
    assert state.read_lock(str(tmp_path))['step'] == step
    assert warnings == ['the lock keeps the unfinished restore step of this run (backup set 20261126T220000Z); '
                        'the next run recovers the host from it']
    # the next run takes it over at once and is told what to recover
    code, result = run(capsys, owner='run-2', state_dir=str(tmp_path), ttl=7200)
    assert code == 0 and result['interrupted']['step'] == step


# --- the state directory must be the collection's own --------------------------------------------

@pytest.mark.parametrize('path, reason', [
    ('/tmp', '/tmp is a system directory'),
    ('/', '/ is a system directory'),
    ('/home', '/home is a system directory'),
    ('/var/lib/../../tmp', '/var/lib/../../tmp is /tmp, a system directory'),
    ('', "'' is not set"),
    ('relative/state', 'relative/state is not an absolute path'),
])
@pytest.mark.parametrize('lock_state', ['present', 'absent'])
def test_check_mode_reports_a_bad_state_dir(capsys, path, reason, lock_state):
    """--check already says the state dir is wrong, before a real run would write into it."""
    tmp_mode = os.lstat('/tmp').st_mode
    code, result = run(capsys, owner='run-2', state=lock_state, state_dir=path, _ansible_check_mode=True)
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith('micropvr_state_dir: %s' % reason)
    assert os.lstat('/tmp').st_mode == tmp_mode


def test_a_state_dir_of_another_user_is_refused_and_left_untouched(tmp_path, capsys):
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    os.chown(str(state_dir), 54321, -1)
    for check_mode in (True, False):
        code, result = run(capsys, owner='run-2', state_dir=str(state_dir), _ansible_check_mode=check_mode)
        assert code == 1
        assert result['msg'] == ('micropvr_state_dir: %s is owned by uid 54321, not by user root (uid 0) that the '
                                 'module runs as; give the collection a directory of its own' % state_dir)
    assert list(state_dir.iterdir()) == [] and os.lstat(str(state_dir)).st_uid == 54321


def test_a_group_writable_state_dir_is_refused_and_not_chmodded(tmp_path, capsys):
    state_dir = tmp_path / 'state'
    state_dir.mkdir()
    os.chmod(str(state_dir), 0o770)
    code, result = run(capsys, owner='run-2', state_dir=str(state_dir))
    assert code == 1
    assert result['msg'].startswith('micropvr_state_dir: %s is writable by group or others (mode 0770)' % state_dir)
    assert stat.S_IMODE(os.lstat(str(state_dir)).st_mode) == 0o770
    assert list(state_dir.iterdir()) == []


def test_a_missing_state_dir_is_created_private(tmp_path, capsys):
    state_dir = tmp_path / 'lib' / 'state'
    code, result = run(capsys, owner='run-2', state_dir=str(state_dir) + '/')
    assert code == 0 and state.read_lock(str(state_dir))['owner'] == 'run-2'
    assert stat.S_IMODE(os.lstat(str(state_dir)).st_mode) == 0o700


@pytest.mark.parametrize('check_mode', [True, False])
def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path, capsys, check_mode):
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    target = tmp_path / 'victim'
    target.write_text(json.dumps(lock_of('run-1', 9000)))
    before = target.read_text()
    (state_dir / state.LOCK_FILE).symlink_to(target)
    code, result = run(capsys, owner='run-2', state_dir=str(state_dir), ttl=7200, _ansible_check_mode=check_mode)
    assert code == 1
    assert result['msg'] == '%s/update.lock is a symbolic link; refusing to follow it' % state_dir
    assert target.read_text() == before
    assert os.path.islink(str(state_dir / state.LOCK_FILE))


# --- the release records the run's event ---------------------------------------------------------


def test_release_records_the_event_then_removes_the_lock(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 60))
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path), event='rollback',
                       data=dict(backup_id='20261126T221500Z', outcome='restored'))
    assert code == 0 and result['changed'] is True and result['lock'] is None
    assert state.read_lock(str(tmp_path)) is None
    history = state.read_history(str(tmp_path))
    assert [dict((k, v) for k, v in e.items() if k != 'time') for e in history] == [
        dict(event='rollback', backup_id='20261126T221500Z', outcome='restored')]
    assert result['entry'] == history[0]


def test_release_records_the_event_when_the_lock_keeps_an_unfinished_step(tmp_path, capsys, warnings):
    step = dict(name='restore', backup_id='20261126T220000Z', pid=999999, started_at='2026-11-26T22:00:05Z')
    state.create_lock(str(tmp_path), lock_of('run-1', 30, step=step))
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path), event='update',
                       data=dict(outcome='rollback failed'))
    assert code == 0 and result['kept'] is True
    assert state.read_lock(str(tmp_path))['step'] == step
    assert [e['outcome'] for e in state.read_history(str(tmp_path))] == ['rollback failed']


def test_release_without_an_event_records_nothing(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 60))
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path))
    assert code == 0 and 'entry' not in result and state.read_history(str(tmp_path)) == []


def test_check_mode_release_writes_no_event(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 60))
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path), event='rollback',
                       _ansible_check_mode=True)
    assert code == 0 and result['entry'] == dict(event='rollback')
    assert state.read_history(str(tmp_path)) == [] and state.read_lock(str(tmp_path))['owner'] == 'run-1'


def test_a_history_that_cannot_be_written_still_releases_the_lock(tmp_path, capsys):
    state.create_lock(str(tmp_path), lock_of('run-1', 60))
    os.mkdir(str(tmp_path / state.HISTORY_FILE))  # not a file: the append fails
    code, result = run(capsys, owner='run-1', state='absent', state_dir=str(tmp_path), event='rollback')
    assert code == 1 and state.read_lock(str(tmp_path)) is None
    assert result['msg'].startswith('the rollback event could not be recorded in the host history (')
    assert result['msg'].endswith('); the lock was released')


def test_an_event_is_refused_when_taking_the_lock(tmp_path, capsys):
    code, result = run(capsys, owner='run-1', state_dir=str(tmp_path), event='rollback')
    assert code == 1 and result['msg'] == 'event: recorded only when the lock is released (state=absent), nothing was changed'
    assert state.read_lock(str(tmp_path)) is None
