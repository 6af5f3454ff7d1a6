"""rollback.yml after a successful update to micropvr_version (1.10.0-1; 1:1.10.0-1 on the strict
host, where the old release's postinst refuses the new schema) and new writes."""

import os
import re

import pytest

from gatelib import LOCK, history
from micropvr_testlib import (
    baseline,
    create_tasks,
    db_dump,
    installed_version,
    packages,
    rpc,
    run_playbook,
    service_status,
    target,
    upstream_version,
)


@pytest.fixture(scope='module')
def rollback(host):
    assert installed_version(host, 'micropvr') == target(host), 'converge updates to %s' % target(host)
    create_tasks(host, 5)
    # The vendor repository no longer serves anything: the rollback must not need it.
    host.check_output('rm -f /etc/apt/sources.list.d/micropvr-standin.list && rm -rf /srv/micropvr-repo')
    host.check_output('apt-get update -q')
    assert baseline(host) not in host.check_output('apt-cache madison micropvr')
    events_before = len(history(host))
    first = run_playbook(host, 'rollback.yml')
    second = run_playbook(host, 'rollback.yml')
    return dict(first=first, second=second, events=history(host)[events_before:])


def test_rollback_succeeds(rollback):
    assert rollback['first'].returncode == 0, rollback['first'].output
    assert 'rolled back backup set' in rollback['first'].output


def test_old_version_back_and_held(host, rollback):
    held = host.check_output('apt-mark showhold').split()
    for package in packages(host):
        assert installed_version(host, package) == baseline(host), package
        assert package in held, package
    assert host.check_output('dpkg --audit') == '', 'dpkg reports unfinished packages'


def test_exactly_the_pre_update_data(host, rollback):
    now = db_dump(host)
    for db in ('records', 'tasks'):
        assert now['/etc/micropvr/%s.db' % db] == host.file('/root/pre-update-%s.sql' % db).content_string.rstrip('\n')


def test_no_staged_database_copy_is_left(host, rollback):
    # The restore writes each database's copy beside it before the services stop, then renames it.
    left = host.check_output('find /etc/micropvr -maxdepth 1 -name ".*.restore-*"')
    assert left == '', left


def test_services_healthy(host, rollback):
    assert service_status(host, 'micropvr') == 0 and service_status(host, 'micropvs') == 0
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert rpc(host, 'get_version') == {'version': upstream_version(baseline(host)), 'schema_version': 1}


def test_second_rollback_changes_nothing(host, rollback):
    assert rollback['second'].returncode == 0, rollback['second'].output
    # Still the pre-update set, not the newer set the first rollback took of the host.
    pre_update_id, dummy = pre_update_set(host)
    assert 'already in the state of backup set %s' % pre_update_id in rollback['second'].output
    recap = re.search(r'changed=(\d+)', rollback['second'].output.split('PLAY RECAP')[-1])
    assert recap and recap.group(1) == '0', rollback['second'].output.split('PLAY RECAP')[-1]


def test_no_journal_or_policy_left(host, rollback):
    assert not host.file('/usr/sbin/policy-rc.d').exists
    for db in ('records', 'tasks'):
        assert not host.file('/etc/micropvr/%s.db-journal' % db).exists


def pre_update_set(host):
    from micropvr_testlib import backup_ids, manifest
    sets = [(i, manifest(host, i)) for i in backup_ids(host)]
    return [(i, m) for i, m in sets if m['reason'].startswith('pre-update')][-1]


def test_configuration_files_identical_to_before_the_update(host, rollback):
    """Conffiles (the operator's edited micropvr.conf, nginx.conf, init scripts): byte for byte,
    owner and mode as the pre-update set has them, whatever dpkg did with them."""
    dummy, saved = pre_update_set(host)
    files = [e for e in saved['config']['entries'] if e['type'] == 'file']
    assert '/etc/micropvr/micropvr.conf' in [e['path'] for e in files]
    for entry in files:
        f = host.file(entry['path'])
        assert f.sha256sum == entry['sha256'], entry['path']
        assert (f.uid, f.gid, '%04o' % f.mode) == (entry['uid'], entry['gid'], entry['mode']), entry['path']
    assert not host.file('/etc/micropvr/micropvr.conf.dpkg-new').exists


def test_a_set_of_the_host_was_taken_before_the_restore_and_only_once(host, rollback):
    from micropvr_testlib import backup_ids, manifest
    pre_update_id, dummy = pre_update_set(host)
    reasons = [manifest(host, i)['reason'] for i in backup_ids(host)]
    assert reasons.count('pre-rollback to %s' % pre_update_id) == 1, reasons
    safety = [manifest(host, i) for i in backup_ids(host)
              if manifest(host, i)['reason'] == 'pre-rollback to %s' % pre_update_id][0]
    assert dict((n, p['version']) for n, p in safety['packages'].items()) == dict((p, target(host)) for p in packages(host))
    # Journal modes as the databases had them (WAL on the strict host from 1.10 on).
    from micropvr_testlib import host_profile
    strict = host_profile(host)['variant'] == 'strict'
    assert set(s['journal_mode'] for s in safety['sqlite']) == {'wal' if strict else 'delete'}
    # The restore staged the set's SQLite copies beside the databases while it took this set:
    # none is in it, and none is left on the host.
    assert [e['path'] for e in safety['config']['entries'] if '.restore-' in e['path']] == []
    for directory in sorted(set(os.path.dirname(s['source']) for s in safety['sqlite'])):
        assert host.check_output('find %s -name ".*.restore-*"', directory) == '', directory


def test_journal_mode_as_the_set_has_it(host, rollback):
    dummy, saved = pre_update_set(host)
    for entry in saved['sqlite']:
        mode = host.check_output('sqlite3 %s "PRAGMA journal_mode"', entry['source'])
        assert mode == entry.get('journal_mode', 'delete'), entry['source']


def test_each_rollback_recorded_once_and_the_lock_released(host, rollback):
    """The release of the host lock records the rollback (one remote task at the end of the run)."""
    pre_update_id, dummy = pre_update_set(host)
    events = rollback['events']
    assert [(e['event'], e['backup_id'], e['outcome']) for e in events] == [
        ('rollback', pre_update_id, 'restored'), ('rollback', pre_update_id, 'already in this state')], events
    from micropvr_testlib import backup_ids, manifest
    safety = [i for i in backup_ids(host) if manifest(host, i)['reason'] == 'pre-rollback to %s' % pre_update_id]
    assert events[0]['safety_backup_id'] == safety[0] and events[1]['safety_backup_id'] is None, events
    assert events[0]['from_versions'] == dict((p, target(host)) for p in packages(host)), events[0]
    assert events[0]['to_versions'] == dict((p, baseline(host)) for p in packages(host)), events[0]
    assert events[0]['differences'] and events[1]['differences'] == [], events
    assert events[0]['run_id'] != events[1]['run_id'], events
    assert not host.file(LOCK).exists, 'the rollback left the host lock'
