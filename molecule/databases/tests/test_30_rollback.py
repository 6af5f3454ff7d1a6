"""External databases come back with a rollback, checked row for row against the backup."""

import pytest

from micropvr_testlib import backup_ids, manifest, run_playbook

PSQL = "sudo -u postgres psql --no-psqlrc -tA -d middleware -c %s"
MYSQL = "mysql --batch -N middleware -e %s"


def _pg(host, sql):
    return host.check_output(PSQL % repr(sql))


def _my(host, sql):
    return host.check_output(MYSQL % repr(sql))


@pytest.fixture(scope='module')
def rollback(host):
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason='before damage', micropvr_backup_restore_test=True)
    assert result.returncode == 0, result.output
    backup_id = backup_ids(host)[-1]
    before = dict(pg=_pg(host, 'SELECT count(*), sum(id) FROM subscribers'),
                  my=_my(host, 'SELECT count(*), sum(id) FROM subscribers'))
    # Damage both databases the way a botched migration would.
    _pg(host, "DELETE FROM subscribers WHERE id > 150; UPDATE subscribers SET tariff = 'gold' WHERE id < 5")
    _my(host, "DELETE FROM subscribers WHERE id > 150; UPDATE subscribers SET tariff = 'gold' WHERE id < 5")
    first = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    second = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    return dict(backup_id=backup_id, before=before, first=first, second=second)


def test_restore_test_ran_at_backup_time(host, rollback):
    entries = manifest(host, rollback['backup_id'])['databases']
    assert len(entries) == 3 and all(e.get('restore_tested') is True for e in entries)
    assert all(e['tables'] for e in entries)
    # The throwaway databases are gone again.
    assert _pg(host, "SELECT count(*) FROM pg_database WHERE datname = 'middleware_micropvr_restore_test'") == '0'
    assert _my(host, "SELECT count(*) FROM information_schema.schemata "
                     "WHERE schema_name = 'middleware_micropvr_restore_test'") == '0'


def test_rollback_restores_both_databases(host, rollback):
    assert rollback['first'].returncode == 0, rollback['first'].output
    output = rollback['first'].output
    assert 'postgresql database middleware: table public.subscribers has 150 rows' in output
    assert 'mysql database middleware: table subscribers has 150 rows' in output
    assert _pg(host, 'SELECT count(*), sum(id) FROM subscribers') == rollback['before']['pg']
    assert _my(host, 'SELECT count(*), sum(id) FROM subscribers') == rollback['before']['my']
    assert _pg(host, "SELECT count(*) FROM subscribers WHERE tariff = 'gold'") == '0'
    assert _my(host, "SELECT count(*) FROM subscribers WHERE tariff = 'gold'") == '0'


def test_second_rollback_finds_nothing_to_do(rollback):
    assert rollback['second'].returncode == 0, rollback['second'].output
    assert 'already in the state of backup set %s' % rollback['backup_id'] in rollback['second'].output
