"""Unit tests for plugins/module_utils/external_db.py (dump file names, secrets files, dump checks)."""

import errno
import os
import stat

import pytest

from fake_module import FailJson, FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset

from ansible_collections.microimpuls.micropvr.plugins.module_utils import external_db
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    MYSQL_TRAILER,
    _first_error,
    _mysql_defaults,
    _pg_connection_args,
    _pg_env,
    _pgpass_escape,
    check_mysql_dump,
    check_pg_dump,
    database_argument_spec,
    dump,
    dump_filename,
    password,
)

SECRET = 'S3cr:et\\pa"ss word'


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path) as handle:
        return handle.read()


# --- dump_filename -----------------------------------------------------------------------------

@pytest.mark.parametrize('engine, name, expected', [
    ('postgresql', 'middleware', 'postgresql-middleware.pgdump'),
    ('mysql', 'middleware', 'mysql-middleware.sql'),
    ('postgresql', 'mw_prod-2.db', 'postgresql-mw_prod-2.db.pgdump'),
    ('mysql', '../../etc/passwd', 'mysql-.._.._etc_passwd.sql'),
    ('mysql', 'a/b', 'mysql-a_b.sql'),
    ('postgresql', 'my db;rm -rf', 'postgresql-my_db_rm_-rf.pgdump'),
    ('postgresql', 'база', 'postgresql-____.pgdump'),
    ('mysql', 'tab\tnew\nline', 'mysql-tab_new_line.sql'),
    ('mysql', '..', 'mysql-...sql'),
])
def test_dump_filename(engine, name, expected):
    assert dump_filename(dict(engine=engine, name=name)) == expected


@pytest.mark.parametrize('name', ['../x', '/abs/path', 'a/../../b', '..', '.', '\\x', 'a\x00b'])
def test_dump_filename_is_always_one_plain_path_component(name):
    for engine in ('postgresql', 'mysql'):
        filename = dump_filename(dict(engine=engine, name=name))
        assert '/' not in filename and '\\' not in filename and '\x00' not in filename
        assert filename not in ('.', '..')
        assert os.path.basename(filename) == filename
        assert filename.startswith(engine + '-')


def test_databases_with_the_same_dump_filename_get_distinct_files_in_a_set():
    """dump_filename names a dump by engine and database; the set makes colliding names unique."""
    dbs = [dict(engine='postgresql', name='micropvr', host='db1.example.net'),
           dict(engine='postgresql', name='micropvr', host='db2.example.net'),
           dict(engine='mysql', name='a b'), dict(engine='mysql', name='a_b')]
    names = backupset.unique_names([dump_filename(db) for db in dbs])
    assert len(set(names)) == len(dbs)


# --- password ----------------------------------------------------------------------------------

def test_password_inline():
    assert password(dict(login_password='pw')) == 'pw'
    assert password(dict(login_password='')) == ''  # empty, not absent
    assert password(dict(login_password=' pw \n')) == ' pw \n'  # inline passwords are used as given


def test_password_from_file(tmp_path):
    path = tmp_path / 'pw'
    path.write_text('  from file  \n\n')
    assert password(dict(login_password=None, login_password_file=str(path))) == '  from file  '
    path.write_text('no newline')
    assert password(dict(login_password_file=str(path))) == 'no newline'


def test_password_inline_wins_over_file(tmp_path):
    path = tmp_path / 'pw'
    path.write_text('from file\n')
    assert password(dict(login_password='inline', login_password_file=str(path))) == 'inline'


def test_password_neither():
    assert password(dict()) is None
    assert password(dict(login_password=None, login_password_file=None)) is None
    assert password(dict(login_password=None, login_password_file='')) is None


def test_password_file_missing_raises(tmp_path):
    with pytest.raises(IOError):
        password(dict(login_password_file=str(tmp_path / 'nope')))


# --- pgpass / my.cnf ---------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    ('plain', 'plain'),
    ('*', '*'),
    ('a:b', 'a\\:b'),
    ('a\\b', 'a\\\\b'),
    ('\\:', '\\\\\\:'),
    (5432, '5432'),
    ('', ''),
])
def test_pgpass_escape(value, expected):
    assert _pgpass_escape(value) == expected


def test_pg_env_writes_a_private_pgpass_file(tmp_path):
    old_umask = os.umask(0)
    try:
        env = _pg_env(dict(engine='postgresql', name='mw', login_password=SECRET), str(tmp_path))
    finally:
        os.umask(old_umask)
    assert list(env) == ['PGPASSFILE']
    path = env['PGPASSFILE']
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith('.pgpass-')
    assert mode(path) == 0o600
    assert read(path) == '*:*:*:*:S3cr\\:et\\\\pa"ss word\n'
    assert SECRET not in path


def test_pg_env_without_password_writes_nothing(tmp_path):
    assert _pg_env(dict(engine='postgresql', name='mw'), str(tmp_path)) == {}
    assert os.listdir(str(tmp_path)) == []


def test_pg_env_password_from_file(tmp_path):
    secret_file = tmp_path / 'secret'
    secret_file.write_text('from:file\n')
    work = tmp_path / 'work'
    work.mkdir()
    env = _pg_env(dict(engine='postgresql', name='mw', login_password_file=str(secret_file)), str(work))
    assert read(env['PGPASSFILE']) == '*:*:*:*:from\\:file\n'


def test_pg_env_never_writes_through_an_existing_file_or_symlink(tmp_path):
    target = tmp_path / 'elsewhere'
    target.write_text('untouched')
    work = tmp_path / 'work'
    work.mkdir()
    os.symlink(str(target), str(work / '.pgpass-planted'))
    env = _pg_env(dict(engine='postgresql', name='mw', login_password=SECRET), str(work))
    assert not os.path.islink(env['PGPASSFILE'])
    assert target.read_text() == 'untouched'


def test_nested_credentials_get_separate_files(tmp_path):
    db = dict(engine='postgresql', name='mw', login_password=SECRET)
    assert _pg_env(db, str(tmp_path))['PGPASSFILE'] != _pg_env(db, str(tmp_path))['PGPASSFILE']


def test_pg_connection_args_carry_no_password():
    db = dict(engine='postgresql', name='mw', host='db.example.net', port=5433, login_user='pvr',
              login_password=SECRET)
    assert _pg_connection_args(db) == ['--host', 'db.example.net', '--port', '5433', '--username', 'pvr']
    assert _pg_connection_args(dict(engine='postgresql', name='mw', socket='/run/postgresql')) == [
        '--host', '/run/postgresql']
    assert _pg_connection_args(dict(engine='postgresql', name='mw')) == []


def test_mysql_defaults_file(tmp_path):
    old_umask = os.umask(0)
    try:
        path = _mysql_defaults(dict(engine='mysql', name='mw', login_user='pvr', host='db.example.net', port=3307,
                                    socket='/run/mysqld/mysqld.sock', login_password=SECRET), str(tmp_path))
    finally:
        os.umask(old_umask)
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith('.my-cnf-')
    assert mode(path) == 0o600
    assert read(path) == ('[client]\nuser="pvr"\nhost="db.example.net"\nport="3307"\n'
                          'socket="/run/mysqld/mysqld.sock"\npassword="S3cr:et\\\\pa\\"ss word"\n')
    assert SECRET not in path


def test_mysql_defaults_without_password_or_options(tmp_path):
    path = _mysql_defaults(dict(engine='mysql', name='mw'), str(tmp_path))
    assert read(path) == '[client]\n'
    assert mode(path) == 0o600


def test_mysql_defaults_never_writes_through_a_symlink(tmp_path):
    target = tmp_path / 'elsewhere'
    target.write_text('untouched')
    work = tmp_path / 'work'
    work.mkdir()
    os.symlink(str(target), str(work / '.my-cnf-planted'))
    path = _mysql_defaults(dict(engine='mysql', name='mw', login_password=SECRET), str(work))
    assert not os.path.islink(path)
    assert target.read_text() == 'untouched'


def test_database_argument_spec_hides_the_password():
    spec = database_argument_spec()
    assert spec['login_password'] == dict(type='str', no_log=True)
    assert spec['engine']['choices'] == ['postgresql', 'mysql']
    assert spec['engine']['required'] and spec['name']['required']
    assert not any(option.get('no_log') for key, option in spec.items() if key != 'login_password')


# --- dump checks -------------------------------------------------------------------------------

def test_check_mysql_dump_complete(tmp_path):
    path = tmp_path / 'mw.sql'
    path.write_bytes(b'-- MariaDB dump\n' + b'INSERT INTO t VALUES (1);\n' * 1000 +
                     b'-- Dump completed on 2026-11-26 22:15:03\n')
    assert check_mysql_dump(str(path)) is None


def test_check_mysql_dump_small_complete_file(tmp_path):
    path = tmp_path / 'mw.sql'
    path.write_bytes(MYSQL_TRAILER)
    assert check_mysql_dump(str(path)) is None


@pytest.mark.parametrize('content', [
    b'',
    b'-- MariaDB dump\nINSERT INTO t VALUES (1);\n',
    b'-- MariaDB dump\n' + b'INSERT INTO t VALUES (1);\n' * 1000,
    # the trailer in the middle of a dump that went on (e.g. two dumps concatenated, the second cut)
    b'-- Dump completed on 2026-11-26\n' + b'INSERT INTO t VALUES (1);\n' * 100,
    b'-- dump completed on 2026-11-26\n',
])
def test_check_mysql_dump_incomplete(tmp_path, content):
    path = tmp_path / 'mw.sql'
    path.write_bytes(content)
    assert check_mysql_dump(str(path)) == 'dump is incomplete (no "-- Dump completed" trailer)'


class FakeModule(FakeModuleBase):
    """get_bin_path/run_command/fail_json; ``handler(args, kwargs) -> (rc, out, err)``."""

    def __init__(self, handler, bins=('pg_dump', 'pg_restore', 'mysqldump')):
        self.handler = handler
        self.bins = dict((name, '/usr/bin/' + name) for name in bins)
        self.calls = []


    def run_command(self, args, **kwargs):
        self.calls.append((list(args), kwargs))
        return self.handler(args, kwargs)



def test_check_pg_dump(tmp_path):
    module = FakeModule(lambda args, kwargs: (0, ';\n; Archive created at 2026-11-26\n1; 2615 2200 SCHEMA\n', ''))
    assert check_pg_dump(module, '/x/postgresql-mw.pgdump') is None
    assert module.calls == [(['/usr/bin/pg_restore', '--list', '/x/postgresql-mw.pgdump'], {})]


def test_check_pg_dump_failure_and_empty_listing():
    module = FakeModule(lambda args, kwargs: (1, '', 'pg_restore: error: input file is too short\n'))
    assert check_pg_dump(module, '/x') == 'pg_restore --list failed (rc=1): pg_restore: error: input file is too short'
    module = FakeModule(lambda args, kwargs: (0, '  \n', ''))
    assert check_pg_dump(module, '/x') == 'pg_restore --list failed (rc=0): '


def test_check_pg_dump_without_pg_restore():
    module = FakeModule(lambda args, kwargs: (0, 'x', ''), bins=())
    assert check_pg_dump(module, '/x') == 'pg_restore not found (install postgresql-client)'
    assert module.calls == []


@pytest.mark.parametrize('stderr, expected', [
    ('', None),
    ('pg_dump: warning: there are circular foreign-key constraints\n', None),
    ('mysqldump: [Warning] Using a password on the command line interface can be insecure.\n', None),
    ('pg_dump: error: connection to server failed\n', 'pg_dump: error: connection to server failed'),
    ('mysqldump: Got error: 1045: "Access denied for user"\n', 'mysqldump: Got error: 1045: "Access denied for user"'),
    ('   FATAL:  password authentication failed for user "pvr"   \n',
     'FATAL:  password authentication failed for user "pvr"'),
    ('note\npg_dump: ERROR: permission denied\npg_dump: error: second\n', 'pg_dump: ERROR: permission denied'),
    ('dumping table error_log\n', None),
    ('dumping table errors\n', None),
    ('terrorism\n', None),
    ('Error\n', 'Error'),
    ('mysqldump: Couldn\'t execute; fatal-ish\n', "mysqldump: Couldn't execute; fatal-ish"),
])
def test_first_error(stderr, expected):
    assert _first_error(stderr) == expected


# --- dump (fake module: the dump tools are not run) --------------------------------------------

def fake_dump_tool(content=b'dump data\n-- Dump completed on 2026-11-26 22:15:03\n', rc=0, err='', seen=None):
    def handler(args, kwargs):
        if os.path.basename(args[0]) == 'pg_restore':
            return 0, '1; 2615 2200 SCHEMA - public\n', ''
        if seen is not None:
            secret_files = [a.split('=', 1)[1] for a in args if a.startswith('--defaults-extra-file=')]
            secret_files += [v for v in (kwargs.get('environ_update') or {}).values()]
            seen.append(dict(args=list(args), kwargs=kwargs,
                             secrets=dict((p, read(p)) for p in secret_files if os.path.exists(p)),
                             modes=dict((p, mode(p)) for p in secret_files if os.path.exists(p))))
        destination = [a for a in args if a.startswith('--result-file=')]
        destination = destination[0].split('=', 1)[1] if destination else args[args.index('--file') + 1]
        if content is not None:
            with open(destination, 'wb') as handle:
                handle.write(content)
        return rc, '', err
    return handler


def test_dump_postgresql_passes_the_password_only_in_a_private_file(tmp_path):
    seen = []
    module = FakeModule(fake_dump_tool(content=b'PGDMP....', seen=seen))
    db = dict(engine='postgresql', name='mw', host='db.example.net', port=5432, login_user='pvr',
              login_password=SECRET)
    destination = str(tmp_path / 'postgresql-mw.pgdump')
    assert dump(module, db, destination, str(tmp_path)) == dict(engine='postgresql', database='mw', format='custom')
    call = seen[0]
    assert call['args'] == ['/usr/bin/pg_dump', '--format=custom', '--no-password', '--file', destination,
                            '--host', 'db.example.net', '--port', '5432', '--username', 'pvr', 'mw']
    pgpass = call['kwargs']['environ_update']['PGPASSFILE']
    assert call['secrets'] == {pgpass: '*:*:*:*:S3cr\\:et\\\\pa"ss word\n'}
    assert call['modes'] == {pgpass: 0o600}
    assert not any(SECRET in a for a in call['args'])
    assert not any(SECRET in v for v in call['kwargs']['environ_update'].values())
    assert not os.path.exists(pgpass), 'the password file is removed after the dump'
    assert sorted(os.listdir(str(tmp_path))) == ['postgresql-mw.pgdump']


def test_dump_mysql_passes_the_password_only_in_a_private_file(tmp_path):
    seen = []
    module = FakeModule(fake_dump_tool(seen=seen))
    db = dict(engine='mysql', name='mw', login_user='pvr', login_password=SECRET)
    destination = str(tmp_path / 'mysql-mw.sql')
    assert dump(module, db, destination, str(tmp_path)) == dict(engine='mysql', database='mw', format='sql')
    call = seen[0]
    defaults = call['args'][1].split('=', 1)[1]
    assert os.path.dirname(defaults) == str(tmp_path) and os.path.basename(defaults).startswith('.my-cnf-')
    assert call['args'] == ['/usr/bin/mysqldump', '--defaults-extra-file=%s' % defaults, '--single-transaction',
                            '--routines', '--triggers', '--events', '--result-file=%s' % destination, '--', 'mw']
    assert call['secrets'] == {defaults: '[client]\nuser="pvr"\npassword="S3cr:et\\\\pa\\"ss word"\n'}
    assert call['modes'] == {defaults: 0o600}
    assert not any(SECRET in a for a in call['args'])
    assert not os.path.exists(defaults)


@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_dump_nonzero_exit_fails_and_removes_the_secret(tmp_path, engine):
    module = FakeModule(fake_dump_tool(rc=2, err='  could not connect  \n'))
    with pytest.raises(FailJson) as excinfo:
        dump(module, dict(engine=engine, name='mw', login_password='pw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.kwargs['msg'] == '%s database mw: dump failed (rc=2): could not connect' % engine
    assert sorted(os.listdir(str(tmp_path))) == ['d']


@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_dump_error_on_stderr_with_exit_code_zero_fails(tmp_path, engine):
    module = FakeModule(fake_dump_tool(err='warning: x\n%s: error: query failed\n' % engine))
    with pytest.raises(FailJson) as excinfo:
        dump(module, dict(engine=engine, name='mw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.kwargs['msg'] == '%s database mw: dump reported an error: %s: error: query failed' % (
        engine, engine)


@pytest.mark.parametrize('content', [None, b''])
@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_dump_empty_or_missing_result_fails(tmp_path, engine, content):
    module = FakeModule(fake_dump_tool(content=content))
    with pytest.raises(FailJson) as excinfo:
        dump(module, dict(engine=engine, name='mw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.kwargs['msg'] == '%s database mw: dump is empty' % engine


def test_dump_mysql_without_trailer_fails(tmp_path):
    module = FakeModule(fake_dump_tool(content=b'INSERT INTO t VALUES (1);\n'))
    with pytest.raises(FailJson) as excinfo:
        dump(module, dict(engine='mysql', name='mw', login_password='pw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.kwargs['msg'] == 'mysql database mw: dump is incomplete (no "-- Dump completed" trailer)'
    assert sorted(os.listdir(str(tmp_path))) == ['d']


def test_dump_postgresql_that_does_not_read_back_fails(tmp_path):
    def handler(args, kwargs):
        if os.path.basename(args[0]) == 'pg_restore':
            return 1, '', 'pg_restore: error: did not find magic string in file header\n'
        return fake_dump_tool(content=b'garbage')(args, kwargs)

    with pytest.raises(FailJson) as excinfo:
        dump(FakeModule(handler), dict(engine='postgresql', name='mw', login_password='pw'),
             str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.kwargs['msg'] == (
        'postgresql database mw: the dump does not read back: pg_restore --list failed (rc=1): '
        'pg_restore: error: did not find magic string in file header')
    assert sorted(os.listdir(str(tmp_path))) == ['d']


def test_dump_twice_in_the_same_work_dir(tmp_path):
    """Two databases of one set share the work dir: the secret file of the first must be gone."""
    module = FakeModule(fake_dump_tool())
    for name in ('one', 'two'):
        dump(module, dict(engine='mysql', name=name, login_password='pw'), str(tmp_path / name), str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == ['one', 'two']


def test_module_constants():
    assert external_db.ENGINES == ('postgresql', 'mysql')
    assert MYSQL_TRAILER == b'-- Dump completed'


@pytest.mark.parametrize('engine, err', [
    ('postgresql', 'pg_dump: error: could not write to output file: No space left on device\n'),
    ('mysql', 'mysqldump: Got errno 28 on write\n'),
])
def test_dump_out_of_space_is_raised_as_enospc_for_the_caller(tmp_path, engine, err):
    """The backup module turns ENOSPC into its own space message and removes the partial set."""
    module = FakeModule(fake_dump_tool(rc=3, err=err))
    with pytest.raises(OSError) as excinfo:
        dump(module, dict(engine=engine, name='mw', login_password='pw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.errno == errno.ENOSPC
    assert '%s database mw: dump failed (rc=3): %s' % (engine, err.strip()) in str(excinfo.value)
    assert sorted(os.listdir(str(tmp_path))) == ['d']  # the secret file is gone all the same


def test_out_of_space_by_free_blocks(tmp_path, monkeypatch):
    class Full(object):
        f_bfree, f_frsize = 10, 4096

    class Roomy(object):
        f_bfree, f_frsize = 10 ** 6, 4096

    monkeypatch.setattr(os, 'statvfs', lambda path: Full())
    assert external_db.out_of_space(str(tmp_path / 'd'), 'pg_dump: error: could not write') is True
    monkeypatch.setattr(os, 'statvfs', lambda path: Roomy())
    assert external_db.out_of_space(str(tmp_path / 'd'), 'pg_dump: error: connection refused') is False


@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_empty_dump_on_a_full_disk_is_raised_as_enospc(tmp_path, engine, monkeypatch):
    """pg_dump has been seen to exit 0 leaving an empty file on a full filesystem."""
    class Full(object):
        f_bfree, f_frsize = 0, 4096

    module = FakeModule(fake_dump_tool(content=b''))
    monkeypatch.setattr(os, 'statvfs', lambda path: Full())
    with pytest.raises(OSError) as excinfo:
        dump(module, dict(engine=engine, name='mw'), str(tmp_path / 'd'), str(tmp_path))
    assert excinfo.value.errno == errno.ENOSPC and 'dump is empty' in str(excinfo.value)
