# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dumps of the external PostgreSQL / MariaDB databases that belong to MicroPVR.

Dump tools fail quietly in well-known ways: an empty dump with exit code 0, errors only on
stderr, a failure hidden behind a pipe to a compressor. Every dump here is checked for its
exit code, for errors on stderr, for emptiness, and for a readable result (``pg_restore
--list``; mysqldump's completion trailer). Passwords reach the tools only through a 0600
file in the set's private work directory (PGPASSFILE, --defaults-extra-file), never argv,
and never appear in a message.

A restore trusts nothing: a MariaDB dump is imported into a scratch database, compared with
the digests recorded at backup time, and only then swapped in with one RENAME TABLE; a
PostgreSQL dump is restored in one transaction and compared afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import contextlib
import errno
import hashlib
import os
import re
import tempfile

ENGINES = ('postgresql', 'mysql')
_STDERR_ERROR = re.compile(r'\b(error|fatal)\b', re.IGNORECASE)
MYSQL_TRAILER = b'-- Dump completed'


def database_argument_spec():
    """Suboptions of one entry of the ``databases`` option."""
    return dict(
        engine=dict(type='str', required=True, choices=list(ENGINES)),
        name=dict(type='str', required=True),
        host=dict(type='str'),
        port=dict(type='int'),
        socket=dict(type='path'),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_password_file=dict(type='path'),
    )


def dump_filename(db):
    suffix = 'pgdump' if db['engine'] == 'postgresql' else 'sql'
    safe = re.sub(r'[^A-Za-z0-9_.-]', '_', db['name'])
    return '%s-%s.%s' % (db['engine'], safe, suffix)


def password(db):
    """The password from the entry itself or from its password file on the host."""
    if db.get('login_password') is not None:
        return db['login_password']
    if db.get('login_password_file'):
        with open(db['login_password_file']) as handle:
            return handle.read().rstrip('\n')
    return None


class CredentialsError(ValueError):
    """A login setting that the credentials file of a client tool cannot carry.

    The message names the database and the option, never the value.
    """


def _private_file(work_dir, prefix, content):
    """A new 0600 file in ``work_dir`` holding ``content``; unique, so credentials can nest."""
    fd, path = tempfile.mkstemp(dir=work_dir, prefix=prefix)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(content.encode('utf-8', 'surrogateescape'))
    return path


def _pgpass_escape(value):
    return str(value).replace('\\', '\\\\').replace(':', '\\:')


def _password_source(db):
    """The option a password comes from, as a message names it."""
    if db.get('login_password') is not None:
        return 'login_password'
    return 'the password in login_password_file %s' % db.get('login_password_file')


def _pgpass_problem(secret):
    """Why libpq would not read ``secret`` back from a password file line, or None.

    libpq reads the file line by line and strips every trailing CR and LF of a line; only
    ``\\`` and ``:`` can be escaped.
    """
    if '\n' in secret:
        return 'contains a newline'
    if secret.endswith('\r'):
        return 'ends with a carriage return'
    if '\0' in secret:
        return 'contains a NUL character'
    return None


def _label(db):
    return '%s database %s' % (db['engine'], db['name'])


def _first_error(stderr):
    for line in stderr.splitlines():
        if _STDERR_ERROR.search(line):
            return line.strip()
    return None


def _pg_connection_args(db):
    args = []
    host = db.get('host') or db.get('socket')
    if host:
        args += ['--host', host]
    if db.get('port'):
        args += ['--port', str(db['port'])]
    if db.get('login_user'):
        args += ['--username', db['login_user']]
    return args


def _pg_env(db, work_dir):
    env = {}
    secret = password(db)
    if secret is not None:
        problem = _pgpass_problem(secret)
        if problem:
            raise CredentialsError(
                'databases: postgresql %s: %s %s, which a PostgreSQL password file cannot hold (and a password '
                'is never passed on a command line): use a password without it'
                % (db['name'], _password_source(db), problem))
        line = ':'.join(_pgpass_escape(v) for v in ('*', '*', '*', '*', secret))
        env['PGPASSFILE'] = _private_file(work_dir, '.pgpass-', line + '\n')
    return env


# MariaDB's option-file reader (mysys/my_default.c) takes one line per option (fgets into a
# 4096-byte buffer), strips blanks around the value, cuts a '#' comment outside quotes, removes
# one pair of quotes around the value and then reads \n \t \r \b \s \" \' \\ as escapes (any
# other backslash stays). Every value is written quoted, with the characters that would end
# the line, the value or the quote escaped, so it reads back exactly.
_MYCNF_ESCAPES = (('\\', '\\\\'), ('"', '\\"'), ('\n', '\\n'), ('\r', '\\r'), ('\t', '\\t'), ('\b', '\\b'))
MYCNF_LINE_MAX = 4000


def mysql_option_value(value):
    """``value`` quoted and escaped for a MariaDB option file (``key=<this>``)."""
    text = str(value)
    for raw, escaped in _MYCNF_ESCAPES:
        text = text.replace(raw, escaped)
    return '"%s"' % text


def _mysql_defaults(db, work_dir):
    settings = []
    for key, option in (('login_user', 'user'), ('host', 'host'), ('port', 'port'), ('socket', 'socket')):
        if db.get(key):
            settings.append((key, option, str(db[key])))
    secret = password(db)
    if secret is not None:
        settings.append((_password_source(db), 'password', secret))
    lines = ['[client]']
    for source, option, value in settings:
        if '\0' in value:
            raise CredentialsError('databases: mysql %s: %s contains a NUL character, which a MariaDB option '
                                   'file cannot hold' % (db['name'], source))
        line = '%s=%s' % (option, mysql_option_value(value))
        if len(line.encode('utf-8', 'surrogateescape')) > MYCNF_LINE_MAX:
            raise CredentialsError('databases: mysql %s: %s is too long for a MariaDB option file (a line holds '
                                   'at most %d bytes)' % (db['name'], source, MYCNF_LINE_MAX))
        lines.append(line)
    return _private_file(work_dir, '.my-cnf-', '\n'.join(lines) + '\n')


@contextlib.contextmanager
def credentials(db, work_dir, module=None):
    """Yield (environment, client options) that carry ``db``'s login to its client tools.

    PostgreSQL gets PGPASSFILE in the environment, MariaDB a --defaults-extra-file option;
    either file is 0600 in ``work_dir`` and is removed when the block ends. A login the file
    cannot carry fails ``module`` (raises CredentialsError without one), before any file exists.
    """
    try:
        if db['engine'] == 'postgresql':
            env = _pg_env(db, work_dir)
            files, options = list(env.values()), _pg_connection_args(db)
        else:
            defaults = _mysql_defaults(db, work_dir)
            env, files, options = {}, [defaults], ['--defaults-extra-file=%s' % defaults]
    except CredentialsError as exc:
        if module is None:
            raise
        module.fail_json(msg=str(exc))
    try:
        yield env, options
    finally:
        for path in files:
            if os.path.exists(path):
                os.unlink(path)


def dump(module, db, destination, work_dir):
    """Dump ``db`` to ``destination``; return a manifest entry's extra fields, or fail the module."""
    label = _label(db)
    with credentials(db, work_dir, module) as (env, options):
        if db['engine'] == 'postgresql':
            pg_dump = module.get_bin_path('pg_dump', required=True)
            rc, out, err = module.run_command(
                [pg_dump, '--format=custom', '--no-password', '--file', destination] + options + [db['name']],
                environ_update=env)
            _check_dump(module, label, destination, rc, err)
            problem = check_pg_dump(module, destination)
            if problem:
                _dump_failed(module, label, destination, 'the dump does not read back: %s' % problem)
            return dict(engine='postgresql', database=db['name'], format='custom')
        mysqldump = module.get_bin_path('mysqldump', required=True)
        rc, out, err = module.run_command(
            [mysqldump] + options + ['--single-transaction', '--routines', '--triggers', '--events',
                                     '--result-file=%s' % destination, '--', db['name']])
        _check_dump(module, label, destination, rc, err)
        problem = check_mysql_dump(destination)
        if problem:
            _dump_failed(module, label, destination, problem)
        return dict(engine='mysql', database=db['name'], format='sql')


def out_of_space(path, stderr=''):
    """True when a failed write to ``path`` was (most likely) for want of space."""
    if 'No space left on device' in stderr or 'errno 28' in stderr.lower():
        return True
    try:
        stats = os.statvfs(os.path.dirname(path) or '.')
    except OSError:
        return False
    # root may write into the reserved blocks: only f_bfree counts for it.
    return stats.f_bfree * stats.f_frsize < 1024 * 1024


def _dump_failed(module, label, destination, problem, stderr=''):
    """Fail the module with ``problem``; raise ENOSPC instead when the disk is full.

    A full disk is the caller's to report (with the partial set removed); pg_dump has been
    seen to exit 0 with an empty file on a full filesystem, so every kind of failure is checked.
    """
    if out_of_space(destination, stderr):
        raise OSError(errno.ENOSPC, '%s: %s' % (label, problem))
    module.fail_json(msg='%s: %s' % (label, problem))


def _check_dump(module, label, destination, rc, stderr):
    if rc != 0:
        _dump_failed(module, label, destination, 'dump failed (rc=%d): %s' % (rc, stderr.strip()), stderr)
    error = _first_error(stderr)
    if error:
        _dump_failed(module, label, destination, 'dump reported an error: %s' % error, stderr)
    if not os.path.isfile(destination) or os.path.getsize(destination) == 0:
        _dump_failed(module, label, destination, 'dump is empty', stderr)


def check_pg_dump(module, path):
    """None if ``pg_restore --list`` reads the custom-format dump, else why not."""
    pg_restore = module.get_bin_path('pg_restore')
    if not pg_restore:
        return 'pg_restore not found (install postgresql-client)'
    rc, out, err = module.run_command([pg_restore, '--list', path])
    if rc != 0 or not out.strip():
        return 'pg_restore --list failed (rc=%d): %s' % (rc, err.strip())
    return None


def check_mysql_dump(path):
    """None if the SQL dump ends with mysqldump's completion trailer, else why not."""
    with open(path, 'rb') as handle:
        handle.seek(max(0, os.path.getsize(path) - 256))
        tail = handle.read()
    if MYSQL_TRAILER not in tail:
        return 'dump is incomplete (no "-- Dump completed" trailer)'
    return None


# --- restore -------------------------------------------------------------------------------------
# MariaDB: the dump goes into a scratch database; its tables are compared with the digests of the
# backup set; then one RENAME TABLE (atomic in MariaDB) moves the old tables into a holding
# database and the new ones into place. RENAME TABLE moves neither views (they cannot change
# database) nor tables with triggers, and routines and events belong to a database, not a table:
# they are saved as SQL by mysqldump before the swap, dropped, and created again after it. A
# failure before the swap leaves the old database as it was; a failure after it swaps back.

SCRATCH_SUFFIX = '_micropvr_restore'
HOLDING_SUFFIX = '_micropvr_previous'
RESTORE_TEST_SUFFIX = '_micropvr_restore_test'
MYSQL_NAME_MAX = 64     # characters (MariaDB NAME_CHAR_LEN)
PG_NAME_MAX = 63        # bytes (NAMEDATALEN - 1; longer names are truncated, not refused)
LOCK_WAIT_SECONDS = 120
OBJECT_KINDS = ('routines', 'triggers', 'views')    # the order they are created in
KEPT = 'its old contents are still in place'


class _Failure(Exception):
    """One step of a restore failed; the message says which and why (never a password)."""


def quote_name(name):
    """A MariaDB identifier, backquoted (backquotes inside doubled)."""
    return '`%s`' % name.replace('`', '``')


def _name_literal(name):
    """A MariaDB string literal of ``name`` that no sql_mode reads differently: X'hex'."""
    return "X'%s'" % binascii.hexlify(name.encode('utf-8', 'surrogateescape')).decode('ascii')


def work_database_name(engine, name, suffix):
    """``name`` + ``suffix``; when the engine's limit does not allow it, a shortened unique name.

    MariaDB names hold at most 64 characters; PostgreSQL truncates names to 63 bytes, which could
    turn a scratch name into an existing name. A name that is too long keeps as much of its start
    as fits, followed by 12 hex digits of its sha256, then ``suffix``: the same name always gives
    the same work name (a killed run's leftovers are found), different names different ones.
    """
    def fits(candidate):
        if engine == 'postgresql':
            return len(candidate.encode('utf-8', 'surrogateescape')) <= PG_NAME_MAX
        return len(candidate) <= MYSQL_NAME_MAX

    if fits(name + suffix):
        return name + suffix
    tag = '_' + hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:12]
    keep = name
    while keep and not fits(keep + tag + suffix):
        keep = keep[:-1]
    return keep + tag + suffix


_MYSQL_USE = re.compile(br'^[ \t]*(/\*!\d*[ \t]*)?USE[ \t`]', re.MULTILINE | re.IGNORECASE)
_CLIENT_ERROR = re.compile(r'^(ERROR \d+|mysql(dump)?: )')


def _tail(text, lines=4):
    """What a client tool said about its failure: its ERROR lines (never the statement it echoes,
    which may hold data), else its last lines."""
    found = [line.strip() for line in (text or '').strip().splitlines() if line.strip()]
    errors = [line for line in found if _CLIENT_ERROR.match(line)]
    return ' / '.join((errors or found)[-lines:])


class _MariaDB(object):
    """The mysql and mysqldump clients with one login; every failure raises _Failure."""

    def __init__(self, module, options):
        self.module = module
        self.options = options
        self.mysql = module.get_bin_path('mysql', required=True)
        self.mysqldump = module.get_bin_path('mysqldump', required=True)

    def execute(self, sql, what, database=None, force=False):
        """Run ``sql`` (text, or the bytes of a dump) in one session; its output.

        With ``force``, the statements after one that fails are run all the same.
        """
        args = [self.mysql] + self.options + ['--batch', '--skip-column-names']
        if force:
            args.append('--force')
        if database is not None:
            args.append('--database=%s' % database)
        binary = isinstance(sql, bytes)
        rc, out, err = self.module.run_command(args, data=sql, binary_data=binary)
        if rc != 0:
            raise _Failure('%s failed (rc=%d): %s' % (what, rc, _tail(err or out)))
        return out

    def ddl(self, statements, what, database=None, force=False):
        """Run DDL statements in one session that waits at most LOCK_WAIT_SECONDS for a lock."""
        if statements:
            self.execute('\n'.join(['SET SESSION lock_wait_timeout = %d;' % LOCK_WAIT_SECONDS]
                                   + ['%s;' % s for s in statements]), what, database, force)

    def inventory(self, names):
        """{database: None when it does not exist, else {kind: sorted names}} for ``names``.

        Kinds: tables (base tables, sequences: what RENAME TABLE moves), views, triggers,
        routines ((type, name) pairs) and events.
        """
        where = ', '.join(_name_literal(name) for name in names)
        queries = [
            "SELECT 'schema', '', HEX(SCHEMA_NAME), '' FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME IN (%s)",
            "SELECT 'table', TABLE_TYPE, HEX(TABLE_SCHEMA), HEX(TABLE_NAME) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA IN (%s)",
            "SELECT 'trigger', '', HEX(TRIGGER_SCHEMA), HEX(TRIGGER_NAME) FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA IN (%s)",
            "SELECT 'routine', ROUTINE_TYPE, HEX(ROUTINE_SCHEMA), HEX(ROUTINE_NAME) FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA IN (%s)",
            "SELECT 'event', '', HEX(EVENT_SCHEMA), HEX(EVENT_NAME) FROM information_schema.EVENTS "
            "WHERE EVENT_SCHEMA IN (%s)",
        ]
        out = self.execute('\nUNION ALL '.join(query % where for query in queries) + ';',
                           'reading the tables of %s' % ', '.join(names))
        found = {}
        for line in out.splitlines():
            fields = line.split('\t')
            if len(fields) != 4:
                raise _Failure('unexpected answer about the tables of %s: %r' % (', '.join(names), line[:200]))
            kind, kind_type, schema, name = fields
            schema, name = _unhex(schema), _unhex(name)
            if schema not in names:
                continue
            content = found.setdefault(schema, dict(tables=[], views=[], triggers=[], routines=[], events=[]))
            if kind == 'table':
                content['views' if kind_type == 'VIEW' else 'tables'].append(name)
            elif kind == 'routine':
                content['routines'].append((kind_type, name))
            elif kind in ('trigger', 'event'):
                content[kind + 's'].append(name)
        for content in found.values():
            for names_of_kind in content.values():
                names_of_kind.sort()
        return dict((name, found.get(name)) for name in names)

    def object_sql(self, database, views, force=False):
        """({kind: SQL}, {kind: problem}) that creates the routines and events, triggers and views of ``database``.

        mysqldump writes them as the backup's dump does (definers, sql_mode, character sets,
        views on views through placeholders), without schema names, without data and without any
        CREATE or DROP of a table. A failure raises _Failure; with ``force``, what could be saved
        is returned with the reason why not everything could (a broken view, a missing right).
        """
        base = [self.mysqldump] + self.options + ['--skip-comments', '--skip-lock-tables', '--no-data',
                                                  '--skip-add-drop-table', '--skip-tz-utc']
        if force:
            base.append('--force')
        commands = dict(
            routines=base + ['--no-create-info', '--skip-triggers', '--routines', '--events', '--', database],
            triggers=base + ['--no-create-info', '--triggers', '--skip-routines', '--skip-events', '--', database],
            views=base + ['--skip-triggers', '--skip-routines', '--skip-events', '--', database] + list(views),
        )
        result, problems = {}, {}
        for kind in OBJECT_KINDS:
            result[kind] = ''
            if kind == 'views' and not views:
                continue
            rc, out, err = self.module.run_command(commands[kind])
            error = _first_error(err)
            if rc != 0 or error:
                problem = 'saving the %s of %s as SQL failed (rc=%d): %s' % (
                    'routines and events' if kind == 'routines' else kind, database, rc, error or _tail(err))
                if not force:
                    raise _Failure(problem)
                problems[kind] = problem
            result[kind] = out
        return result, problems

    def drop_objects(self, database, content, kinds, what):
        """Drop the objects of ``kinds`` that ``content`` (an inventory entry) lists in ``database``."""
        statements = []
        if 'views' in kinds and content['views']:
            statements.append('DROP VIEW IF EXISTS %s' % ', '.join(
                '%s.%s' % (quote_name(database), quote_name(view)) for view in content['views']))
        if 'triggers' in kinds:
            statements.extend('DROP TRIGGER IF EXISTS %s.%s' % (quote_name(database), quote_name(trigger))
                              for trigger in content['triggers'])
        if 'routines' in kinds:
            # a package body before its package
            for kind_type, name in sorted(content['routines'], key=lambda r: (r[0] != 'PACKAGE BODY', r)):
                statements.append('DROP %s IF EXISTS %s.%s' % (kind_type, quote_name(database), quote_name(name)))
            statements.extend('DROP EVENT IF EXISTS %s.%s' % (quote_name(database), quote_name(event))
                              for event in content['events'])
        self.ddl(statements, what)

    def create_objects(self, database, sql, kinds, what, force=False):
        """Run the SQL of ``kinds`` in ``database``; with ``force`` every part, failing afterwards."""
        problems = []
        for kind in OBJECT_KINDS:
            if kind in kinds and sql.get(kind, '').strip():
                try:
                    self.execute(sql[kind], '%s (%s)' % (what, 'routines and events' if kind == 'routines' else kind),
                                 database, force)
                except _Failure as exc:
                    if not force:
                        raise
                    problems.append(str(exc))
        if problems:
            raise _Failure('; '.join(problems))


def _unhex(text):
    return binascii.unhexlify(text.strip()).decode('utf-8', 'surrogateescape')


def _rename(moves):
    """One RENAME TABLE statement for [(from_db, to_db, table)]: atomic in MariaDB."""
    return 'RENAME TABLE ' + ', '.join('%s.%s TO %s.%s' % (quote_name(source), quote_name(table),
                                                           quote_name(destination), quote_name(table))
                                       for source, destination, table in moves)


def restore(module, db, dump_path, work_dir, expected_tables=None):
    """Restore ``db`` from its dump in the set; fail the module naming the database on error.

    ``expected_tables``: the ``{table: {rows, sha256}}`` digests recorded at backup time; when
    given, the restored tables must match them.

    PostgreSQL: ``pg_restore --clean --if-exists`` into the same database, in one transaction;
    then the digests are compared (a difference fails, the old contents are gone by then).
    MariaDB: the dump is imported into a scratch database and compared there; only a good copy
    is swapped in (see above). Every failure message names the database and says whether its
    old contents are still in place.
    """
    with credentials(db, work_dir, module) as (env, options):
        if db['engine'] == 'postgresql':
            _restore_postgresql(module, db, dump_path, work_dir, env, options, expected_tables)
        else:
            _restore_mysql(module, db, dump_path, work_dir, options, expected_tables)


def _restore_postgresql(module, db, dump_path, work_dir, env, options, expected_tables):
    label = _label(db)
    pg_restore = module.get_bin_path('pg_restore', required=True)
    rc, out, err = module.run_command(
        [pg_restore, '--clean', '--if-exists', '--single-transaction', '--no-password', '--exit-on-error']
        + options + ['--dbname', db['name'], dump_path], environ_update=env)
    if rc != 0:
        module.fail_json(msg='%s was not restored, %s (pg_restore runs in one transaction): pg_restore failed '
                             '(rc=%d): %s' % (label, KEPT, rc, err.strip()))
    if expected_tables is None:
        return
    try:
        problems = digest_differences(expected_tables, _live_digests(module, db, work_dir))
    except _Failure as exc:
        module.fail_json(msg='%s was restored, its old contents were replaced, but it could not be compared with '
                             'the backup set: %s' % (label, exc))
    if problems:
        module.fail_json(msg='%s was restored but does not match the backup set, its old contents were replaced: %s'
                             % (label, '; '.join(problems)))


class _Restore(object):
    """The MariaDB restore of one database: import aside, check, swap, clean up."""

    def __init__(self, module, db, work_dir, options):
        self.module = module
        self.db = db
        self.work_dir = work_dir
        self.label = _label(db)
        self.target = db['name']
        self.scratch = work_database_name('mysql', self.target, SCRATCH_SUFFIX)
        self.holding = work_database_name('mysql', self.target, HOLDING_SUFFIX)
        self.server = _MariaDB(module, options)
        self.old = self.new = None          # inventories of target and scratch before the swap
        self.old_sql = self.new_sql = None  # their views, triggers, routines and events as SQL
        self.old_sql_problems = {}          # {kind: why old_sql does not hold all of them}

    def names(self):
        return [self.target, self.scratch, self.holding]

    def fail(self, state, problem):
        self.module.fail_json(msg='%s was not restored, %s: %s' % (self.label, state, problem))

    def warn(self, message):
        warn = getattr(self.module, 'warn', None)
        if warn is not None:
            warn('%s: %s' % (self.label, message))

    def drop_work_databases(self):
        """Drop the scratch and holding databases; a failure is only worth a warning (the next
        restore drops them first)."""
        try:
            self.server.ddl(['DROP DATABASE IF EXISTS %s' % quote_name(name) for name in (self.scratch, self.holding)],
                            'dropping the work databases %s and %s' % (self.scratch, self.holding), force=True)
        except _Failure as exc:
            self.warn('%s; drop them by hand or let the next restore do it' % exc)

    def run(self, dump_path, expected_tables):
        try:
            self.prepare(dump_path, expected_tables)
        except (_Failure, IOError, OSError) as exc:
            self.drop_work_databases()
            self.fail(KEPT, exc)
        self.swap()
        try:
            self.replace_objects(self.target, self.new, self.new_sql, 'creating the views, triggers, routines '
                                 'and events of the dump in %s' % self.target)
        except _Failure as exc:
            self.swap_back('after the swap, %s' % exc)
        self.drop_work_databases()

    def prepare(self, dump_path, expected_tables):
        """Everything before the swap; nothing here touches the target database."""
        server = self.server
        server.ddl(['DROP DATABASE IF EXISTS %s' % quote_name(self.scratch),
                    'DROP DATABASE IF EXISTS %s' % quote_name(self.holding),
                    'CREATE DATABASE %s' % quote_name(self.scratch)],
                   'preparing the work databases %s and %s' % (self.scratch, self.holding))
        with open(dump_path, 'rb') as handle:
            content = handle.read()
        # mysqldump --databases writes USE statements: such a dump would not stay in scratch.
        match = _MYSQL_USE.search(content)
        if match:
            line = content[match.start():].split(b'\n', 1)[0]
            raise _Failure('the dump changes the database (%s), a restore cannot keep it to the scratch database'
                           % line.strip().decode('utf-8', 'replace')[:80])
        server.execute(content, 'the import into the scratch database %s' % self.scratch, self.scratch)
        if expected_tables is not None:
            try:
                live = _live_digests(self.module, dict(self.db, name=self.scratch), self.work_dir)
            except _Failure as exc:
                raise _Failure('the scratch database %s: %s' % (self.scratch, exc))
            problems = digest_differences(expected_tables, live)
            if problems:
                raise _Failure('the dump, imported into the scratch database %s, does not match the backup set: %s'
                               % (self.scratch, '; '.join(problems)))
        found = server.inventory(self.names())
        self.old, self.new = found[self.target], found[self.scratch]
        if self.new is None:
            raise _Failure('the scratch database %s disappeared during the restore' % self.scratch)
        if self.old is None:
            server.ddl(['CREATE DATABASE %s' % quote_name(self.target)], 'creating %s' % self.target)
            self.old = dict(tables=[], views=[], triggers=[], routines=[], events=[])
            self.old_sql = dict((kind, '') for kind in OBJECT_KINDS)
        else:
            # Only a swap back needs them: what cannot be saved (a view broken in the damaged
            # database) is no reason to refuse the restore.
            self.old_sql, self.old_sql_problems = server.object_sql(self.target, self.old['views'], force=True)
            if self.old_sql_problems:
                self.warn('%s; a swap back would not bring all of them back'
                          % '; '.join(self.old_sql_problems[kind] for kind in sorted(self.old_sql_problems)))
        self.new_sql = server.object_sql(self.scratch, self.new['views'])[0]
        # A table with triggers cannot move to another database: the scratch copies lose theirs
        # (new_sql holds them), the target's lose theirs in the session of the swap itself.
        server.drop_objects(self.scratch, self.new, ('triggers',), 'dropping the triggers of %s' % self.scratch)
        server.ddl(['CREATE DATABASE %s' % quote_name(self.holding)], 'creating the holding database %s' % self.holding)

    def swap(self):
        """Old tables to the holding database, new ones in, in one RENAME TABLE."""
        moves = [(self.target, self.holding, table) for table in self.old['tables']] + \
                [(self.scratch, self.target, table) for table in self.new['tables']]
        statements = ['DROP TRIGGER IF EXISTS %s.%s' % (quote_name(self.target), quote_name(trigger))
                      for trigger in self.old['triggers']]
        if moves:
            statements.append(_rename(moves))
        try:
            self.server.ddl(statements, 'the swap of %s' % self.target)
            return
        except _Failure as exc:
            failure = exc
        # Where are the tables now? The RENAME happened entirely or not at all.
        try:
            found = self.server.inventory(self.names())
        except _Failure as exc:
            self.fail('and whether its old contents are still in place is NOT known',
                      '%s; then %s. Look for its tables in %s and %s' % (failure, exc, self.scratch, self.holding))
        holding = found[self.holding] and found[self.holding]['tables']
        scratch = found[self.scratch] and found[self.scratch]['tables']
        if not holding and scratch == self.new['tables']:
            self.restore_old_triggers(failure)
        elif holding == self.old['tables'] and not scratch:
            return      # the swap was done (the session failed after it): go on
        self.fail('and its old contents are NOT in place', '%s; its tables are now: %s' % (failure, ', '.join(
            '%s: %s' % (name, ', '.join(found[name]['tables']) if found[name] else 'no database')
            for name in self.names())))

    def restore_old_triggers(self, failure):
        """After a swap that did not happen: the target's triggers again, scratch dropped."""
        try:
            found = self.server.inventory([self.target])[self.target]
            self.server.drop_objects(self.target, found, ('triggers',), 'dropping triggers of %s' % self.target)
            self.server.create_objects(self.target, self.old_sql, ('triggers',),
                                       'creating the triggers of %s again' % self.target, force=True)
            if 'triggers' in self.old_sql_problems:
                raise _Failure(self.old_sql_problems['triggers'])
        except _Failure as exc:
            self.drop_work_databases()
            self.fail('its old tables are still in place but NOT all of its triggers',
                      '%s; then %s' % (failure, exc))
        self.drop_work_databases()
        self.fail(KEPT, failure)

    def replace_objects(self, database, content, sql, what):
        """The views, triggers, routines and events of ``database``: all dropped, those of ``sql`` created."""
        found = self.server.inventory([database])[database]
        self.server.drop_objects(database, found, OBJECT_KINDS, 'dropping the views, triggers, routines and '
                                                                'events of %s' % database)
        self.server.create_objects(database, sql, OBJECT_KINDS, what)

    def swap_back(self, failure):
        """The new tables back to scratch, the old ones into place, with their views and triggers."""
        server = self.server
        try:
            found = server.inventory([self.target])[self.target]
            server.drop_objects(self.target, found, OBJECT_KINDS, 'dropping the new views, triggers, routines '
                                                                  'and events of %s' % self.target)
            moves = [(self.target, self.scratch, table) for table in found['tables']] + \
                    [(self.holding, self.target, table) for table in self.old['tables']]
            if moves:
                server.ddl([_rename(moves)], 'swapping back')
        except _Failure as exc:
            self.fail('and its old contents are NOT in place: its old tables are in the database %s, the restored '
                      'ones in %s' % (self.holding, self.target), '%s; swapping back failed: %s' % (failure, exc))
        try:
            server.create_objects(self.target, self.old_sql, OBJECT_KINDS,
                                  'creating the old views, triggers, routines and events of %s again' % self.target,
                                  force=True)
            if self.old_sql_problems:
                raise _Failure('; '.join(self.old_sql_problems[kind] for kind in sorted(self.old_sql_problems)))
        except _Failure as exc:
            self.drop_work_databases()
            self.fail('its old tables are back in place but NOT all of its views, triggers, routines and events',
                      '%s; swapped back, then %s' % (failure, exc))
        self.drop_work_databases()
        self.fail(KEPT + ' (swapped back)', failure)


def _restore_mysql(module, db, dump_path, work_dir, options, expected_tables):
    _Restore(module, db, work_dir, options).run(dump_path, expected_tables)


def ping(module, db, work_dir):
    """None when ``db`` answers a query with these credentials, else why not."""
    label = _label(db)
    try:
        with credentials(db, work_dir) as (env, options):
            if db['engine'] == 'postgresql':
                psql = module.get_bin_path('psql')
                if not psql:
                    return '%s: psql not found (install postgresql-client)' % label
                command = [psql, '--no-psqlrc', '--no-password', '--tuples-only', '--command', 'SELECT 1'] \
                    + options + ['--dbname', db['name']]
            else:
                mysql = module.get_bin_path('mysql')
                if not mysql:
                    return '%s: mysql client not found (install mariadb-client)' % label
                command = [mysql] + options + ['--batch', '--execute', 'SELECT 1', '--database=%s' % db['name']]
            rc, out, err = module.run_command(command, environ_update=env)
    except CredentialsError as exc:
        return str(exc)
    if rc != 0:
        lines = (err or out).strip().splitlines()
        return '%s does not answer: %s' % (label, lines[-1] if lines else 'rc=%d' % rc)
    return None


# --- content digests -----------------------------------------------------------------------------
# A table's digest is its row count and the sha256 of its rows' text as the engine's own dump tool
# writes them, sorted. The digests of a backup are computed from its dump file, so they describe
# exactly what a restore puts back; after a restore the live database is dumped the same way and
# must give the same digests.

_PG_COPY = re.compile(r'^COPY (\S+) \((.*)\) FROM stdin;$')
_MYSQL_INSERT = re.compile(r'^INSERT INTO `((?:[^`]|``)+)` VALUES ?(.*)$')
_MYSQL_CREATE = re.compile(r'^CREATE TABLE `((?:[^`]|``)+)` \($')


def pg_copy_rows(text):
    """{table: [row text]} from plain-format PostgreSQL data (COPY ... FROM stdin blocks)."""
    tables, current = {}, None
    for line in text.splitlines():
        if current is None:
            match = _PG_COPY.match(line)
            if match:
                current = match.group(1)
                tables[current] = []
        elif line == '\\.':
            current = None
        else:
            tables[current].append(line)
    return tables


def mysql_values(values):
    """The row tuples of one INSERT's VALUES list, as text, quotes and escapes respected."""
    rows, depth, start, quote, escaped = [], 0, None, None, False
    for index, char in enumerate(values):
        if quote:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == '(':
            depth += 1
            if depth == 1:
                start = index + 1
        elif char == ')':
            depth -= 1
            if depth == 0:
                rows.append(values[start:index])
    return rows


def mysql_insert_rows(text):
    """{table: [row text]} from a mysqldump (extended INSERTs split into rows).

    MariaDB 10.11 and later write an INSERT's rows on lines of their own; newlines inside values
    are escaped, so a statement ends at the first line that ends with ';'.
    """
    tables, table, values = {}, None, []
    for line in text.splitlines():
        if table is not None:
            values.append(line)
        else:
            match = _MYSQL_CREATE.match(line)
            if match:
                tables.setdefault(match.group(1), [])
                continue
            match = _MYSQL_INSERT.match(line)
            if not match:
                continue
            table, values = match.group(1), [match.group(2)]
        if values[-1].endswith(';'):
            tables.setdefault(table, []).extend(mysql_values('\n'.join(values)[:-1]))
            table, values = None, []
    return tables


def digests(rows_by_table):
    """{table: {rows, sha256}} of row texts, independent of row order."""
    result = {}
    for table, rows in sorted(rows_by_table.items()):
        digest = hashlib.sha256()
        for row in sorted(rows):
            digest.update(row.encode('utf-8', 'surrogateescape'))
            digest.update(b'\n')
        result[table] = dict(rows=len(rows), sha256=digest.hexdigest())
    return result


def dump_digests(module, engine, path):
    """Digests of every table in a backup's dump file."""
    if engine == 'postgresql':
        pg_restore = module.get_bin_path('pg_restore', required=True)
        rc, out, err = module.run_command([pg_restore, '--data-only', '--file=-', path])
        if rc != 0:
            module.fail_json(msg='pg_restore could not read %s (rc=%d): %s' % (path, rc, err.strip()))
        return digests(pg_copy_rows(out))
    with open(path, 'rb') as handle:
        return digests(mysql_insert_rows(handle.read().decode('utf-8', 'surrogateescape')))


def live_digests(module, db, work_dir, missing_ok=False):
    """Digests of every table of the live database, dumped the way its backup was.

    With ``missing_ok``, None when a MariaDB server has no such database (a host recovered onto
    a new server: the restore creates it), instead of a failure. A PostgreSQL restore needs the
    database and its owner to exist, so there a missing one stays a failure that says so.
    """
    try:
        return _live_digests(module, db, work_dir)
    except _Failure as exc:
        # mysqldump: 'Got error: 1049: "Unknown database ..." when selecting the database'
        if missing_ok and db['engine'] == 'mysql' and 'unknown database' in str(exc).lower():
            return None
        module.fail_json(msg='%s: %s' % (_label(db), exc))


def _live_digests(module, db, work_dir):
    """live_digests that raises _Failure instead of failing the module."""
    with credentials(db, work_dir, module) as (env, options):
        if db['engine'] == 'postgresql':
            command = [module.get_bin_path('pg_dump', required=True), '--data-only', '--format=plain',
                       '--no-password'] + options + [db['name']]
        else:
            command = [module.get_bin_path('mysqldump', required=True)] + options + [
                '--single-transaction', '--no-create-db', '--skip-triggers', '--', db['name']]
        rc, out, err = module.run_command(command, environ_update=env)
    if rc != 0:
        raise _Failure('reading it back failed (rc=%d): %s' % (rc, err.strip()))
    if db['engine'] == 'postgresql':
        return digests(pg_copy_rows(out))
    return digests(mysql_insert_rows(out))


def digest_differences(expected, actual):
    """Sentences naming each table whose rows differ between two digest maps."""
    found = []
    for table in sorted(set(expected) | set(actual)):
        want, have = expected.get(table), actual.get(table)
        if want is None:
            found.append('table %s is not in the backup' % table)
        elif have is None:
            found.append('table %s is missing' % table)
        elif want != have:
            found.append('table %s has %d rows (checksum %s), the backup %d rows (checksum %s)'
                         % (table, have['rows'], have['sha256'][:12], want['rows'], want['sha256'][:12]))
    return found


def restore_test(module, db, dump_path, work_dir):
    """Restore the dump into a throwaway database and compare it with the dump; [] when equal.

    Needs the right to create databases (PostgreSQL CREATEDB, MariaDB CREATE). The throwaway
    database is dropped afterwards, whatever happens.
    """
    scratch = dict(db, name=work_database_name(db['engine'], db['name'], RESTORE_TEST_SUFFIX))
    quoted = '"%s"' % scratch['name'].replace('"', '""') if db['engine'] == 'postgresql' \
        else quote_name(scratch['name'])
    with credentials(db, work_dir, module) as (env, options):
        if db['engine'] == 'postgresql':
            psql = [module.get_bin_path('psql', required=True), '--no-psqlrc', '--no-password', '-v', 'ON_ERROR_STOP=1']
            admin = psql + options + ['--dbname', db['name'], '--command']
            create, drop = admin + ['CREATE DATABASE %s' % quoted], admin + ['DROP DATABASE IF EXISTS %s' % quoted]
            load = [module.get_bin_path('pg_restore', required=True), '--no-owner', '--no-password',
                    '--exit-on-error'] + options + ['--dbname', scratch['name'], dump_path]
        else:
            mysql = [module.get_bin_path('mysql', required=True)] + options + ['--batch']
            create = mysql + ['--execute', 'CREATE DATABASE %s' % quoted]
            drop = mysql + ['--execute', 'DROP DATABASE IF EXISTS %s' % quoted]
            load = mysql + ['--database=%s' % scratch['name']]
        module.run_command(drop, environ_update=env)
        rc, out, err = module.run_command(create, environ_update=env)
        if rc != 0:
            return ['restore test: cannot create the throwaway database %s: %s' % (scratch['name'], err.strip())]
        try:
            if db['engine'] == 'postgresql':
                rc, out, err = module.run_command(load, environ_update=env)
            else:
                with open(dump_path, 'rb') as handle:
                    rc, out, err = module.run_command(load, environ_update=env, data=handle.read(), binary_data=True)
            if rc != 0:
                return ['restore test: the dump does not restore (rc=%d): %s' % (rc, err.strip())]
            problems = digest_differences(dump_digests(module, db['engine'], dump_path),
                                          live_digests(module, scratch, work_dir))
            return ['restore test: %s' % problem for problem in problems]
        finally:
            module.run_command(drop, environ_update=env)
