"""Credentials files of the external databases: MariaDB option files read back exactly as MariaDB
reads them, PostgreSQL password files refused for what they cannot hold, nothing secret in messages."""

import os
import random

import pytest

from fake_module import FailJson, FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import external_db
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    MYCNF_LINE_MAX,
    CredentialsError,
    _mysql_defaults,
    _pg_env,
    credentials,
    mysql_option_value,
)

# --- a reference reader of MariaDB option files ----------------------------------------------------
# A line-by-line port of search_default_file_with_ext() and remove_end_comment() in MariaDB's
# mysys/my_default.c (the reader behind every client's --defaults-extra-file). It works on bytes,
# like the C code; checked against my_print_defaults of MariaDB 10.11 and 11.8 (see the report of
# issue 13). Returns [(group, '--option[=value]')].

_SPACE = b' \t\n\v\f\r'            # my_isspace(&my_charset_latin1, c)
_ESCAPES = {b'n': b'\n', b't': b'\t', b'r': b'\r', b'b': b'\b', b's': b' ', b'"': b'"', b"'": b"'", b'\\': b'\\'}
_FGETS = 4096 - 1 - 1               # fgets(buff, sizeof(buff) - 1, fp) reads at most 4094 bytes


def _fgets_lines(data):
    lines = []
    for line in data.splitlines(True):
        while len(line) > _FGETS:
            lines.append(line[:_FGETS])
            line = line[_FGETS:]
        lines.append(line)
    return lines


def _remove_end_comment(line):
    quote, escape = None, False
    for index in range(len(line)):
        char = line[index:index + 1]
        if char in (b"'", b'"') and not escape:
            if quote is None:
                quote = char
            elif quote == char:
                quote = None
        if quote is None and char == b'#':
            return line[:index]
        escape = bool(quote is not None and char == b'\\' and not escape)
    return line


def read_option_file(data):
    options, group = [], None
    for raw in _fgets_lines(data):
        ptr = raw.lstrip(_SPACE)
        if not ptr or ptr[:1] in (b'#', b';'):
            continue
        if ptr[:1] == b'!':
            raise AssertionError('no include directives expected: %r' % raw)
        if ptr[:1] == b'[':
            end = ptr.find(b']', 1)
            if end < 0:
                raise ValueError('wrong group definition: %r' % raw)
            group = ptr[1:end].rstrip(_SPACE)
            continue
        if group is None:
            raise ValueError('option without preceding group: %r' % raw)
        ptr = _remove_end_comment(ptr)
        equals = ptr.find(b'=')
        if equals < 0:
            options.append((group, b'--' + ptr.rstrip(_SPACE)))
            continue
        name = ptr[:equals].rstrip(_SPACE)
        value = ptr[equals + 1:].lstrip(_SPACE).rstrip(_SPACE)
        if value[:1] in (b'"', b"'") and len(value) > 1 and value[:1] == value[-1:]:
            value = value[1:-1]
        out, index = [], 0
        while index < len(value):
            char = value[index:index + 1]
            if char == b'\\' and index != len(value) - 1:
                index += 1
                char = value[index:index + 1]
                out.append(_ESCAPES.get(char, b'\\' + char))
            else:
                out.append(char)
            index += 1
        options.append((group, b'--' + name + b'=' + b''.join(out)))
    return [(group.decode('utf-8'), option.decode('utf-8', 'surrogateescape')) for group, option in options]


def read_back(db, tmp_path):
    path = _mysql_defaults(db, str(tmp_path))
    with open(path, 'rb') as handle:
        return read_option_file(handle.read())


def test_reference_reader_reads_mariadb_documented_forms():
    """The reader itself: comments, quotes, escapes, blanks, as MariaDB documents and does them."""
    text = (b'# comment\n; comment\n\n[client]\nuser = pvr   # trailing comment\n'
            b'password="a#b"  \nhost=\'x y\'\nsocket=/a\\sb\\\\c\\qd\nquick\n'
            b'port="3307\n[mysqldump]\nmax_allowed_packet=16M\n')
    assert read_option_file(text) == [
        ('client', '--user=pvr'), ('client', '--password=a#b'), ('client', '--host=x y'),
        ('client', '--socket=/a b\\c\\qd'), ('client', '--quick'), ('client', '--port="3307'),
        ('mysqldump', '--max_allowed_packet=16M')]


# --- MariaDB option files ------------------------------------------------------------------------------

HOSTILE = [
    'plain', '', ' ', 'a b', ' lead', 'trail ', 'hash#tag', '#start', 'semi;colon', ';start',
    'double"quote', '"', '""', '"quoted"', "single'quote", "'", "'quoted'", 'back\\slash', '\\', 'end\\',
    '\\"', 'new\nline', '\n', 'car\rriage', 'tab\there', '\t', 'back\bspace', 'literal\\n', 'literal\\s',
    '[client]', 'x=y', '!include /etc/passwd', 'пароль-ü-€', '"#"\'#\'\\#', 'a\\\\"b', '\v\f', ' \t ',
]


@pytest.mark.parametrize('value', HOSTILE)
def test_mysql_option_file_reads_back_every_value(tmp_path, value):
    db = dict(engine='mysql', name='mw', login_user=value or 'u', host=value or 'h', port=3307,
              socket=value or 's', login_password=value)
    assert read_back(db, tmp_path) == [
        ('client', '--user=%s' % (value or 'u')), ('client', '--host=%s' % (value or 'h')),
        ('client', '--port=3307'), ('client', '--socket=%s' % (value or 's')), ('client', '--password=%s' % value)]


def test_mysql_option_file_reads_back_random_values(tmp_path):
    rng = random.Random(13)
    alphabet = 'aZ9 \t\n\r\b\v\f#;"\'\\=[]!-_ü€'
    for dummy in range(400):
        user = ''.join(rng.choice(alphabet) for dummy in range(rng.randint(1, 12)))
        secret = ''.join(rng.choice(alphabet) for dummy in range(rng.randint(0, 24)))
        db = dict(engine='mysql', name='mw', login_user=user, login_password=secret)
        assert read_back(db, tmp_path) == [('client', '--user=%s' % user), ('client', '--password=%s' % secret)], \
            (user, secret)


def test_mysql_option_file_from_a_password_file(tmp_path):
    secret_file = tmp_path / 'secret'
    secret_file.write_text('pa"ss#wo\\rd\n')
    work = tmp_path / 'work'
    work.mkdir()
    db = dict(engine='mysql', name='mw', login_password_file=str(secret_file))
    assert read_back(db, work) == [('client', '--password=pa"ss#wo\\rd')]


@pytest.mark.parametrize('value, expected', [
    ('plain', '"plain"'),
    ('', '""'),
    ('a#b', '"a#b"'),
    ('a"b', '"a\\"b"'),
    ('a\\b', '"a\\\\b"'),
    ('a\nb\rc\td\be', '"a\\nb\\rc\\td\\be"'),
    ("it's", '"it\'s"'),
    (3306, '"3306"'),
])
def test_mysql_option_value(value, expected):
    assert mysql_option_value(value) == expected


def test_every_mysql_option_is_quoted(tmp_path):
    path = _mysql_defaults(dict(engine='mysql', name='mw', login_user='pvr', host='db', port=3307,
                                socket='/run/mysqld/mysqld.sock', login_password='pw'), str(tmp_path))
    with open(path) as handle:
        assert handle.read() == ('[client]\nuser="pvr"\nhost="db"\nport="3307"\nsocket="/run/mysqld/mysqld.sock"\n'
                                 'password="pw"\n')


@pytest.mark.parametrize('key, source', [
    ('login_user', 'login_user'), ('host', 'host'), ('socket', 'socket'), ('login_password', 'login_password')])
def test_mysql_option_with_a_nul_is_refused_without_its_value(tmp_path, key, source):
    db = dict(engine='mysql', name='mw', **{key: 'sec\0ret-value'})
    with pytest.raises(CredentialsError) as excinfo:
        _mysql_defaults(db, str(tmp_path))
    assert str(excinfo.value) == ('databases: mysql mw: %s contains a NUL character, which a MariaDB option file '
                                  'cannot hold' % source)
    assert os.listdir(str(tmp_path)) == []


def test_mysql_option_too_long_for_a_line_is_refused(tmp_path):
    db = dict(engine='mysql', name='mw', login_password='"' * (MYCNF_LINE_MAX // 2))
    with pytest.raises(CredentialsError) as excinfo:
        _mysql_defaults(db, str(tmp_path))
    assert str(excinfo.value) == ('databases: mysql mw: login_password is too long for a MariaDB option file '
                                  '(a line holds at most %d bytes)' % MYCNF_LINE_MAX)
    # just below the limit it reads back whole
    db = dict(engine='mysql', name='mw', login_password='x' * (MYCNF_LINE_MAX - len('password=""')))
    assert read_back(db, tmp_path) == [('client', '--password=' + db['login_password'])]


# --- PostgreSQL password files -------------------------------------------------------------------------

@pytest.mark.parametrize('secret, problem', [
    ('Xq7\nZk9', 'contains a newline'),
    ('\nZk9', 'contains a newline'),
    ('Xq7Zk9\r', 'ends with a carriage return'),
    ('Xq7\0Zk9', 'contains a NUL character'),
])
def test_pgpass_refuses_what_a_password_file_cannot_hold(tmp_path, secret, problem):
    db = dict(engine='postgresql', name='middleware', login_password=secret)
    with pytest.raises(CredentialsError) as excinfo:
        _pg_env(db, str(tmp_path))
    assert str(excinfo.value).startswith('databases: postgresql middleware: login_password %s, ' % problem)
    assert 'Xq7' not in str(excinfo.value) and 'Zk9' not in str(excinfo.value)
    assert os.listdir(str(tmp_path)) == []


def test_pgpass_names_the_password_file(tmp_path):
    secret_file = tmp_path / 'secret'
    secret_file.write_text('first\nsecond\n')
    work = tmp_path / 'work'
    work.mkdir()
    with pytest.raises(CredentialsError) as excinfo:
        _pg_env(dict(engine='postgresql', name='mw', login_password_file=str(secret_file)), str(work))
    assert str(excinfo.value).startswith('databases: postgresql mw: the password in login_password_file %s '
                                         'contains a newline, ' % secret_file)
    assert 'first' not in str(excinfo.value) and 'second' not in str(excinfo.value)


@pytest.mark.parametrize('secret', ['with\rcarriage return inside', 'tab\tand:colon\\and backslash', 'ü'])
def test_pgpass_keeps_what_libpq_reads_back(tmp_path, secret):
    env = _pg_env(dict(engine='postgresql', name='mw', login_password=secret), str(tmp_path))
    with open(env['PGPASSFILE'], 'rb') as handle:
        line = handle.read().decode('utf-8')
    # libpq (passwordFromFile): strip trailing CR/LF, skip four fields, then de-escape the rest
    fields, current, index, text = [], [], 0, line.rstrip('\r\n')
    while index < len(text):
        if text[index] == '\\' and index + 1 < len(text):
            index += 1
            current.append(text[index])
        elif text[index] == ':' and len(fields) < 4:
            fields.append(''.join(current))
            current = []
        else:
            current.append(text[index])
        index += 1
    assert fields == ['*', '*', '*', '*'] and ''.join(current) == secret


# --- the functions that use credentials --------------------------------------------------------------

class FakeModule(FakeModuleBase):
    def __init__(self):
        self.bins = dict((name, '/usr/bin/' + name) for name in ('pg_dump', 'pg_restore', 'psql', 'mysql',
                                                                  'mysqldump'))
        self.calls = []

    def run_command(self, args, **kwargs):
        self.calls.append(args)
        return 0, '', ''


NEWLINE_DB = dict(engine='postgresql', name='middleware', login_password='top\nsecret')


def test_credentials_fail_the_module_naming_the_option(tmp_path):
    module = FakeModule()
    with pytest.raises(FailJson) as excinfo:
        with credentials(NEWLINE_DB, str(tmp_path), module):
            raise AssertionError('not reached')
    assert excinfo.value.kwargs['msg'].startswith('databases: postgresql middleware: login_password contains a '
                                                  'newline')
    with pytest.raises(CredentialsError):
        with credentials(NEWLINE_DB, str(tmp_path)):
            raise AssertionError('not reached')
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('call', [
    lambda module, work: external_db.dump(module, NEWLINE_DB, os.path.join(work, 'd'), work),
    lambda module, work: external_db.restore(module, NEWLINE_DB, os.path.join(work, 'd'), work),
    lambda module, work: external_db.restore(module, NEWLINE_DB, os.path.join(work, 'd'), work, expected_tables={}),
    lambda module, work: external_db.live_digests(module, NEWLINE_DB, work),
    lambda module, work: external_db.restore_test(module, NEWLINE_DB, os.path.join(work, 'd'), work),
])
def test_a_password_with_a_newline_fails_before_any_tool_runs(tmp_path, call):
    module = FakeModule()
    with pytest.raises(FailJson) as excinfo:
        call(module, str(tmp_path))
    message = excinfo.value.kwargs['msg']
    assert message.startswith('databases: postgresql middleware: login_password contains a newline')
    assert 'secret' not in message and 'top' not in message
    assert module.calls == []
    assert os.listdir(str(tmp_path)) == []


def test_ping_reports_the_refused_password_as_its_answer(tmp_path):
    module = FakeModule()
    problem = external_db.ping(module, NEWLINE_DB, str(tmp_path))
    assert problem.startswith('databases: postgresql middleware: login_password contains a newline')
    assert 'secret' not in problem and module.calls == []
    problem = external_db.ping(module, dict(engine='mysql', name='mw', login_password='a\0b'), str(tmp_path))
    assert problem == 'databases: mysql mw: login_password contains a NUL character, which a MariaDB option ' \
                      'file cannot hold'
