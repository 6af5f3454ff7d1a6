# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistent copies of live SQLite databases with SQLite's online backup API.

MicroPVR writes records.db and tasks.db while it runs. A file copy (cp, tar) of a database
being written can be torn; the backup API is not. All databases are attached to one
connection and read inside one read transaction while they are copied, so the copies form
one snapshot across databases: a row written to two databases in one transaction is in both
copies or in neither.

Both journal modes are handled:

* rollback journal (DELETE, TRUNCATE, PERSIST): the read transaction's shared locks keep
  writers from committing until the copy is done (they wait on their busy timeout);
* WAL: readers never block writers, and SQLite does not commit a transaction across several
  WAL databases atomically (each file commits on its own). So a second connection takes the
  write lock of every database (BEGIN IMMEDIATE) while the copying connection opens its read
  snapshots, and lets go at once: no commit can fall between two of the snapshots, and the
  daemon writes on while the copy runs.

A copy is always left in rollback-journal mode, one self-contained file: a WAL-mode copy would
grow -wal/-shm files beside it the first time anything opened it. The source's mode is
recorded (``journal_mode``) and a restore puts it back (set_journal_mode).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    from urllib import quote

# SQLITE_MAX_ATTACHED is 10 by default: the main database plus 9 attached ones per snapshot.
MAX_DATABASES_PER_SNAPSHOT = 10
# Files SQLite keeps beside a database; they belong to the live database.
SIDE_FILES = ('-journal', '-wal', '-shm')
# How long one attempt waits for a database's read lock before letting go of all of them.
_LOCK_ATTEMPT_MS = 200
# Rows hashed per batch: the digest is the same as row by row, with less Python per row.
_DIGEST_BATCH = 2000
# integrity_check results by (path, inode, size, mtime): a file checked once in this process
# and not changed since is not checked again (the backup checks its copies while it digests them).
_INTEGRITY_RESULTS = {}


def belongs_to_database(path, databases):
    """Whether ``path`` is one of ``databases`` or a journal/WAL/shm file beside one."""
    return any(path == db + suffix for db in databases for suffix in ('',) + SIDE_FILES)


def _ro_uri(path):
    return 'file:%s?mode=ro' % quote(os.path.abspath(path))


def _rw_uri(path):
    # mode=rw never creates a database that is not there.
    return 'file:%s?mode=rw' % quote(os.path.abspath(path))


def header_journal_mode(path):
    """'wal' when the file header says WAL (read/write versions 2), else 'delete'; None if unreadable.

    Read from the header, without opening the database, so that nothing is created beside it.
    """
    try:
        with open(path, 'rb') as handle:
            header = handle.read(20)
    except (IOError, OSError):
        return None
    if len(header) < 20 or not header.startswith(b'SQLite format 3\x00'):
        return None
    return 'wal' if header[18:20] == b'\x02\x02' else 'delete'


def _read_uri(path):
    """URI to read ``path`` without leaving files behind.

    A read-only connection to a WAL database whose -wal/-shm files are absent (its daemon is
    stopped) creates them and cannot remove them again: root-owned files that a daemon running
    as another user could not write. Opened read-write, the last connection to close removes
    them, as SQLite always does.
    """
    if header_journal_mode(path) == 'wal' and not os.path.exists(path + '-shm'):
        return _rw_uri(path)
    return _ro_uri(path)


def set_journal_mode(path, mode):
    """Switch the database at ``path`` (not in use by anyone) to journal ``mode`` ('wal'/'delete')."""
    conn = sqlite3.connect(_rw_uri(path), uri=True, isolation_level=None)
    try:
        got = conn.execute('PRAGMA journal_mode = %s' % ('WAL' if mode == 'wal' else 'DELETE')).fetchone()[0]
    finally:
        conn.close()
    if got.lower() != ('wal' if mode == 'wal' else 'delete'):
        raise sqlite3.OperationalError('%s: journal mode stayed %s, wanted %s' % (path, got, mode))


def snapshot(pairs, busy_timeout=30.0):
    """Copy each (source, destination) pair in one read transaction; return one info dict each.

    Raises sqlite3.Error (or ValueError for too many databases) on failure.
    """
    if not pairs:
        return []
    if len(pairs) > MAX_DATABASES_PER_SNAPSHOT:
        raise ValueError('at most %d SQLite databases can be copied as one snapshot, got %d'
                         % (MAX_DATABASES_PER_SNAPSHOT, len(pairs)))
    for source, dummy in pairs:
        if not os.path.isfile(source):
            raise ValueError('SQLite database %s does not exist' % source)
    conn = sqlite3.connect(_read_uri(pairs[0][0]), uri=True, timeout=busy_timeout, isolation_level=None)
    modes = []
    try:
        schemas = ['main']
        for index, (source, dummy) in enumerate(pairs[1:], start=1):
            name = 'db%d' % index
            conn.execute('ATTACH DATABASE ? AS %s' % name, (_read_uri(source),))
            schemas.append(name)
        _lock_all(conn, schemas, [source for source, dummy in pairs], busy_timeout)
        for schema, (dummy, destination) in zip(schemas, pairs):
            modes.append(conn.execute('PRAGMA %s.journal_mode' % schema).fetchone()[0].lower())
            target = sqlite3.connect(destination, isolation_level=None)
            try:
                conn.backup(target, name=schema)
                # The copy inherits the source's WAL mode from the header: make it one file.
                if target.execute('PRAGMA journal_mode').fetchone()[0].lower() == 'wal':
                    target.execute('PRAGMA journal_mode = DELETE')
            finally:
                target.close()
        conn.execute('COMMIT')
    finally:
        conn.close()
    # integrity_check runs in SQLite's C code without the GIL: check the copies while they are
    # digested, and leave the results for the set's verification.
    with ThreadPoolExecutor(max_workers=1) as pool:
        checks = [pool.submit(integrity_check, destination) for dummy, destination in pairs]
        infos = [describe(destination, source) for source, destination in pairs]
        for check in checks:
            check.result()
    for info, mode in zip(infos, modes):
        info['journal_mode'] = 'wal' if mode == 'wal' else 'delete'
    return infos


def _lock_all(conn, schemas, sources, busy_timeout):
    """Open a read transaction on ``conn`` that sees every schema at one moment.

    A second connection holds the write lock of every database (BEGIN IMMEDIATE takes them
    all) while ``conn`` reads from each schema, which starts its snapshot (WAL) or takes its
    shared lock (rollback journal); then it lets go. No transaction can commit in between, in
    either mode. A writer that locks the same databases in another order would deadlock with
    a locker that waits while holding some of the locks, so an attempt that cannot get every
    lock quickly lets go of all of them and tries again.
    """
    deadline = time.time() + busy_timeout
    locker = sqlite3.connect(_rw_uri(sources[0]), uri=True, isolation_level=None)
    try:
        for index, source in enumerate(sources[1:], start=1):
            locker.execute('ATTACH DATABASE ? AS db%d' % index, (_rw_uri(source),))
        locker.execute('PRAGMA busy_timeout = %d' % _LOCK_ATTEMPT_MS)
        conn.execute('PRAGMA busy_timeout = %d' % _LOCK_ATTEMPT_MS)
        while True:
            try:
                locker.execute('BEGIN IMMEDIATE')
                try:
                    conn.execute('BEGIN')
                    for schema in schemas:
                        conn.execute('SELECT count(*) FROM %s.sqlite_master' % schema).fetchone()
                finally:
                    locker.execute('ROLLBACK')
                break
            except sqlite3.OperationalError as exc:
                for connection in (conn, locker):
                    if connection.in_transaction:
                        connection.execute('ROLLBACK')
                if 'locked' not in str(exc) or time.time() >= deadline:
                    raise
                time.sleep(0.05)
    finally:
        locker.close()
    conn.execute('PRAGMA busy_timeout = %d' % int(busy_timeout * 1000))


def _file_key(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def integrity_check(path):
    """None when ``PRAGMA integrity_check`` says ok, else its complaint."""
    key = _file_key(path)
    if key is not None and key in _INTEGRITY_RESULTS:
        return _INTEGRITY_RESULTS[key]
    try:
        conn = sqlite3.connect(_ro_uri(path), uri=True)
        try:
            rows = conn.execute('PRAGMA integrity_check').fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return 'not a usable SQLite database: %s' % exc
    result = '; '.join(str(row[0]) for row in rows)
    problem = None if result == 'ok' else 'integrity_check: %s' % result
    if key is not None and key == _file_key(path):
        _INTEGRITY_RESULTS[key] = problem
    return problem


def table_digests(conn):
    """{table: {rows, sha256}} for every user table, rows in primary-key/rowid order."""
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    digests = {}
    for table in tables:
        quoted = '"%s"' % table.replace('"', '""')
        try:
            cursor = conn.execute('SELECT * FROM %s ORDER BY rowid' % quoted)
        except sqlite3.OperationalError:  # WITHOUT ROWID table: order by every column
            columns = len(conn.execute('SELECT * FROM %s LIMIT 0' % quoted).description)
            cursor = conn.execute('SELECT * FROM %s ORDER BY %s' % (
                quoted, ', '.join(str(i) for i in range(1, columns + 1))))
        digest, count = hashlib.sha256(), 0
        while True:
            rows = cursor.fetchmany(_DIGEST_BATCH)
            if not rows:
                break
            digest.update(''.join('%r\n' % (tuple(row),) for row in rows).encode('utf-8'))
            count += len(rows)
        digests[table] = dict(rows=count, sha256=digest.hexdigest())
    return digests


def describe(path, source=None):
    """user_version and per-table digests of the database at ``path``."""
    conn = sqlite3.connect(_read_uri(path), uri=True)
    try:
        info = dict(user_version=conn.execute('PRAGMA user_version').fetchone()[0],
                    tables=table_digests(conn))
    finally:
        conn.close()
    if source is not None:
        info['source'] = source
    return info
