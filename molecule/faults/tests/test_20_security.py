"""Security checks: database passwords are in no process's arguments or environment while the
dumps run; backup sets and the host state are root-only; every gate override is recorded."""

import pytest

from faultlib import (
    backup_ids, backup_root, blocker_report, history, reset, run_blocker, run_playbook, secrets, target)
from micropvr_testlib import manifest

REPORT = '/root/ps-report'


@pytest.fixture(scope='module')
def watched_backup(host):
    reset(host)
    run_blocker(host, REPORT)
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason='faults: watched')
    result.report = blocker_report(host, REPORT)
    return result


def test_both_dumps_were_watched(watched_backup):
    assert watched_backup.returncode == 0, watched_backup.output
    assert watched_backup.report['seen'] == {'postgresql': True, 'mysql': True}
    dumps = [c for c in watched_backup.report['cmdlines'] if c.split()[0].endswith(('pg_dump', 'mysqldump'))]
    assert len(dumps) >= 2, dumps


def test_no_password_in_any_process_argument_or_dump_environment(host, watched_backup):
    for secret in secrets(host):
        assert not [c for c in watched_backup.report['cmdlines'] if secret in c]
        assert not [e for e in watched_backup.report['environ'] if secret in e]
    assert any(e.startswith('PGPASSFILE=') for e in watched_backup.report['environ'])


def test_backup_sets_and_state_are_root_only(host, watched_backup):
    root = host.file(backup_root(host))
    assert (root.user, root.group, root.mode) == ('root', 'root', 0o700)
    for backup_id in backup_ids(host):
        set_dir = host.file('%s/%s' % (backup_root(host), backup_id))
        assert (set_dir.user, set_dir.mode) == ('root', 0o700), backup_id
        for entry in host.check_output('find %s/%s -mindepth 1 -printf "%%y %%m %%u %%p\\n"'
                                       % (backup_root(host), backup_id)).splitlines():
            kind, mode, user, path = entry.split(' ', 3)
            assert user == 'root', entry
            assert mode == ('700' if kind == 'd' else '600'), entry
    state = host.file('/var/lib/microimpuls-micropvr')
    assert (state.user, state.mode) == ('root', 0o700)
    assert host.file('/var/lib/microimpuls-micropvr/history.jsonl').mode == 0o600
    assert manifest(host, backup_ids(host)[-1])['reason'] == 'faults: watched'


def test_every_gate_override_is_recorded(host):
    for _attempt in range(2):
        reset(host)
        before = len(history(host))
        result = run_playbook(host, 'update.yml', micropvr_version=target(host), micropvr_update_without_backup=True)
        assert result.returncode == 0, result.output
        assert 'the backup gate was overridden' in result.output
        new = history(host)[before:]
        assert [e['event'] for e in new] == ['gate-override', 'update'], new
        assert new[0]['version'] == target(host) and new[0]['run_id'] == new[1]['run_id']
        assert new[1]['gate'] == 'overridden' and new[1]['backup_id'] is None
    overrides = [e for e in history(host) if e['event'] == 'gate-override']
    assert len(overrides) >= 2
