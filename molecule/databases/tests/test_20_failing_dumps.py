"""A dump that fails fails the backup: no "successful" partial set is left."""

import pytest

from micropvr_testlib import BACKUP_ROOT, backup_ids, run_playbook


def _assert_nothing_left(host, before):
    assert backup_ids(host) == before
    assert '.incomplete' not in host.check_output('ls -A %s' % BACKUP_ROOT)


@pytest.fixture
def unreadable_table(host):
    """A table the backup user may not read: pg_dump stops halfway through the database."""
    sql = ('CREATE TABLE audit (id int); INSERT INTO audit VALUES (1); '
           'REVOKE ALL ON audit FROM PUBLIC;')
    host.check_output("sudo -u postgres psql --no-psqlrc -v ON_ERROR_STOP=1 -d middleware -c %s" % repr(sql))
    yield
    host.check_output("sudo -u postgres psql --no-psqlrc -d middleware -c 'DROP TABLE audit'")


def test_postgresql_permission_error_fails_the_backup(host, unreadable_table):
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml')
    assert result.returncode != 0
    assert 'postgresql database middleware: dump failed' in result.output
    assert 'permission denied for table audit' in result.output
    _assert_nothing_left(host, before)


@pytest.fixture
def wrong_mysql_password(host):
    host.check_output('cp -p /root/.micropvr-mysql-password /root/.micropvr-mysql-password.good')
    host.check_output("sh -c 'echo wrong-password > /root/.micropvr-mysql-password'")
    yield
    host.check_output('mv /root/.micropvr-mysql-password.good /root/.micropvr-mysql-password')


def test_mariadb_access_denied_fails_the_backup(host, wrong_mysql_password):
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml')
    assert result.returncode != 0
    assert 'mysql database middleware: dump failed' in result.output
    assert 'Access denied' in result.output
    _assert_nothing_left(host, before)


def test_backup_works_again_once_fixed(host):
    result = run_playbook(host, 'backup.yml')
    assert result.returncode == 0, result.output
