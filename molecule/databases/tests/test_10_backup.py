"""External databases in a backup set: real dumps, read back, secrets kept out of the output."""

import pytest

from micropvr_testlib import BACKUP_ROOT, backup_ids, manifest, run_playbook

SECRETS = ('pg-Fixture-Secret-7391', 'my-Fixture-Secret-5512')


@pytest.fixture(scope='module')
def backup(host):
    before = set(backup_ids(host))
    result = run_playbook(host, 'backup.yml', '-vvv', micropvr_backup_reason='with databases')
    new = sorted(set(backup_ids(host)) - before)
    return dict(result=result, new=new)


def test_backup_succeeds(backup):
    assert backup['result'].returncode == 0, backup['result'].output
    assert len(backup['new']) == 1


def test_passwords_never_in_the_output(backup):
    for secret in SECRETS:
        assert secret not in backup['result'].output


def test_postgresql_dump_reads_back(host, backup):
    dump = '%s/%s/databases/postgresql-middleware.pgdump' % (BACKUP_ROOT, backup['new'][0])
    listing = host.check_output('pg_restore --list %s' % dump)
    assert 'TABLE DATA public subscribers' in listing
    rows = host.check_output("pg_restore --data-only --table=subscribers --file=- %s | grep -c '^[0-9]'" % dump)
    assert int(rows) == 200


def test_mariadb_dump_is_complete(host, backup):
    dump = host.file('%s/%s/databases/mysql-middleware.sql' % (BACKUP_ROOT, backup['new'][0])).content_string
    assert 'CREATE TABLE `subscribers`' in dump
    assert dump.rstrip().splitlines()[-1].startswith('-- Dump completed')
    assert dump.count("'basic')") == 200


def test_manifest_lists_the_dumps(host, backup):
    engine = host.check_output("grep -o '\"tasks-db-engine\": \"[a-z]*\"' /etc/micropvr/micropvr.conf").split('"')[3]
    tasks_file = 'databases/postgresql-micropvr.pgdump' if engine == 'postgresql' else 'databases/mysql-micropvr.sql'
    data = manifest(host, backup['new'][0])
    assert sorted((d['engine'], d['database'], d['file']) for d in data['databases']) == sorted([
        ('mysql', 'middleware', 'databases/mysql-middleware.sql'),
        ('postgresql', 'middleware', 'databases/postgresql-middleware.pgdump'),
        (engine, 'micropvr', tasks_file)])
    for entry in data['databases']:
        if entry['database'] == 'middleware':
            table = 'public.subscribers' if entry['engine'] == 'postgresql' else 'subscribers'
            assert entry['tables'][table]['rows'] == 200
    kinds = sorted(f['path'] for f in data['files'] if f['kind'] == 'database')
    assert kinds == sorted(['databases/mysql-middleware.sql', 'databases/postgresql-middleware.pgdump', tasks_file])


def test_no_password_file_left_in_the_set(host, backup):
    listing = host.check_output('find %s/%s' % (BACKUP_ROOT, backup['new'][0]))
    assert '.pgpass' not in listing and '.my-' not in listing
    # The only copy of a password in the set is the host's own password file, which config.tar
    # must keep to restore it (/etc/micropvr/tasks-db.password, 0600 like everything in the set).
    for secret in SECRETS:
        found = host.run('grep -rl %s %s/%s' % (secret, BACKUP_ROOT, backup['new'][0])).stdout.split()
        assert found in ([], ['%s/%s/config.tar' % (BACKUP_ROOT, backup['new'][0])])
        if found:
            member = host.check_output('tar -xOf %s etc/micropvr/tasks-db.password' % found[0])
            assert member == secret


def test_set_verifies_including_the_dumps(host, backup):
    result = run_playbook(host, 'backup_verify.yml', micropvr_backup_id=backup['new'][0])
    assert result.returncode == 0, result.output
    assert '%s: VERIFIED' % backup['new'][0] in result.output
