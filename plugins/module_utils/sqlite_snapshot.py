# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistent copies of live SQLite databases, taken inside SQLite's locks.

MicroPVR writes records.db and tasks.db while it runs. A file copy (cp, tar) of a database
being written can be torn; a copy taken inside a read transaction is not. All databases are
attached to one connection and read inside one read transaction while they are copied, so the
copies form one snapshot across databases: a row written to two databases in one transaction is
in both copies or in neither. A rollback-journal database is copied page for page while the
transaction's shared lock holds its writers off (in the kernel, three times as fast as the
backup API; the freelist's leaf pages left out as holes); a WAL database with SQLite's online
backup API.

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
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import copy_fd, fsync_path

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    from urllib import quote

# SQLITE_MAX_ATTACHED is 10 by default: the main database plus 9 attached ones per snapshot.
MAX_DATABASES_PER_SNAPSHOT = 10
# Files SQLite keeps beside a database; they belong to the live database.
SIDE_FILES = ('-journal', '-wal', '-shm')
# A transaction that writes to several attached databases commits through a super-journal
# named after the main database: "<db>-mj" + 9 hex digits, the 7th always 9 (SQLite's
# vdbeCommit: "-mj%06X9%02X"). It lives for the length of one commit.
_SUPER_JOURNAL = re.compile(r'-mj[0-9A-F]{6}9[0-9A-F]{2}\Z')
# How long one attempt waits for a database's read lock before letting go of all of them.
_LOCK_ATTEMPT_MS = 200
# Rows hashed per batch (format 1): the digest is the same as row by row, with less Python per row.
_DIGEST_BATCH = 2000
# integrity_check results by (path, inode, size, mtime, level): a file checked once in this process
# and not changed since is not checked again (the backup checks its copies while it digests them).
_INTEGRITY_RESULTS = {}
# Check levels: 'quick' (PRAGMA quick_check: every page, cell and record format, the freelist,
# NOT NULL/CHECK constraints; not whether the indexes match their tables) and 'full' (PRAGMA
# integrity_check: that too).
CHECK_LEVELS = ('quick', 'full')
_CHECK_PRAGMAS = dict(quick='quick_check', full='integrity_check')
# Digest formats (see table_digests): 1 = Python repr of every row (sets taken before format 2
# existed record no digest_format), 2 = JSON text of each row built by SQLite, hashed per rowid range.
DIGEST_FORMATS = (1, 2)
DIGEST_FORMAT = 2
# Format 2 hashes the rows of each range of 2**16 rowids on its own (range = rowid >> 16), so
# that ranges are digested by several threads at once; the table's digest is the sha256 of the
# list of (range, rows, sha256). Part of the format: changing it changes every digest.
_RANGE_BITS = 16
# SQLite works without the GIL: this many connections check a database at once (one per core;
# more than 4 only adds memory on the hosts MicroPVR runs on).
WORKERS = max(1, min(4, os.cpu_count() or 1))
# ... but digests run in that many worker PROCESSES: building a JSON line per row is
# malloc-bound, and SQLite's allocator takes one process-wide mutex (memory statistics are on in
# Debian's build), so threads only queue on it. Measured on a 1 GiB records.db, 2 cores: 1 thread
# 23.2 s wall (23.2 s CPU), 2 threads 24.6 s wall (45.7 s CPU), 2 processes 14.7 s wall.
DIGEST_WORKERS = WORKERS
# Fewer ranges than this are digested in this process (starting a worker costs ~50 ms).
_MIN_RANGES_PER_WORKER = 4
# A digest worker: stdin {uri, sql, ranges: [[number, low, high], ...]}, stdout [[number, rows,
# sha256], ...]. Standard library only, so that it runs with the module's interpreter as it is.
_RANGE_WORKER = r'''
import hashlib, json, sqlite3, sys
job = json.load(sys.stdin)
conn = sqlite3.connect(job["uri"], uri=True)
conn.text_factory = bytes
done = []
for number, low, high in job["ranges"]:
    count, lines = conn.execute(job["sql"], (low, high)).fetchone()
    digest = hashlib.sha256()
    if count:
        digest.update(lines)
        digest.update(b"\n")
    done.append([number, count, digest.hexdigest()])
json.dump(done, sys.stdout)
'''


def belongs_to_database(path, databases):
    """Whether ``path`` is one of ``databases`` or a journal/WAL/shm/super-journal file beside one."""
    for db in databases:
        if path == db or any(path == db + suffix for suffix in SIDE_FILES):
            return True
        if path.startswith(db) and _SUPER_JOURNAL.match(path, len(db)):
            return True
    return False


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


def snapshot(pairs, busy_timeout=30.0, check='quick', digests=False, file_digest=None, on_locked=None, on_copied=None):
    """Copy each (source, destination) pair in one read transaction; return one info dict each.

    The copies are checked at level ``check`` (CHECK_LEVELS); the set's verification finds the
    results cached (integrity_check). Each info dict has the copy's ``user_version`` and, with
    ``digests``, its per-table digests (describe) and ``digest_format``. A backup takes none: only
    a restore that must compare a live database with the set needs them, and it takes them from
    the copy then (reading every row costs more than the copy itself). ``file_digest``: a function
    ``(path) -> value`` (the set's sha256 of a file) run on each copy in a second thread while the
    copies are checked, both in C without the GIL, so that two cores share the work; each info
    dict then has its result as ``file_digest``. ``on_locked`` and ``on_copied``: called without
    arguments once the read transaction holds every database, and once the copies are written,
    before they are checked (a caller's timing of the three parts). The
    copies' data is on disk (fsync) when it returns; their directory entries are not. Raises
    sqlite3.Error or OSError (or ValueError for too many databases or an unknown level) on failure.
    """
    if check not in CHECK_LEVELS:
        raise ValueError('check must be one of %s, not %r' % (', '.join(CHECK_LEVELS), check))
    if not pairs:
        return []
    if len(pairs) > MAX_DATABASES_PER_SNAPSHOT:
        raise ValueError('at most %d SQLite databases can be copied as one snapshot, got %d'
                         % (MAX_DATABASES_PER_SNAPSHOT, len(pairs)))
    identities = []
    for source, dummy in pairs:
        if not os.path.isfile(source):
            raise ValueError('SQLite database %s does not exist' % source)
        identities.append(_identity(os.stat(source)))
    conn = sqlite3.connect(_read_uri(pairs[0][0]), uri=True, timeout=busy_timeout, isolation_level=None)
    modes = []
    held = []
    try:
        schemas = ['main']
        for index, (source, dummy) in enumerate(pairs[1:], start=1):
            name = 'db%d' % index
            conn.execute('ATTACH DATABASE ? AS %s' % name, (_read_uri(source),))
            schemas.append(name)
        _lock_all(conn, schemas, [source for source, dummy in pairs], busy_timeout)
        if on_locked:
            on_locked()
        for schema, identity, (source, destination) in zip(schemas, identities, pairs):
            modes.append(conn.execute('PRAGMA %s.journal_mode' % schema).fetchone()[0].lower())
            if modes[-1] != 'wal' and _copy_locked_file(conn, schema, source, identity, destination, held):
                continue
            target = sqlite3.connect(destination, isolation_level=None)
            try:
                # No fsync of its own when the copy commits: the copies are synced below while
                # they are checked, so that the disk writes them back while the CPUs check.
                target.execute('PRAGMA synchronous = OFF')
                conn.backup(target, name=schema)
                # The copy inherits the source's WAL mode from the header: make it one file.
                if target.execute('PRAGMA journal_mode').fetchone()[0].lower() == 'wal':
                    target.execute('PRAGMA journal_mode = DELETE')
            finally:
                target.close()
        conn.execute('COMMIT')
    finally:
        conn.close()
        for fd in held:
            os.close(fd)
    if on_copied:
        on_copied()
    destinations = [destination for dummy, destination in pairs]
    # Two workers: one syncs the copies (waiting for the disk, not a CPU), the other digests
    # them; this thread checks them. All three read or wait without the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        synced = pool.submit(_fsync_files, destinations)
        if digests:
            # integrity_check runs in SQLite's C code without the GIL: check the copies while
            # they are digested, and leave the results for the set's verification.
            checks = [pool.submit(integrity_check, destination, check) for destination in destinations]
            infos = [describe(destination, source) for source, destination in pairs]
            for check_done in checks:
                check_done.result()
            if file_digest:
                for info, destination in zip(infos, destinations):
                    info['file_digest'] = file_digest(destination)
        else:
            infos = [dict(user_version=user_version(destination), source=source) for source, destination in pairs]
            digests_done = [pool.submit(file_digest, destination) if file_digest else None
                            for destination in destinations]
            for destination in destinations:
                integrity_check(destination, check)
            for info, digest_done in zip(infos, digests_done):
                if digest_done is not None:
                    info['file_digest'] = digest_done.result()
        synced.result()
    for info, mode in zip(infos, modes):
        info['journal_mode'] = 'wal' if mode == 'wal' else 'delete'
    return infos


def _identity(st):
    return (st.st_dev, st.st_ino)


def _copy_locked_file(conn, schema, source, identity, destination, held):
    """Copy the rollback-journal database ``schema`` of ``conn`` page for page, but for its free
    leaf pages (free_leaf_pages: holes in the copy); False (nothing copied) when that would not
    be what ``conn`` reads.

    ``conn``'s read transaction holds the database's shared lock: no writer can change the file
    until it ends (a writer needs the exclusive lock to write the file, and rolls a hot journal
    back before anyone reads). So the file's first page_count pages are the snapshot, as the
    backup API would copy them page by page through SQLite's pager, which costs about three times
    as long (0.52 s against 0.16 s for 587 MiB in the page cache). Not in WAL mode: there the
    committed pages are partly in the -wal file and a checkpoint may write the file meanwhile.
    ``identity`` is the source's (device, inode) before ``conn`` opened it: a file renamed over
    the path since is not the one locked. The source's descriptor is appended to ``held``, for the
    caller to close once the transaction has ended: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's shared lock included.
    """
    page_size = conn.execute('PRAGMA %s.page_size' % schema).fetchone()[0]
    page_count = conn.execute('PRAGMA %s.page_count' % schema).fetchone()[0]
    length = page_size * page_count
    source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    held.append(source_fd)
    st = os.fstat(source_fd)
    if _identity(st) != identity or st.st_size < length:
        return False
    destination_fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        for first, last in _used_page_runs(page_count, free_leaf_pages(source_fd, page_size, page_count)):
            copy_fd(source_fd, destination_fd, (last - first + 1) * page_size, (first - 1) * page_size)
        # Free pages at the end are a hole up to the database's size.
        os.ftruncate(destination_fd, length)
    finally:
        os.close(destination_fd)
    return True


def free_leaf_pages(fd, page_size, page_count):
    """The numbers of the database's freelist leaf pages, read from the file at ``fd``; empty when
    the freelist does not look sound (then every page is copied, and the copy's check reports it).

    A leaf page of the freelist holds nothing SQLite ever reads again: its content is what was
    deleted. The copy leaves those pages out (holes, read as zeros): after a migration that
    rebuilt a table, or deletions of old recordings, they are a large part of the file (40 % of
    records.db after the stand-in's 1.10.0 migration), and skipping them spares the memory,
    the writes and the reads of the check and the hash. Trunk pages (the list itself) are copied.
    """
    def read_u32s(offset, count):
        data = os.pread(fd, 4 * count, offset)
        if len(data) != 4 * count:
            raise ValueError('short read')
        return struct.unpack('>%dI' % count, data)

    try:
        trunk, total = read_u32s(32, 2)
        leaves = set()
        trunks = 0
        # Every trunk page is also a free page: the chain cannot be longer than the total.
        while trunk and trunks <= total:
            if not 2 <= trunk <= page_count:
                return frozenset()
            trunks += 1
            next_trunk, count = read_u32s((trunk - 1) * page_size, 2)
            if count > page_size // 4 - 2:
                return frozenset()
            for leaf in read_u32s((trunk - 1) * page_size + 8, count) if count else ():
                if not 2 <= leaf <= page_count or leaf in leaves:
                    return frozenset()
                leaves.add(leaf)
            trunk = next_trunk
        if trunk or trunks + len(leaves) != total:
            return frozenset()
    except (OSError, ValueError, struct.error):
        return frozenset()
    return frozenset(leaves)


def _used_page_runs(page_count, free):
    """(first, last) page numbers of each run of pages not in ``free``, in order."""
    first = 1
    for page in sorted(free):
        if page > first:
            yield first, page - 1
        first = page + 1
    if first <= page_count:
        yield first, page_count


def _fsync_files(paths):
    """Make each file at ``paths`` durable (its data; its directory entry is the caller's)."""
    for path in paths:
        fsync_path(path)


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


def _check_rows(path, sql):
    conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
    try:
        return [str(row[0]) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def _complaints(path, sql):
    """The rows of a check; a check that stops at a page too damaged to read (SQLITE_CORRUPT: the
    table scans of quick_check and integrity_check end there) reports that as its complaint."""
    try:
        return _check_rows(path, sql)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, 'sqlite_errorname', None) != 'SQLITE_CORRUPT':
            raise
        return [str(exc)]


def _full_check(path):
    """Complaints of a full integrity check of ``path``, split so that several cores work on it.

    ``PRAGMA integrity_check(<table>)`` (SQLite >= 3.33) checks one table and its indexes, index
    against table, but leaves out what only the whole file shows (the freelist, pages used twice
    or never): ``PRAGMA quick_check`` of the whole file covers that, and every b-tree again. The
    union of their complaints is what a whole-file integrity_check finds. An SQLite that refuses
    the per-table form gets the whole-file check. The biggest table bounds the time: on the
    1 GiB records.db (one table holds almost everything) 31.5 s against 33.8 s for the whole file.
    """
    tables = _check_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    jobs = ['PRAGMA quick_check'] + ['PRAGMA integrity_check(%s)' % _quote_identifier(t) for t in tables]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(_complaints, path, sql) for sql in jobs]
        try:
            results = [future.result() for future in futures]
        except sqlite3.OperationalError:
            results = [_complaints(path, 'PRAGMA integrity_check')]
    complaints = []
    for rows in results:
        complaints.extend(row for row in rows if row != 'ok' and row not in complaints)
    return complaints or ['ok']


def integrity_check(path, level='full'):
    """None when SQLite's check of ``level`` ('full': integrity_check, 'quick': quick_check) says
    ok, else its complaints, prefixed with the pragma's name."""
    if level not in CHECK_LEVELS:
        raise ValueError('level must be one of %s, not %r' % (', '.join(CHECK_LEVELS), level))
    key = _file_key(path)
    cache_key = None if key is None else key + (level,)
    if cache_key is not None and cache_key in _INTEGRITY_RESULTS:
        return _INTEGRITY_RESULTS[cache_key]
    try:
        rows = _full_check(path) if level == 'full' else _complaints(path, 'PRAGMA quick_check')
    except sqlite3.Error as exc:
        return 'not a usable SQLite database: %s' % exc
    result = '; '.join(rows)
    problem = None if result == 'ok' else '%s: %s' % (_CHECK_PRAGMAS[level], result)
    if cache_key is not None and key == _file_key(path):
        _INTEGRITY_RESULTS[cache_key] = problem
    return problem


def _quote_identifier(name):
    return '"%s"' % name.replace('"', '""')


def _user_tables(conn):
    return [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _digest_v1(conn, quoted):
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
    return dict(rows=count, sha256=digest.hexdigest())


def _row_json(columns):
    """SQL for one row as a JSON array, built in SQLite's C code.

    JSON keeps integer, text and NULL apart (1, "1", null); it has no BLOB and prints a REAL
    with 15 digits, so those two become [type, quote(value)]: ["blob", "X'31'"], ["real", "1.0"]
    (quote() gives a REAL exactly). A nested json_array() is embedded as JSON, not as text, so
    no text value can look like one of them.
    """
    parts = []
    for name in columns:
        column = _quote_identifier(name)
        parts.append("CASE WHEN typeof(%s) IN ('real', 'blob') THEN json_array(typeof(%s), quote(%s)) ELSE %s END"
                     % (column, column, column, column))
    return 'json_array(%s)' % ', '.join(parts)


def _rowid_name(conn, quoted, columns):
    """A name that means the rowid in this table (a column may be called rowid), or None when
    the table has no rowid (WITHOUT ROWID) or every alias is taken by a column."""
    taken = set(name.lower() for name in columns)
    for name in ('rowid', '_rowid_', 'oid'):
        if name not in taken:
            try:
                conn.execute('SELECT %s FROM %s LIMIT 0' % (name, quoted))
            except sqlite3.OperationalError:
                return None
            return name
    return None


def _range_digests(uri, sql, ranges):
    """[(number, rows, sha256 of their lines)] of each (number, low, high) range of rowids."""
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        conn.text_factory = bytes
        done = []
        for number, low, high in ranges:
            count, lines = conn.execute(sql, (low, high)).fetchone()
            digest = hashlib.sha256()
            if count:
                digest.update(lines)
                digest.update(b'\n')
            done.append((number, count, digest.hexdigest()))
    finally:
        conn.close()
    return done


def _range_digests_in_processes(uri, sql, ranges, workers):
    """_range_digests over ``workers`` processes, each given a contiguous share of the ranges.

    A worker that fails (a damaged page, no memory) is redone in this process, so that the
    error is raised here as the sqlite3 exception it is.
    """
    share = -(-len(ranges) // workers)
    chunks = [ranges[i:i + share] for i in range(0, len(ranges), share)]
    procs = []
    for chunk in chunks:
        proc = subprocess.Popen([sys.executable or 'python3', '-I', '-c', _RANGE_WORKER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc.stdin.write(json.dumps(dict(uri=uri, sql=sql, ranges=chunk)).encode('utf-8'))
        proc.stdin.close()
        procs.append(proc)
    done = []
    for chunk, proc in zip(chunks, procs):
        output = proc.stdout.read()
        proc.stdout.close()
        if proc.wait() != 0:
            done.extend(_range_digests(uri, sql, chunk))
            continue
        done.extend(tuple(item) for item in json.loads(output.decode('utf-8')))
    return done


def _digest_v2(conn, quoted, uri):
    columns = [d[0] for d in conn.execute('SELECT * FROM %s LIMIT 0' % quoted).description]
    row = _row_json(columns)
    rowid = _rowid_name(conn, quoted, columns)
    if rowid is None:
        # No rowid to cut ranges by: one stream, every column as the order (as format 1).
        cursor = conn.execute('SELECT %s FROM %s ORDER BY %s' % (
            row, quoted, ', '.join(_quote_identifier(name) for name in columns)))
        digest, count = hashlib.sha256(), 0
        while True:
            rows = cursor.fetchmany(_DIGEST_BATCH)
            if not rows:
                break
            digest.update(b''.join(line[0] + b'\n' for line in rows))
            count += len(rows)
        return dict(rows=count, sha256=digest.hexdigest())
    # group_concat() of an ordered subquery takes the rows in that order.
    sql = ('SELECT count(*), group_concat(line, char(10)) FROM (SELECT %s AS line FROM %s '
           'WHERE %s BETWEEN ? AND ? ORDER BY %s)' % (row, quoted, rowid, rowid))
    width = 1 << _RANGE_BITS
    ranges = []
    # The non-empty ranges, one seek each: a scan with GROUP BY would sort every rowid.
    found = conn.execute('SELECT min(%s) FROM %s' % (rowid, quoted)).fetchone()
    while found is not None and found[0] is not None:
        number = found[0] >> _RANGE_BITS
        high = number * width + width - 1
        ranges.append((number, number * width, high))
        found = conn.execute('SELECT %s FROM %s WHERE %s > ? ORDER BY %s LIMIT 1'
                             % (rowid, quoted, rowid, rowid), (high,)).fetchone() if high < 2 ** 63 - 1 else None
    workers = min(DIGEST_WORKERS, len(ranges) // _MIN_RANGES_PER_WORKER)
    if workers > 1:
        done = _range_digests_in_processes(uri, sql, ranges, workers)
    else:
        done = _range_digests(uri, sql, ranges)
    digest, count = hashlib.sha256(), 0
    for number, rows, sha256 in done:
        digest.update(('%d %d %s\n' % (number, rows, sha256)).encode('ascii'))
        count += rows
    return dict(rows=count, sha256=digest.hexdigest())


def table_digests(conn, digest_format=DIGEST_FORMAT, uri=None):
    """{table: {rows, sha256}} for every user table, rows in rowid (or every-column) order.

    Format 1: sha256 of ``'%r\n' % tuple(row)`` of every row, in Python. Format 2: each row is a
    JSON array built by SQLite (_row_json), one line each; the lines of each range of 2**16
    rowids are hashed on their own (in threads, each with a connection to ``uri``, the database
    of ``conn`` read-only when not given) and the table's sha256 is that of the lines
    ``'<range> <rows> <sha256>\n'`` of its non-empty ranges in order. A table without a rowid
    hashes its lines in one stream, ordered by every column.
    """
    if digest_format not in DIGEST_FORMATS:
        raise ValueError('digest_format must be one of %s, not %r'
                         % (', '.join(str(f) for f in DIGEST_FORMATS), digest_format))
    tables = _user_tables(conn)
    if digest_format == 1:
        return dict((table, _digest_v1(conn, _quote_identifier(table))) for table in tables)
    if uri is None:
        uri = _ro_uri(conn.execute('PRAGMA database_list').fetchone()[2])
    saved = conn.text_factory
    conn.text_factory = bytes
    try:
        return dict((table, _digest_v2(conn, _quote_identifier(table), uri)) for table in tables)
    finally:
        conn.text_factory = saved


def user_version(path):
    """``PRAGMA user_version`` of the database at ``path`` (the schema version MicroPVR keeps there)."""
    conn = sqlite3.connect(_read_uri(path), uri=True)
    try:
        return conn.execute('PRAGMA user_version').fetchone()[0]
    finally:
        conn.close()


def describe(path, source=None, digest_format=DIGEST_FORMAT):
    """user_version, per-table digests (table_digests) and digest_format of the database at ``path``."""
    uri = _read_uri(path)
    conn = sqlite3.connect(uri, uri=True)
    try:
        info = dict(user_version=conn.execute('PRAGMA user_version').fetchone()[0],
                    tables=table_digests(conn, digest_format, uri=uri), digest_format=digest_format)
    finally:
        conn.close()
    if source is not None:
        info['source'] = source
    return info
