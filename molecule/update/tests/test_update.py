"""After update.yml to micropvr_version (1.10.0-1; 1:1.10.0-1 on the strict host) (converge, then
again in idempotence)."""

import calendar
import json
import re
import time

import pytest

from micropvr_testlib import (
    backup_ids, backup_root, baseline, host_profile, installed_version, manifest, packages, rpc, service_status,
    target, upstream_version)


def _rows(sql_dump, table):
    """Rows of ``table`` from an sqlite3 .dump, as value tuples."""
    rows = []
    for line in sql_dump.splitlines():
        match = re.match(r'INSERT INTO "?%s"? VALUES\((.*)\);$' % table, line)
        if match:
            rows.append(json.loads('[%s]' % match.group(1).replace("'", '"')))
    return rows


def test_packages_at_target_and_held(host):
    held = host.check_output('apt-mark showhold').split()
    for package in packages(host):
        assert installed_version(host, package) == target(host), package
        assert package in held, package


def test_services_healthy(host):
    assert service_status(host, 'micropvr') == 0 and service_status(host, 'micropvs') == 0
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert rpc(host, 'get_version') == {'version': upstream_version(target(host)), 'schema_version': 2}


def test_journal_mode_of_the_release(host):
    """The strict stand-in's 1.10 switches its databases to WAL; the default one keeps DELETE."""
    expected = 'wal' if host_profile(host)['variant'] == 'strict' else 'delete'
    for db in ('records', 'tasks'):
        assert host.check_output('sqlite3 /etc/micropvr/%s.db "PRAGMA journal_mode"' % db) == expected


@pytest.mark.parametrize('db, table', [('tasks', 'tasks'), ('records', 'records')])
def test_schema_migrated_and_every_row_preserved(host, db, table):
    assert host.check_output('sqlite3 /etc/micropvr/%s.db "PRAGMA user_version"' % db) == '2'
    before = _rows(host.file('/root/pre-update-%s.sql' % db).content_string, table)
    after = json.loads(host.check_output('sqlite3 -json /etc/micropvr/%s.db "SELECT * FROM %s ORDER BY id"'
                                         % (db, table)) or '[]')
    assert len(before) >= 20 and [row['id'] for row in after] == [row[0] for row in before]
    for old, new in zip(before, after):
        # schema 1 columns: id, ..., start_time 'YYYY-MM-DD HH:MM:SS', duration (minutes), ...
        start_text = next(v for v in old if isinstance(v, str) and re.match(r'^\d{4}-\d\d-\d\d \d\d:', v))
        assert new['start_time'] == calendar.timegm(time.strptime(start_text, '%Y-%m-%d %H:%M:%S'))
        assert new['end_time'] == new['start_time'] + new['duration']


def test_operator_edit_survives(host):
    conf = host.file('/etc/micropvr/micropvr.conf').content_string
    assert re.search(r'"log-verbose-level"\s*:\s*6', conf)


def test_pre_update_backup_is_pinned_and_matches_old_versions(host):
    sets = [manifest(host, backup_id) for backup_id in backup_ids(host)]
    pre = [m for m in sets if m['reason'] == 'pre-update to %s' % target(host)]
    assert len(pre) == 1, 'idempotence run must not take a second backup'
    assert pre[0]['pinned'] is True
    assert {n: p['version'] for n, p in pre[0]['packages'].items()} == dict((n, baseline(host)) for n in packages(host))


def test_history_records_the_update(host):
    events = [json.loads(line) for line in
              host.file('/var/lib/microimpuls-micropvr/history.jsonl').content_string.splitlines()]
    updates = [e for e in events if e['event'] == 'update']
    assert updates[0]['outcome'] == 'updated'
    assert updates[0]['from_versions'] == dict((n, baseline(host)) for n in packages(host))
    assert updates[0]['to_versions'] == dict((n, target(host)) for n in packages(host))
    assert updates[0]['backup_id'] in backup_ids(host)
    assert updates[-1]['outcome'] == 'already at target'
    assert host.file('/var/lib/microimpuls-micropvr').mode == 0o700
    assert host.file('/var/lib/microimpuls-micropvr/history.jsonl').mode == 0o600


def test_lock_released(host):
    assert not host.file('/var/lib/microimpuls-micropvr/update.lock').exists


def test_backup_root_stays_private(host):
    assert host.file(backup_root(host)).mode == 0o700
