"""The stand-in's tasks table in PostgreSQL (Debian 12 host) or MariaDB (Debian 13 host):
backup under writes, update migrates it, the bad release rolls it back row for row."""

import time

import pytest

from micropvr_testlib import installed_version, manifest, backup_ids, run_playbook

WRITER_LOG = '/run/external-writer.log'
STOP_FILE = '/run/external-writer.stop'


def engine_of(host):
    return host.check_output("grep -o '\"tasks-db-engine\": \"[a-z]*\"' /etc/micropvr/micropvr.conf").split('"')[3]


def sql(host, query):
    if engine_of(host) == 'postgresql':
        return host.check_output('sudo -u postgres psql --no-psqlrc -tA -d micropvr -c %s' % repr(query))
    return host.check_output('mysql --batch -N micropvr -e %s' % repr(query))


def tasks(host):
    return sql(host, 'SELECT * FROM tasks ORDER BY id')


@pytest.fixture(scope='module')
def runs(host):
    host.run('rm -f %s %s' % (WRITER_LOG, STOP_FILE))
    host.check_output('setsid nohup /usr/local/bin/standin-writer --log %s --stop-file %s '
                      '>/dev/null 2>&1 < /dev/null &' % (WRITER_LOG, STOP_FILE))
    time.sleep(2)
    backup = run_playbook(host, 'backup.yml', micropvr_backup_reason='external tasks under writes')
    time.sleep(1)
    host.check_output('touch %s' % STOP_FILE)
    time.sleep(1)
    writes = host.file(WRITER_LOG).content_string.splitlines()
    backup_id = backup_ids(host)[-1]
    live_after_writes = int(sql(host, 'SELECT count(*) FROM tasks'))
    update = run_playbook(host, 'update.yml', micropvr_version='1.10.0-1')
    migrated = dict(version=sql(host, 'SELECT version FROM micropvr_schema'), rows=tasks(host))
    bad = run_playbook(host, 'update.yml', micropvr_version='1.10.1-1', micropvr_health_retries=5)
    return dict(backup=backup, backup_id=backup_id, writes=writes, live_after_writes=live_after_writes,
                update=update, migrated=migrated, bad=bad, after_bad=tasks(host),
                version_after_bad=sql(host, 'SELECT version FROM micropvr_schema'))


def test_backup_under_writes_is_consistent(host, runs):
    assert runs['backup'].returncode == 0, runs['backup'].output
    assert runs['writes'] and not [line for line in runs['writes'] if ' error ' in line]
    entry = [d for d in manifest(host, runs['backup_id'])['databases'] if d['database'] == 'micropvr'][0]
    table = 'public.tasks' if engine_of(host) == 'postgresql' else 'tasks'
    assert 0 < entry['tables'][table]['rows'] <= runs['live_after_writes']


def test_update_migrates_the_external_table(host, runs):
    assert runs['update'].returncode == 0, runs['update'].output
    assert runs['migrated']['version'] == '2'
    first = runs['migrated']['rows'].splitlines()[0].split('|' if engine_of(host) == 'postgresql' else '\t')
    # schema 2: start_time in epoch seconds, duration in seconds, end_time = start + duration
    start, duration, end = int(first[3]), int(first[4]), int(first[5])
    assert start > 1_000_000_000 and end == start + duration


def test_bad_release_rolls_the_external_table_back_row_for_row(host, runs):
    assert runs['bad'].returncode != 0
    assert 'The host was rolled back automatically to backup set' in runs['bad'].output
    assert runs['after_bad'] == runs['migrated']['rows']
    assert runs['version_after_bad'] == '2'
    assert installed_version(host, 'micropvr') == '1.10.0-1'
