# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dumps of the external PostgreSQL / MariaDB databases that belong to MicroPVR.

Dump tools fail quietly in well-known ways: an empty dump with exit code 0, errors only on
stderr, a failure hidden behind a pipe to a compressor. Every dump here is checked for its
exit code, for errors on stderr, for emptiness, and for a readable result (``pg_restore
--list``; mysqldump's completion trailer). Passwords reach the tools only through a 0600
file in the set's private work directory (PGPASSFILE, --defaults-extra-file), never argv.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


def _private_file(work_dir, prefix, content):
    """A new 0600 file in ``work_dir`` holding ``content``; unique, so credentials can nest."""
    fd, path = tempfile.mkstemp(dir=work_dir, prefix=prefix)
    with os.fdopen(fd, 'w') as handle:
        handle.write(content)
    return path


def _pgpass_escape(value):
    return str(value).replace('\\', '\\\\').replace(':', '\\:')


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
        line = ':'.join(_pgpass_escape(v) for v in ('*', '*', '*', '*', secret))
        env['PGPASSFILE'] = _private_file(work_dir, '.pgpass-', line + '\n')
    return env


def _mysql_defaults(db, work_dir):
    lines = ['[client]']
    for key, option in (('login_user', 'user'), ('host', 'host'), ('port', 'port'), ('socket', 'socket')):
        if db.get(key):
            lines.append('%s=%s' % (option, db[key]))
    secret = password(db)
    if secret is not None:
        lines.append('password="%s"' % secret.replace('\\', '\\\\').replace('"', '\\"'))
    return _private_file(work_dir, '.my-cnf-', '\n'.join(lines) + '\n')


@contextlib.contextmanager
def credentials(db, work_dir):
    """Yield (environment, client options) that carry ``db``'s login to its client tools.

    PostgreSQL gets PGPASSFILE in the environment, MariaDB a --defaults-extra-file option;
    either file is 0600 in ``work_dir`` and is removed when the block ends.
    """
    if db['engine'] == 'postgresql':
        env = _pg_env(db, work_dir)
        files, options = list(env.values()), _pg_connection_args(db)
    else:
        defaults = _mysql_defaults(db, work_dir)
        env, files, options = {}, [defaults], ['--defaults-extra-file=%s' % defaults]
    try:
        yield env, options
    finally:
        for path in files:
            if os.path.exists(path):
                os.unlink(path)


def dump(module, db, destination, work_dir):
    """Dump ``db`` to ``destination``; return a manifest entry's extra fields, or fail the module."""
    label = _label(db)
    with credentials(db, work_dir) as (env, options):
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
                                     '--result-file=%s' % destination, db['name']])
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


def restore(module, db, dump_path, work_dir):
    """Restore ``db`` from its dump in the set; fail the module naming the database on error.

    PostgreSQL: ``pg_restore --clean --if-exists`` into the same database, in one transaction.
    MariaDB: the database is dropped and created again, then the dump is imported.
    """
    label = _label(db)
    with credentials(db, work_dir) as (env, options):
        if db['engine'] == 'postgresql':
            pg_restore = module.get_bin_path('pg_restore', required=True)
            rc, out, err = module.run_command(
                [pg_restore, '--clean', '--if-exists', '--single-transaction', '--no-password', '--exit-on-error']
                + options + ['--dbname', db['name'], dump_path], environ_update=env)
            if rc != 0:
                module.fail_json(msg='%s: pg_restore failed (rc=%d): %s' % (label, rc, err.strip()))
            return
        mysql = module.get_bin_path('mysql', required=True)
        quoted = '`%s`' % db['name'].replace('`', '``')
        rc, out, err = module.run_command([mysql] + options + ['--batch'],
                                          data='DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;' % (quoted, quoted))
        if rc != 0:
            module.fail_json(msg='%s: recreating the database failed (rc=%d): %s' % (label, rc, err.strip()))
        with open(dump_path, 'rb') as handle:
            rc, out, err = module.run_command([mysql] + options + ['--batch', db['name']],
                                              data=handle.read(), binary_data=True)
        if rc != 0:
            module.fail_json(msg='%s: import failed (rc=%d): %s' % (label, rc, err.strip()))


def ping(module, db, work_dir):
    """None when ``db`` answers a query with these credentials, else why not."""
    label = _label(db)
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
            command = [mysql] + options + ['--batch', '--execute', 'SELECT 1', db['name']]
        rc, out, err = module.run_command(command, environ_update=env)
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


def live_digests(module, db, work_dir):
    """Digests of every table of the live database, dumped the way its backup was."""
    with credentials(db, work_dir) as (env, options):
        if db['engine'] == 'postgresql':
            command = [module.get_bin_path('pg_dump', required=True), '--data-only', '--format=plain',
                       '--no-password'] + options + [db['name']]
        else:
            command = [module.get_bin_path('mysqldump', required=True)] + options + [
                '--single-transaction', '--no-create-db', '--skip-triggers', db['name']]
        rc, out, err = module.run_command(command, environ_update=env)
    if rc != 0:
        module.fail_json(msg='%s: reading it back failed (rc=%d): %s' % (_label(db), rc, err.strip()))
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
    scratch = dict(db, name='%s_micropvr_restore_test' % db['name'])
    quoted = '"%s"' % scratch['name'].replace('"', '""') if db['engine'] == 'postgresql' \
        else '`%s`' % scratch['name'].replace('`', '``')
    with credentials(db, work_dir) as (env, options):
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
            load = mysql + [scratch['name']]
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
