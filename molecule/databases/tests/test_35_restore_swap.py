"""A MariaDB restore trusts nothing: the dump goes into a scratch database and is swapped in only
whole. An import that fails (a server whose max_allowed_packet was lowered after the backup) leaves
the database row for row as it was; a restore that works swaps the tables, view and trigger in."""

import shlex

import pytest

from micropvr_testlib import backup_ids, run_module, run_playbook

MYSQL = 'mysql --batch -N middleware -e %s'
# Everything of the MariaDB middleware database a restore could touch, as text.
STATE = ("SELECT 'row', s.* FROM subscribers s ORDER BY id; "
         "SELECT 'log', l.* FROM subscriber_log l ORDER BY id; "
         "SELECT 'table', TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
         "WHERE TABLE_SCHEMA = 'middleware' ORDER BY TABLE_NAME; "
         "SELECT 'view', VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'middleware'; "
         "SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT, DEFINER "
         "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'middleware'")
WORK_DATABASES = ("SELECT count(*) FROM information_schema.SCHEMATA "
                  "WHERE SCHEMA_NAME IN ('middleware_micropvr_restore', 'middleware_micropvr_previous')")
# Smaller than the INSERT of the 200 subscribers (both settings bound a packet the server reads).
SMALL_PACKETS = 'SET GLOBAL net_buffer_length = 1024, GLOBAL max_allowed_packet = 1024'


def _my(host, sql):
    return host.check_output(MYSQL % shlex.quote(sql))


def _restore(host, backup_id):
    databases = host.ansible.get_variables()['micropvr_databases']
    return run_module(host, 'micropvr_restore', backup_id=backup_id, databases=databases)


@pytest.fixture(scope='module')
def runs(host):
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason='before the restore swap test')
    assert result.returncode == 0, result.output
    backup_id = backup_ids(host)[-1]
    backed_up = _my(host, STATE)
    _my(host, "DELETE FROM subscribers WHERE id > 180; UPDATE subscribers SET tariff = 'gold' WHERE id < 4")
    damaged = _my(host, STATE)
    settings = _my(host, 'SELECT @@global.net_buffer_length, @@global.max_allowed_packet').split()
    _my(host, SMALL_PACKETS)
    try:
        failed = _restore(host, backup_id)
    finally:
        _my(host, 'SET GLOBAL net_buffer_length = %d, GLOBAL max_allowed_packet = %d' % tuple(map(int, settings)))
    after_failure = dict(state=_my(host, STATE), work=_my(host, WORK_DATABASES))
    restored = _restore(host, backup_id)
    return dict(backed_up=backed_up, damaged=damaged, failed=failed, after_failure=after_failure,
                restored=restored, after_restore=_my(host, STATE), work=_my(host, WORK_DATABASES))


def test_the_failed_import_fails_the_restore_naming_the_database(runs):
    rc, result = runs['failed']
    assert rc != 0
    assert ('mysql database middleware was not restored, its old contents are still in place: the import into '
            'the scratch database middleware_micropvr_restore failed (rc=1): ERROR 1153') in result['msg']
    assert "Got a packet bigger than 'max_allowed_packet' bytes" in result['msg']


def test_the_failed_import_leaves_the_database_row_for_row(runs):
    assert runs['damaged'] != runs['backed_up']
    assert runs['after_failure']['state'] == runs['damaged']
    assert runs['after_failure']['work'] == '0'


def test_the_restore_swaps_tables_view_and_trigger_in(host, runs):
    rc, result = runs['restored']
    assert rc == 0, result.get('msg')
    assert result['changed'] and result['outcome'] == 'restored'
    assert runs['after_restore'] == runs['backed_up']
    assert 'trigger\tsubscribers_deleted\tsubscribers' in runs['after_restore']
    assert "view\tselect `middleware`.`subscribers`.`id`" in runs['after_restore']
    assert runs['work'] == '0'


def test_the_trigger_and_view_work_on_the_swapped_in_tables(host, runs):
    answer = _my(host, "START TRANSACTION; DELETE FROM subscribers WHERE id = 1; "
                       "UPDATE subscribers SET tariff = 'gold' WHERE id = 2; "
                       "SELECT count(*) FROM subscriber_log WHERE subscriber = 1; "
                       "SELECT group_concat(id) FROM gold_subscribers; ROLLBACK")
    assert answer.split() == ['1', '2']
