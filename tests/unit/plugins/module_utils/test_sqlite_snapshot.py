"""Unit tests for plugins/module_utils/sqlite_snapshot.py, on real SQLite databases."""

import hashlib
import os
import sqlite3
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import sqlite_snapshot
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import (
    MAX_DATABASES_PER_SNAPSHOT,
    describe,
    integrity_check,
    snapshot,
)


def make_db(path, rows=0, user_version=0, table='items'):
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE %s (id INTEGER PRIMARY KEY, name TEXT, size REAL, data BLOB)' % table)
    conn.executemany('INSERT INTO %s (id, name, size, data) VALUES (?, ?, ?, ?)' % table,
                     [(i, 'row %d' % i, i * 1.5, bytes([i % 256]) * 10) for i in range(1, rows + 1)])
    conn.execute('PRAGMA user_version = %d' % user_version)
    conn.commit()
    conn.close()
    return str(path)


def ids(path, table):
    conn = sqlite3.connect(str(path))
    try:
        return set(row[0] for row in conn.execute('SELECT id FROM %s' % table))
    finally:
        conn.close()


def scalar(path, sql):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


# --- describe ----------------------------------------------------------------------------------

def test_describe_user_version_rows_and_source(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=25, user_version=7)
    info = describe(path)
    assert info['user_version'] == 7
    assert list(info['tables']) == ['items']
    assert info['tables']['items']['rows'] == 25
    assert len(info['tables']['items']['sha256']) == 64
    assert 'source' not in info
    assert describe(path, '/etc/micropvr/records.db')['source'] == '/etc/micropvr/records.db'


def test_describe_lists_every_user_table_but_not_sqlite_internal_ones(tmp_path):
    path = make_db(tmp_path / 'tasks.db', rows=3)
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "odd ""name""" (k TEXT PRIMARY KEY, v TEXT)')
    conn.execute('CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)')  # creates sqlite_sequence
    conn.execute("INSERT INTO auto (v) VALUES ('a')")
    conn.execute('CREATE INDEX items_name ON items (name)')
    conn.execute('ANALYZE')  # creates sqlite_stat1
    conn.commit()
    conn.close()
    tables = describe(path)['tables']
    assert sorted(tables) == ['auto', 'items', 'odd "name"']
    assert tables['auto']['rows'] == 1
    assert tables['odd "name"']['rows'] == 0


def test_describe_empty_table_digest(tmp_path):
    path = make_db(tmp_path / 'empty.db')
    assert describe(path)['tables'] == {
        'items': dict(rows=0, sha256='e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')}


def test_describe_digest_is_stable_when_nothing_changes(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=100)
    before = describe(path)
    assert describe(path) == before
    conn = sqlite3.connect(path)
    conn.execute('UPDATE items SET name = name')  # a write that changes no value
    conn.commit()
    conn.execute('VACUUM')  # rewrites every page, same content
    conn.close()
    assert describe(path) == before


def test_describe_digest_does_not_depend_on_insertion_order(tmp_path):
    one = make_db(tmp_path / 'one.db', rows=20)
    two = make_db(tmp_path / 'two.db')
    conn = sqlite3.connect(two)
    conn.executemany('INSERT INTO items (id, name, size, data) VALUES (?, ?, ?, ?)',
                     [(i, 'row %d' % i, i * 1.5, bytes([i % 256]) * 10) for i in range(20, 0, -1)])
    conn.commit()
    conn.close()
    assert describe(one) == describe(two)


@pytest.mark.parametrize('sql', [
    "UPDATE items SET name = 'row 50 edited' WHERE id = 50",
    'UPDATE items SET size = 75.0000001 WHERE id = 50',
    "UPDATE items SET data = x'00' WHERE id = 50",
    'UPDATE items SET name = NULL WHERE id = 50',
    'UPDATE items SET id = 1000 WHERE id = 50',
])
def test_describe_digest_changes_when_one_value_changes(tmp_path, sql):
    path = make_db(tmp_path / 'records.db', rows=100)
    before = describe(path)
    conn = sqlite3.connect(path)
    assert conn.execute(sql).rowcount == 1
    conn.commit()
    conn.close()
    after = describe(path)
    assert after['tables']['items']['rows'] == 100
    assert after['tables']['items']['sha256'] != before['tables']['items']['sha256']


def test_describe_digest_changes_when_a_row_is_deleted_or_added(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=10)
    before = describe(path)['tables']['items']
    conn = sqlite3.connect(path)
    conn.execute('DELETE FROM items WHERE id = 10')
    conn.commit()
    deleted = describe(path)['tables']['items']
    conn.execute("INSERT INTO items (id, name) VALUES (11, 'new')")
    conn.commit()
    conn.close()
    added = describe(path)['tables']['items']
    assert deleted['rows'] == 9 and added['rows'] == 10
    assert len({before['sha256'], deleted['sha256'], added['sha256']}) == 3


def test_describe_user_version_change_does_not_touch_table_digests(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=5, user_version=1)
    before = describe(path)
    conn = sqlite3.connect(path)
    conn.execute('PRAGMA user_version = 2')
    conn.close()
    after = describe(path)
    assert after['user_version'] == 2
    assert after['tables'] == before['tables']


def test_describe_without_rowid_table(tmp_path):
    path = str(tmp_path / 'wr.db')
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID')
    conn.executemany('INSERT INTO kv VALUES (?, ?)', [('b', '2'), ('a', '1'), ('c', '3')])
    conn.commit()
    conn.close()
    first = describe(path)['tables']['kv']
    assert first['rows'] == 3
    conn = sqlite3.connect(path)
    conn.execute("UPDATE kv SET v = '22' WHERE k = 'b'")
    conn.commit()
    conn.close()
    second = describe(path)['tables']['kv']
    assert second['rows'] == 3
    assert second['sha256'] != first['sha256']


def test_describe_does_not_write_to_the_database(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=5)
    os.chmod(path, 0o444)
    before = (os.stat(path).st_mtime_ns, os.path.getsize(path))
    describe(path)
    assert (os.stat(path).st_mtime_ns, os.path.getsize(path)) == before
    assert sorted(os.listdir(str(tmp_path))) == ['records.db']


# --- integrity_check ---------------------------------------------------------------------------

def test_integrity_check_good_database(tmp_path):
    assert integrity_check(make_db(tmp_path / 'records.db', rows=200)) is None


def test_integrity_check_not_a_database(tmp_path):
    path = tmp_path / 'records.db'
    path.write_bytes(b'this is a text file and not a database\n' * 200)
    assert integrity_check(str(path)) == 'not a usable SQLite database: file is not a database'


def test_integrity_check_missing_file(tmp_path):
    problem = integrity_check(str(tmp_path / 'nope.db'))
    assert problem == 'not a usable SQLite database: unable to open database file'
    assert not os.path.exists(str(tmp_path / 'nope.db'))  # read-only: never creates it


def corrupt_page(path, page_number, page_size):
    with open(path, 'r+b') as handle:
        handle.seek((page_number - 1) * page_size)
        handle.write(b'\xa5' * page_size)


def test_integrity_check_corrupted_table_page(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=2000)
    page_size = scalar(path, 'PRAGMA page_size')
    pages = scalar(path, 'PRAGMA page_count')
    assert pages > 10
    corrupt_page(path, pages // 2, page_size)
    problem = integrity_check(path)
    assert problem is not None
    assert problem.startswith('integrity_check: ') or problem.startswith('not a usable SQLite database: ')
    assert problem != 'integrity_check: ok'


def test_integrity_check_corrupted_index_is_reported_by_pragma(tmp_path):
    """An index that disagrees with its table: the database opens, integrity_check complains."""
    path = make_db(tmp_path / 'records.db', rows=50)
    corrupt_index_behind_the_table(path)
    problem = integrity_check(path)
    assert problem is not None
    assert problem.startswith('integrity_check: ')
    assert 'items_name' in problem


def test_integrity_check_truncated_database(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=2000)
    size = os.path.getsize(path)
    with open(path, 'r+b') as handle:
        handle.truncate(size // 2)
    problem = integrity_check(path)
    assert problem is not None and problem != 'integrity_check: ok'


# --- snapshot ----------------------------------------------------------------------------------

def test_snapshot_of_nothing():
    assert snapshot([]) == []


def test_snapshot_copies_each_database_and_describes_the_copies(tmp_path):
    records = make_db(tmp_path / 'records.db', rows=300, user_version=3)
    tasks = make_db(tmp_path / 'tasks.db', rows=40, user_version=5, table='tasks')
    out = tmp_path / 'out'
    out.mkdir()
    pairs = [(records, str(out / 'records.db')), (tasks, str(out / 'tasks.db'))]
    infos = snapshot(pairs, digests=True)
    assert infos == [dict(describe(records, records), journal_mode='delete'),
                     dict(describe(tasks, tasks), journal_mode='delete')]
    assert infos[0]['user_version'] == 3 and infos[1]['user_version'] == 5
    assert infos[0]['tables']['items']['rows'] == 300
    assert infos[1]['tables']['tasks']['rows'] == 40
    assert infos[0]['source'] == records
    for source, destination in pairs:
        assert integrity_check(destination) is None
        assert describe(destination) == describe(source)


def _sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.parametrize('digests', [False, True])
def test_snapshot_hashes_each_finished_copy_with_file_digest(tmp_path, digests):
    records = make_db(tmp_path / 'records.db', rows=3000, user_version=3)
    tasks = make_db(tmp_path / 'tasks.db', rows=40, table='tasks')
    out = tmp_path / 'out'
    out.mkdir()
    pairs = [(records, str(out / 'records.db')), (tasks, str(out / 'tasks.db'))]
    hashed = []

    def digest(path):
        hashed.append(path)
        return _sha256(path)

    infos = snapshot(pairs, digests=digests, file_digest=digest)
    assert sorted(hashed) == sorted(destination for dummy, destination in pairs)
    # The digest is of the finished copy: the bytes on disk after the snapshot returned.
    assert [info['file_digest'] for info in infos] == [_sha256(destination) for dummy, destination in pairs]
    assert 'file_digest' not in snapshot([(records, str(out / 'again.db'))])[0]


@pytest.mark.parametrize('digests', [False, True])
def test_snapshot_syncs_every_finished_copy_once_while_it_is_checked(tmp_path, monkeypatch, digests):
    """SQLite does not sync a copy when it commits (synchronous=OFF); snapshot syncs each one
    itself before it returns, after the copy is whole, alongside its check."""
    records = make_db(tmp_path / 'records.db', rows=3000)
    tasks = make_db(tmp_path / 'tasks.db', rows=40, table='tasks')
    out = tmp_path / 'out'
    out.mkdir()
    pairs = [(records, str(out / 'records.db')), (tasks, str(out / 'tasks.db'))]
    synced, real_fsync = [], os.fsync

    def fsync(fd):
        synced.append((os.readlink('/proc/self/fd/%d' % fd), os.fstat(fd).st_size))
        real_fsync(fd)
    monkeypatch.setattr(sqlite_snapshot.os, 'fsync', fsync)
    snapshot(pairs, digests=digests)
    # each copy once, when it was already whole (its final size)
    assert sorted(synced) == sorted((destination, os.path.getsize(destination)) for dummy, destination in pairs)
    for source, destination in pairs:
        assert describe(destination)['tables'] == describe(source)['tables']


def test_snapshot_leaves_sources_untouched(tmp_path):
    (tmp_path / 'src').mkdir()
    records = make_db(tmp_path / 'src' / 'records.db', rows=10)
    before = (os.stat(records).st_mtime_ns, os.path.getsize(records), sorted(os.listdir(str(tmp_path / 'src'))))
    snapshot([(records, str(tmp_path / 'copy.db'))])
    assert (os.stat(records).st_mtime_ns, os.path.getsize(records),
            sorted(os.listdir(str(tmp_path / 'src')))) == before


def test_snapshot_of_a_read_only_source(tmp_path):
    records = make_db(tmp_path / 'records.db', rows=10)
    os.chmod(records, 0o444)
    infos = snapshot([(records, str(tmp_path / 'copy.db'))])
    assert describe(str(tmp_path / 'copy.db'))['tables']['items']['rows'] == 10
    assert infos[0]['user_version'] == 0


@pytest.mark.parametrize('name', ['with space.db', 'hash#tag.db', 'question?.db', 'per%cent.db', 'amp&er=sand.db'])
def test_snapshot_source_names_with_uri_special_characters(tmp_path, name):
    source = make_db(tmp_path / name, rows=12)
    other = make_db(tmp_path / 'plain.db', rows=3)
    infos = snapshot([(other, str(tmp_path / 'c1.db')), (source, str(tmp_path / 'c2.db'))])
    assert infos[1]['source'] == source
    assert describe(str(tmp_path / 'c2.db')) == describe(source)


def test_snapshot_copies_of_wal_databases(tmp_path):
    records = make_db(tmp_path / 'records.db', rows=20)
    conn = sqlite3.connect(records)
    assert conn.execute('PRAGMA journal_mode = WAL').fetchone()[0] == 'wal'
    conn.execute("INSERT INTO items (id, name) VALUES (100, 'only in the wal')")
    conn.commit()
    try:
        info, = snapshot([(records, str(tmp_path / 'copy.db'))])
    finally:
        conn.close()
    assert describe(str(tmp_path / 'copy.db'))['tables']['items']['rows'] == 21
    assert info['journal_mode'] == 'wal'
    assert 100 in ids(tmp_path / 'copy.db', 'items')
    assert integrity_check(str(tmp_path / 'copy.db')) is None


def test_snapshot_missing_source(tmp_path):
    records = make_db(tmp_path / 'records.db', rows=1)
    missing = str(tmp_path / 'tasks.db')
    with pytest.raises(ValueError) as excinfo:
        snapshot([(records, str(tmp_path / 'c1.db')), (missing, str(tmp_path / 'c2.db'))])
    assert str(excinfo.value) == 'SQLite database %s does not exist' % missing
    assert not os.path.exists(str(tmp_path / 'c1.db'))  # checked before anything is copied
    assert not os.path.exists(missing)


def test_snapshot_source_that_is_a_directory(tmp_path):
    (tmp_path / 'dir.db').mkdir()
    with pytest.raises(ValueError) as excinfo:
        snapshot([(str(tmp_path / 'dir.db'), str(tmp_path / 'copy.db'))])
    assert str(excinfo.value) == 'SQLite database %s does not exist' % (tmp_path / 'dir.db')


def test_snapshot_of_a_non_database_raises_sqlite_error(tmp_path):
    bad = tmp_path / 'bad.db'
    bad.write_bytes(b'not a database' * 100)
    with pytest.raises(sqlite3.Error):
        snapshot([(str(bad), str(tmp_path / 'copy.db'))])


def test_snapshot_at_most_max_databases(tmp_path):
    assert MAX_DATABASES_PER_SNAPSHOT == 10
    pairs = [(make_db(tmp_path / ('db%d.db' % i), rows=i), str(tmp_path / ('copy%d.db' % i)))
             for i in range(MAX_DATABASES_PER_SNAPSHOT + 1)]
    with pytest.raises(ValueError) as excinfo:
        snapshot(pairs)
    assert str(excinfo.value) == 'at most 10 SQLite databases can be copied as one snapshot, got 11'
    assert not any(os.path.exists(destination) for dummy, destination in pairs)


def test_snapshot_of_exactly_max_databases(tmp_path):
    pairs = [(make_db(tmp_path / ('db%d.db' % i), rows=i), str(tmp_path / ('copy%d.db' % i)))
             for i in range(MAX_DATABASES_PER_SNAPSHOT)]
    infos = snapshot(pairs, digests=True)
    assert [info['tables']['items']['rows'] for info in infos] == list(range(MAX_DATABASES_PER_SNAPSHOT))
    assert [info['source'] for info in infos] == [source for source, dummy in pairs]


# --- snapshot while MicroPVR writes ------------------------------------------------------------

def make_pair_dbs(tmp_path):
    a = str(tmp_path / 'records.db')
    b = str(tmp_path / 'tasks.db')
    for path, table in ((a, 'records'), (b, 'tasks')):
        conn = sqlite3.connect(path)
        conn.execute('CREATE TABLE %s (id INTEGER PRIMARY KEY, payload TEXT)' % table)
        conn.execute('CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)')
        conn.execute('INSERT INTO counter VALUES (1, 0)')
        conn.commit()
        conn.close()
    return a, b


class PairWriter(threading.Thread):
    """Writes a row to both databases (and bumps a counter in each) in one transaction, in a loop."""

    def __init__(self, main_db, attached_db, main_table, attached_table, timeout=30.0):
        super(PairWriter, self).__init__()
        self.daemon = True
        self.main_db, self.attached_db = main_db, attached_db
        self.main_table, self.attached_table = main_table, attached_table
        self.timeout = timeout
        self.stop = threading.Event()
        self.commits = 0
        self.errors = []

    def run(self):
        conn = sqlite3.connect(self.main_db, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute("ATTACH DATABASE ? AS other", (self.attached_db,))
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                conn.execute('BEGIN IMMEDIATE')
                conn.execute('INSERT INTO main.%s VALUES (?, ?)' % self.main_table, (n, 'x' * 500))
                conn.execute('UPDATE main.counter SET value = value + 1')
                conn.execute('INSERT INTO other.%s VALUES (?, ?)' % self.attached_table, (n, 'y' * 500))
                conn.execute('UPDATE other.counter SET value = value + 1')
                conn.execute('COMMIT')
                self.commits += 1
            except sqlite3.Error as exc:
                self.errors.append(str(exc))
                try:
                    conn.execute('ROLLBACK')
                except sqlite3.Error:
                    pass
            time.sleep(0.0005)
        conn.close()


def test_snapshot_while_another_thread_writes_both_databases(tmp_path):
    a, b = make_pair_dbs(tmp_path)
    writer = PairWriter(a, b, 'records', 'tasks')
    writer.start()
    try:
        deadline = time.time() + 5
        while writer.commits < 20 and time.time() < deadline:
            time.sleep(0.01)
        seen = []
        for round_ in range(8):
            ca, cb = str(tmp_path / ('a%d.db' % round_)), str(tmp_path / ('b%d.db' % round_))
            # Every other round with digests: they are taken of the copies, after the snapshot.
            infos = snapshot([(a, ca), (b, cb)], digests=bool(round_ % 2))
            assert integrity_check(ca) is None
            assert integrity_check(cb) is None
            records, tasks = ids(ca, 'records'), ids(cb, 'tasks')
            # one snapshot across both databases: never a row in one copy without its partner
            assert records == tasks
            assert scalar(ca, 'SELECT value FROM counter') == scalar(cb, 'SELECT value FROM counter') == len(records)
            if round_ % 2:
                assert infos[0]['tables']['records']['rows'] == len(records)
                assert infos[1]['tables']['tasks']['rows'] == len(tasks)
            seen.append(len(records))
            time.sleep(0.02)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.errors == []
    assert seen[0] >= 20
    assert seen[-1] > seen[0], 'the writer made progress between snapshots'
    assert writer.commits >= seen[-1]


class HookedSqlite(object):
    """sqlite3 stand-in for sqlite_snapshot that runs a hook inside snapshot() once.

    ``on_lock``: after the snapshot's first read of a database (it now holds a read lock);
    ``on_backup``: after the first database has been copied with the backup API.
    """

    def __init__(self, on_lock=None, on_backup=None):
        self.on_lock, self.on_backup = on_lock, on_backup
        self.fired = []

    def __getattr__(self, name):
        return getattr(sqlite3, name)

    def _fire(self, name, hook):
        if name not in self.fired:
            self.fired.append(name)
            if hook is not None:
                hook()

    def connect(self, *args, **kwargs):
        conn = sqlite3.connect(*args, **kwargs)
        if not kwargs.get('uri'):
            return conn
        outer = self

        class Wrapped(object):
            def __getattr__(self, name):
                return getattr(conn, name)

            def execute(self, sql, *params):
                cursor = conn.execute(sql, *params)
                if 'sqlite_master' in sql:
                    cursor.fetchone()
                    outer._fire('lock', outer.on_lock)
                return cursor

            def backup(self, target, **kwargs):
                result = conn.backup(target, **kwargs)
                outer._fire('backup', outer.on_backup)
                return result

        return Wrapped()


def hook_the_byte_copy(monkeypatch, hooked):
    """Make ``hooked``'s on_backup also fire after the first byte-for-byte copy (rollback journal)."""
    real_copy = sqlite_snapshot.copy_fd

    def copy_then_fire(*args):
        real_copy(*args)
        hooked._fire('backup', hooked.on_backup)

    monkeypatch.setattr(sqlite_snapshot, 'copy_fd', copy_then_fire)


@pytest.mark.parametrize('written', ['both', 'first only'])
def test_snapshot_a_write_between_the_two_copies_is_in_neither(tmp_path, monkeypatch, written):
    """Deterministic version of the test above: a writer commits to both databases (or to the
    one already copied) while the first database has been copied and the second not yet. It
    must wait for the snapshot, so that neither copy has its row: the copied database stays
    locked too (closing a descriptor of it would drop the snapshot's POSIX lock). The writer is
    another process, as the daemon is: in this one SQLite shares its lock state between
    connections and would not notice a lock the kernel dropped."""
    a, b = make_pair_dbs(tmp_path)
    result = []
    script = '\n'.join([
        'import sqlite3, sys',
        'conn = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)',
        # Attached, the second database takes part in the commit, which then waits for it.
        'if sys.argv[3] == "both":',
        '    conn.execute("ATTACH DATABASE ? AS other", (sys.argv[2],))',
        'conn.execute("BEGIN IMMEDIATE")',
        'conn.execute("INSERT INTO main.records VALUES (1, \'between the copies\')")',
        'if sys.argv[3] == "both":',
        '    conn.execute("INSERT INTO other.tasks VALUES (1, \'between the copies\')")',
        'conn.execute("COMMIT")',
    ])

    def write():
        subprocess.run([sys.executable, '-c', script, a, b, written], check=True)
        result.append(time.time())

    writer = threading.Thread(target=write)

    def between_copies():
        writer.start()
        writer.join(1.5)  # a writer that is not blocked is done by now
        time.sleep(0.3)  # ... and well before the snapshot ends

    hooked = HookedSqlite(on_backup=between_copies)
    monkeypatch.setattr(sqlite_snapshot, 'sqlite3', hooked)
    hook_the_byte_copy(monkeypatch, hooked)
    ca, cb = str(tmp_path / 'ca.db'), str(tmp_path / 'cb.db')
    snapshot([(a, ca), (b, cb)])
    finished = time.time()
    writer.join(30)
    assert hooked.fired == ['lock', 'backup']
    assert result and result[0] >= finished - 0.05, 'the writer waited for the snapshot'
    assert ids(ca, 'records') == set() and ids(cb, 'tasks') == set()
    assert ids(a, 'records') == {1} and ids(b, 'tasks') == ({1} if written == 'both' else set())


def _file_bytes(path, length=None):
    with open(path, 'rb') as handle:
        return handle.read() if length is None else handle.read(length)


def make_db_with_free_pages(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT)')
    conn.executemany('INSERT INTO records (title) VALUES (?)', [('x' * 3000,)] * 400)
    conn.execute('DELETE FROM records WHERE id % 2 = 0')
    conn.close()
    return path


def _pages(path, page_size=4096):
    data = _file_bytes(path)
    return [data[i:i + page_size] for i in range(0, len(data), page_size)]


def test_snapshot_copies_a_rollback_journal_database_page_for_page_without_its_free_pages(tmp_path):
    """Every page in use is the file's own (the backup API would rewrite the header's change
    counter); the freelist's leaf pages are holes that read as zeros; the copy is a sound
    database with the same rows."""
    source = make_db_with_free_pages(str(tmp_path / 'records.db'))
    with open(source, 'rb') as handle:
        free = sqlite_snapshot.free_leaf_pages(handle.fileno(), 4096, os.path.getsize(source) // 4096)
    assert len(free) > 100
    copy = str(tmp_path / 'copy.db')
    infos = snapshot([(source, copy)], check='full')
    assert os.path.getsize(copy) == os.path.getsize(source)
    for number, (ours, theirs) in enumerate(zip(_pages(copy), _pages(source)), start=1):
        assert ours == (bytes(4096) if number in free else theirs), number
    with open(copy, 'rb') as handle:
        assert os.lseek(handle.fileno(), 0, os.SEEK_HOLE) < os.path.getsize(copy), 'the free pages are a hole'
    assert infos[0]['journal_mode'] == 'delete'
    assert integrity_check(copy, 'full') is None
    assert ids(copy, 'records') == ids(source, 'records')
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600


def test_snapshot_copies_a_database_without_free_pages_byte_for_byte(tmp_path):
    source = str(tmp_path / 'records.db')
    make_db(source, 300, table='records')
    copy = str(tmp_path / 'copy.db')
    snapshot([(source, copy)])
    assert _file_bytes(copy) == _file_bytes(source)


def _set_u32(path, offset, value):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        handle.write(struct.pack('>I', value))


@pytest.mark.parametrize('damage', ['trunk past the end', 'count too high', 'total too high', 'total too low',
                                    'leaf past the end', 'trunk loop'])
def test_free_leaf_pages_of_a_freelist_that_does_not_add_up_is_empty(tmp_path, damage):
    """Nothing is left out of a copy unless the freelist is sound: the copy then has every page,
    and its check reports the damage."""
    path = make_db_with_free_pages(str(tmp_path / 'records.db'))
    page_count = os.path.getsize(path) // 4096
    with open(path, 'rb') as handle:
        header = handle.read(40)
    trunk, total = struct.unpack('>II', header[32:40])
    assert trunk and total
    trunk_at = (trunk - 1) * 4096
    if damage == 'trunk past the end':
        _set_u32(path, 32, page_count + 1)
    elif damage == 'count too high':
        _set_u32(path, trunk_at + 4, 4096 // 4)
    elif damage == 'total too high':
        _set_u32(path, 36, total + 1)
    elif damage == 'total too low':
        _set_u32(path, 36, total - 1)
    elif damage == 'leaf past the end':
        _set_u32(path, trunk_at + 8, page_count + 5)
    else:
        _set_u32(path, trunk_at, trunk)
    with open(path, 'rb') as handle:
        assert sqlite_snapshot.free_leaf_pages(handle.fileno(), 4096, page_count) == frozenset()


def test_free_leaf_pages_of_a_database_without_free_pages(tmp_path):
    path = make_db(str(tmp_path / 'records.db'), 20)
    with open(path, 'rb') as handle:
        assert sqlite_snapshot.free_leaf_pages(handle.fileno(), 4096, os.path.getsize(path) // 4096) == frozenset()


@pytest.mark.parametrize('free, runs', [
    ((), [(1, 10)]),
    ((2, 3, 7), [(1, 1), (4, 6), (8, 10)]),
    ((9, 10), [(1, 8)]),
    ((5,), [(1, 4), (6, 10)]),
])
def test_used_page_runs(free, runs):
    assert list(sqlite_snapshot._used_page_runs(10, frozenset(free))) == runs


def test_snapshot_copies_only_the_pages_of_a_file_with_bytes_after_them(tmp_path):
    source = str(tmp_path / 'records.db')
    make_db(source, 50, table='records')
    length = os.path.getsize(source)
    with open(source, 'ab') as handle:
        handle.write(b'\0' * 4096)
    copy = str(tmp_path / 'copy.db')
    snapshot([(source, copy)])
    assert _file_bytes(copy) == _file_bytes(source, length)
    assert ids(copy, 'records') == set(range(1, 51))


def test_snapshot_uses_the_backup_api_for_a_file_renamed_over_the_source(tmp_path, monkeypatch):
    """Opened by path after SQLite locked it: another inode there is not the locked file."""
    source = str(tmp_path / 'records.db')
    make_db(source, 20, table='records')
    real_identity = sqlite_snapshot._identity
    calls = []

    def identity(st):
        # The first call is the path's before SQLite opens it; the second the opened file's.
        calls.append(st)
        return real_identity(st) + (len(calls),)

    monkeypatch.setattr(sqlite_snapshot, '_identity', identity)
    copied = []
    monkeypatch.setattr(sqlite_snapshot, 'copy_fd', lambda *args: copied.append(args))
    copy = str(tmp_path / 'copy.db')
    snapshot([(source, copy)])
    assert len(calls) == 2 and copied == [] and ids(copy, 'records') == set(range(1, 21))


def test_snapshot_copies_a_wal_database_with_the_backup_api(tmp_path, monkeypatch):
    a, b = make_pair_dbs(tmp_path)
    set_wal(a, b)
    copied = []
    monkeypatch.setattr(sqlite_snapshot, 'copy_fd', lambda *args: copied.append(args))
    ca = str(tmp_path / 'ca.db')
    snapshot([(a, ca)])
    assert copied == [] and sqlite_snapshot.header_journal_mode(ca) == 'delete'


@pytest.mark.parametrize('journal', ['delete', 'wal'])
def test_snapshot_with_a_writer_that_locks_the_databases_in_the_other_order(tmp_path, journal):
    """A writer holds tasks.db's write lock and then wants records.db: the snapshot locks
    records.db first. Whoever cannot get a lock quickly lets go; neither waits forever."""
    a, b = make_pair_dbs(tmp_path)
    if journal == 'wal':
        set_wal(a, b)
    writer_conn = sqlite3.connect(b, timeout=10, isolation_level=None, check_same_thread=False)
    writer_conn.execute('ATTACH DATABASE ? AS other', (a,))
    writer_conn.execute('BEGIN IMMEDIATE')
    writer_conn.execute("INSERT INTO main.tasks VALUES (1, 'pending')")
    commit_result = []

    def finish():
        time.sleep(0.3)  # the snapshot is trying to lock by now
        try:
            writer_conn.execute("INSERT INTO other.records VALUES (1, 'pending')")
            writer_conn.execute('COMMIT')
            commit_result.append('ok')
        except sqlite3.Error as exc:
            commit_result.append(str(exc))

    committer = threading.Thread(target=finish)
    committer.start()
    try:
        ca, cb = str(tmp_path / 'ca.db'), str(tmp_path / 'cb.db')
        snapshot([(a, ca), (b, cb)], busy_timeout=5.0)
        committer.join(30)
        assert commit_result == ['ok']
        assert ids(ca, 'records') == ids(cb, 'tasks') == {1}
    finally:
        committer.join(30)
        writer_conn.close()


# --- WAL journal mode --------------------------------------------------------------------------

def set_wal(*paths):
    for path in paths:
        conn = sqlite3.connect(path)
        assert conn.execute('PRAGMA journal_mode = WAL').fetchone()[0] == 'wal'
        conn.close()


def side_files(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.endswith(('-wal', '-shm', '-journal')))


def test_snapshot_of_wal_databases_leaves_one_file_per_copy(tmp_path):
    a, b = make_pair_dbs(tmp_path)
    set_wal(a, b)
    daemon = sqlite3.connect(a)  # a running daemon keeps the WAL open
    daemon.execute("INSERT INTO records VALUES (7, 'only in the wal')")
    daemon.commit()
    copies = tmp_path / 'set'
    copies.mkdir()
    try:
        infos = snapshot([(a, str(copies / 'records.db')), (b, str(copies / 'tasks.db'))])
        for name in ('records.db', 'tasks.db'):
            assert integrity_check(str(copies / name)) is None
            describe(str(copies / name))
        # Opening, checking and describing the copies created nothing beside them.
        assert side_files(copies) == []
        assert sqlite_snapshot.header_journal_mode(str(copies / 'records.db')) == 'delete'
        assert [info['journal_mode'] for info in infos] == ['wal', 'wal']
        assert ids(copies / 'records.db', 'records') == {7}
    finally:
        daemon.close()


def test_snapshot_records_the_rollback_journal_mode(tmp_path):
    a, b = make_pair_dbs(tmp_path)
    set_wal(b)  # a release that switched one database to WAL
    infos = snapshot([(a, str(tmp_path / 'ca.db')), (b, str(tmp_path / 'cb.db'))])
    assert [info['journal_mode'] for info in infos] == ['delete', 'wal']


def test_snapshot_of_a_stopped_wal_database_leaves_no_side_files(tmp_path):
    a, b = make_pair_dbs(tmp_path)
    set_wal(a, b)
    assert side_files(tmp_path) == []  # the daemon closed cleanly: no -wal/-shm
    copies = tmp_path / 'set'
    copies.mkdir()
    snapshot([(a, str(copies / 'ca.db')), (b, str(copies / 'cb.db'))])
    describe(a)
    assert side_files(tmp_path) == []
    assert sqlite_snapshot.header_journal_mode(a) == 'wal'


def test_snapshot_wal_a_write_to_both_databases_between_the_two_reads_is_in_neither_copy(tmp_path, monkeypatch):
    """In WAL mode readers do not block writers, and SQLite commits a transaction across two WAL
    databases file by file. A writer that commits after the snapshot has started reading the
    first database must not reach the second one's copy."""
    a, b = make_pair_dbs(tmp_path)
    set_wal(a, b)
    done = []

    def write_both():
        conn = sqlite3.connect(a, timeout=20, isolation_level=None)
        conn.execute('ATTACH DATABASE ? AS other', (b,))
        conn.execute('BEGIN IMMEDIATE')
        conn.execute("INSERT INTO main.records VALUES (1, 'between the reads')")
        conn.execute("INSERT INTO other.tasks VALUES (1, 'between the reads')")
        conn.execute('COMMIT')
        conn.close()
        done.append(True)

    writer = threading.Thread(target=write_both)

    def between_reads():
        writer.start()
        writer.join(0.5)

    hooked = HookedSqlite(on_lock=between_reads)
    monkeypatch.setattr(sqlite_snapshot, 'sqlite3', hooked)
    ca, cb = str(tmp_path / 'ca.db'), str(tmp_path / 'cb.db')
    snapshot([(a, ca), (b, cb)])
    writer.join(30)
    assert done == [True]
    assert ids(ca, 'records') == ids(cb, 'tasks') == set()
    assert ids(a, 'records') == {1} and ids(b, 'tasks') == {1}


def test_snapshot_wal_while_another_thread_writes_both_databases(tmp_path):
    a, b = make_pair_dbs(tmp_path)
    set_wal(a, b)
    writer = PairWriter(a, b, 'records', 'tasks')
    writer.start()
    try:
        deadline = time.time() + 5
        while writer.commits < 20 and time.time() < deadline:
            time.sleep(0.01)
        seen = []
        for round_ in range(30):
            ca, cb = str(tmp_path / ('a%d.db' % round_)), str(tmp_path / ('b%d.db' % round_))
            snapshot([(a, ca), (b, cb)])
            records, tasks = ids(ca, 'records'), ids(cb, 'tasks')
            assert records == tasks, 'round %d: one copy has rows the other has not' % round_
            assert scalar(ca, 'SELECT value FROM counter') == scalar(cb, 'SELECT value FROM counter')
            seen.append(len(records))
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.errors == []
    assert seen[-1] > seen[0], 'the writer made progress between snapshots'


def test_set_journal_mode(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=3)
    sqlite_snapshot.set_journal_mode(path, 'wal')
    assert sqlite_snapshot.header_journal_mode(path) == 'wal'
    assert side_files(tmp_path) == []
    sqlite_snapshot.set_journal_mode(path, 'delete')
    assert sqlite_snapshot.header_journal_mode(path) == 'delete'
    assert ids(path, 'items') == {1, 2, 3}


def test_header_journal_mode_of_a_non_database(tmp_path):
    (tmp_path / 'x').write_bytes(b'not sqlite at all, not at all')
    assert sqlite_snapshot.header_journal_mode(str(tmp_path / 'x')) is None
    assert sqlite_snapshot.header_journal_mode(str(tmp_path / 'missing')) is None


def test_batched_digest_equals_the_row_by_row_definition(tmp_path, monkeypatch):
    """Hashing in batches must not change a digest recorded by an older set."""
    monkeypatch.setattr(sqlite_snapshot, '_DIGEST_BATCH', 7)
    path = str(tmp_path / 'big.db')
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, size REAL, data BLOB)')
    conn.executemany('INSERT INTO t VALUES (?, ?, ?, ?)',
                     [(n, "n'%d\u00e9" % n, n / 3.0, bytes([n % 256])) for n in range(1, 101)])
    conn.commit()
    reference = hashlib.sha256()
    for row in conn.execute('SELECT * FROM t ORDER BY rowid'):
        reference.update(repr(tuple(row)).encode('utf-8'))
        reference.update(b'\n')
    assert sqlite_snapshot.table_digests(conn, digest_format=1) == {'t': dict(rows=100, sha256=reference.hexdigest())}
    conn.close()


def test_integrity_check_is_redone_when_the_file_changes(tmp_path):
    path = tmp_path / 'x.db'
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    conn.commit()
    conn.close()
    assert sqlite_snapshot.integrity_check(str(path)) is None
    path.write_bytes(b'garbage' * 100)
    assert 'not a usable SQLite database' in sqlite_snapshot.integrity_check(str(path))


# --- check levels and digest format 2 (issue 16) ------------------------------------------------

def format2_reference(path, table, columns):
    """Format 2 by its definition, computed in Python from SQLite's own JSON of each row."""
    conn = sqlite3.connect(str(path))
    conn.text_factory = bytes
    try:
        row = sqlite_snapshot._row_json(columns)
        ranges = {}
        for rowid, line in conn.execute('SELECT rowid, %s FROM "%s" ORDER BY rowid' % (row, table)):
            ranges.setdefault(rowid >> 16, []).append(line + b'\n')
    finally:
        conn.close()
    digest = hashlib.sha256()
    for number in sorted(ranges):
        digest.update(b'%d %d %s\n' % (number, len(ranges[number]),
                                      hashlib.sha256(b''.join(ranges[number])).hexdigest().encode()))
    return dict(rows=sum(len(lines) for lines in ranges.values()), sha256=digest.hexdigest())


def test_describe_records_the_digest_format_and_format_1_stays_available(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=30)
    assert sqlite_snapshot.DIGEST_FORMAT == 2
    new, old = describe(path), describe(path, digest_format=1)
    assert new['digest_format'] == 2 and old['digest_format'] == 1
    assert new['tables']['items']['rows'] == old['tables']['items']['rows'] == 30
    assert new['tables'] != old['tables']
    with pytest.raises(ValueError, match='digest_format'):
        describe(path, digest_format=3)


def test_format_2_equals_its_definition_across_ranges_and_negative_rowids(tmp_path):
    """Rows spread over several 2**16-rowid ranges (and below zero) hash range by range."""
    path = str(tmp_path / 'spread.db')
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
    ids_ = [-(2 ** 63), -70000, -1, 0, 1, 65535, 65536, 65537, 200000, 2 ** 40, 2 ** 63 - 1]
    conn.executemany('INSERT INTO t VALUES (?, ?)', [(i, 'v%d' % i) for i in ids_])
    conn.commit()
    conn.close()
    got = describe(path)['tables']['t']
    assert got == format2_reference(path, 't', ['id', 'v'])
    assert got['rows'] == len(ids_)


@pytest.mark.parametrize('fmt', [1, 2])
@pytest.mark.parametrize('value', [1, '1', 1.0, None, b'1', 1.0000000000000002, '', b'', "it's", 'a,b', 'x\ny'])
def test_every_value_and_type_gives_its_own_digest(tmp_path, fmt, value):
    """1, '1', 1.0, NULL and x'31' (and near values) never share a digest, in either format."""
    digests = {}
    for index, other in enumerate([1, '1', 1.0, None, b'1', 1.0000000000000002, '', b'', "it's", 'a,b', 'x\ny']):
        path = str(tmp_path / ('%d.db' % index))
        conn = sqlite3.connect(path)
        conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v)')
        conn.execute('INSERT INTO t VALUES (1, ?)', (other,))
        conn.commit()
        conn.close()
        digests[index] = describe(path, digest_format=fmt)['tables']['t']['sha256']
    assert len(set(digests.values())) == len(digests)


def test_format_2_row_boundaries_cannot_be_faked_by_text(tmp_path):
    """Two rows and one row whose text looks like the two rows' lines hash apart."""
    one = str(tmp_path / 'one.db')
    two = str(tmp_path / 'two.db')
    for path, rows in ((one, [(1, 'a'), (2, 'b')]), (two, [(1, 'a"]\n[2,"b')])):
        conn = sqlite3.connect(path)
        conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
        conn.executemany('INSERT INTO t VALUES (?, ?)', rows)
        conn.commit()
        conn.close()
    assert describe(one)['tables']['t']['sha256'] != describe(two)['tables']['t']['sha256']


@pytest.mark.parametrize('fmt', [1, 2])
def test_digest_follows_rowid_not_the_physical_order(tmp_path, fmt):
    """Rows inserted in another order, then moved around by VACUUM, give the same digest."""
    rows = [(i, 'name %d' % (i * 7919 % 101), i / 7.0, bytes([i % 256]) * 3) for i in range(1, 301)]
    paths = []
    for name, ordered in (('asc.db', rows), ('shuffled.db', sorted(rows, key=lambda r: (r[0] * 31) % 301))):
        path = str(tmp_path / name)
        conn = sqlite3.connect(path)
        conn.execute('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, size REAL, data BLOB)')
        conn.execute('CREATE INDEX items_name ON items (name)')
        conn.executemany('INSERT INTO items VALUES (?, ?, ?, ?)', ordered)
        conn.commit()
        conn.execute('DELETE FROM items WHERE id % 5 = 0')
        conn.executemany('INSERT INTO items VALUES (?, ?, ?, ?)', [r for r in ordered if r[0] % 5 == 0])
        conn.commit()
        conn.execute('VACUUM')
        conn.close()
        paths.append(path)
    assert describe(paths[0], digest_format=fmt) == describe(paths[1], digest_format=fmt)


def test_format_2_without_rowid_and_odd_names(tmp_path):
    path = str(tmp_path / 'odd.db')
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID')
    conn.executemany('INSERT INTO kv VALUES (?, ?)', [('b', 2), ('a', b'\x00'), ('c', None)])
    # A column called rowid: the digest orders by the real rowid (_rowid_) all the same.
    conn.execute('CREATE TABLE "we""ird" ("rowid" TEXT, "co""l" INTEGER)')
    conn.executemany('INSERT INTO "we""ird" VALUES (?, ?)', [('z', 1), ('a', 2)])
    conn.commit()
    conn.close()
    first = describe(path)['tables']
    assert first['kv']['rows'] == 3 and first['we"ird']['rows'] == 2
    conn = sqlite3.connect(path)
    conn.execute("UPDATE kv SET v = x'01' WHERE k = 'a'")
    conn.execute('UPDATE "we""ird" SET "co""l" = 3 WHERE "co""l" = 2')
    conn.commit()
    conn.close()
    second = describe(path)['tables']
    assert second['kv']['sha256'] != first['kv']['sha256']
    assert second['we"ird']['sha256'] != first['we"ird']['sha256']


def test_random_tables_digest_like_their_copies_and_change_with_any_edit(tmp_path):
    """Property-style: random rows of every type; a copy digests the same, one edited value not."""
    import random
    rng = random.Random(16)

    def value():
        kind = rng.randrange(5)
        return [None, rng.randrange(-10 ** 12, 10 ** 12), rng.random() * 10 ** rng.randrange(-5, 20),
                ''.join(rng.choice('ab\'",\n\u00e9') for _ in range(rng.randrange(6))),
                bytes(rng.randrange(256) for _ in range(rng.randrange(6)))][kind]

    for attempt in range(8):
        path = str(tmp_path / ('r%d.db' % attempt))
        copy = str(tmp_path / ('c%d.db' % attempt))
        conn = sqlite3.connect(path)
        conn.execute('CREATE TABLE t (a, b, c)')
        rows = [(value(), value(), value()) for _ in range(rng.randrange(1, 60))]
        conn.executemany('INSERT INTO t VALUES (?, ?, ?)', rows)
        conn.commit()
        target = sqlite3.connect(copy)
        conn.backup(target)
        target.close()
        before = describe(path)
        assert describe(copy) == before
        rowid = rng.choice([r[0] for r in conn.execute('SELECT rowid FROM t')])
        old = conn.execute('SELECT b FROM t WHERE rowid = ?', (rowid,)).fetchone()[0]
        new = value()
        while type(new) is type(old) and new == old:
            new = value()
        conn.execute('UPDATE t SET b = ? WHERE rowid = ?', (new, rowid))
        conn.commit()
        conn.close()
        assert describe(path)['tables']['t']['sha256'] != before['tables']['t']['sha256'], (old, new)


def test_quick_check_passes_a_good_database_and_is_cached_per_level(tmp_path, monkeypatch):
    path = make_db(tmp_path / 'records.db', rows=200)
    assert integrity_check(path, 'quick') is None
    assert integrity_check(path, 'full') is None
    calls = []
    monkeypatch.setattr(sqlite_snapshot, '_check_rows', lambda *args: calls.append(args) or ['ok'])
    assert integrity_check(path, 'quick') is None and integrity_check(path, 'full') is None
    assert calls == []
    with pytest.raises(ValueError, match='level'):
        integrity_check(path, 'thorough')


def corrupt_index_behind_the_table(path):
    """Change a row without maintaining its index (writable_schema trick: drop the index from the
    schema, edit, put the stale index definition back)."""
    conn = sqlite3.connect(path)
    conn.execute('CREATE INDEX items_name ON items (name)')
    conn.commit()
    sql, rootpage = conn.execute("SELECT sql, rootpage FROM sqlite_master WHERE name = 'items_name'").fetchone()
    conn.execute('PRAGMA writable_schema = ON')
    conn.execute("DELETE FROM sqlite_master WHERE name = 'items_name'")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE items SET name = 'changed behind the index' WHERE id = 5")
    conn.commit()
    conn.execute('PRAGMA writable_schema = ON')
    conn.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('index', 'items_name', "
                 "'items', ?, ?)", (rootpage, sql))
    conn.commit()
    conn.close()


def test_quick_check_misses_a_stale_index_that_the_full_check_reports(tmp_path):
    """The documented trade-off of the quick default, pinned: indexes against tables is full only."""
    path = make_db(tmp_path / 'records.db', rows=50)
    corrupt_index_behind_the_table(path)
    assert integrity_check(path, 'quick') is None
    problem = integrity_check(path, 'full')
    assert problem.startswith('integrity_check: ') and 'items_name' in problem


def flip_page_type(path, page_number):
    page_size = scalar(path, 'PRAGMA page_size')
    with open(path, 'r+b') as handle:
        handle.seek((page_number - 1) * page_size)
        handle.write(b'\x00')  # not a b-tree page type (2, 5, 10, 13)


def test_both_levels_report_a_damaged_b_tree_page(tmp_path):
    path = make_db(tmp_path / 'records.db', rows=3000)
    page = scalar(path, "SELECT rootpage FROM sqlite_master WHERE name = 'items'")
    pages = scalar(path, 'PRAGMA page_count')
    flip_page_type(path, pages - 1)  # a leaf of items, not page 1
    assert page != pages - 1
    quick = integrity_check(path, 'quick')
    full = integrity_check(path, 'full')
    # The check's table scan stops at the page (SQLITE_CORRUPT): that is its complaint.
    assert quick == 'quick_check: database disk image is malformed'
    assert full.startswith('integrity_check: ') and 'malformed' in full


def test_full_check_reports_every_complaint_of_the_whole_file_check(tmp_path):
    """The per-table split (plus quick_check for the freelist and page use) finds what one
    whole-file integrity_check finds: a stale index of one table and a page that nothing uses."""
    path = make_db(tmp_path / 'records.db', rows=3000)
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)')
    conn.executemany('INSERT INTO other VALUES (?, ?)', [(i, 'x' * 200) for i in range(2000)])
    conn.commit()
    conn.close()
    corrupt_index_behind_the_table(path)
    page_size, pages = scalar(path, 'PRAGMA page_size'), scalar(path, 'PRAGMA page_count')
    with open(path, 'r+b') as handle:  # one more page in the file and in the header's page count
        handle.seek(pages * page_size)
        handle.write(b'\0' * page_size)
        handle.seek(28)
        handle.write((pages + 1).to_bytes(4, 'big'))
    whole = sqlite_snapshot._check_rows(path, 'PRAGMA integrity_check')
    split = sqlite_snapshot._full_check(path)
    assert set(whole) <= set(split), set(whole) - set(split)
    assert any('never used' in c for c in split) and any('items_name' in c for c in split)
    assert integrity_check(path, 'full') == 'integrity_check: ' + '; '.join(split)


def test_full_check_falls_back_to_the_whole_file_when_the_per_table_form_is_refused(tmp_path, monkeypatch):
    path = make_db(tmp_path / 'records.db', rows=20)
    real = sqlite_snapshot._check_rows
    seen = []

    def old_sqlite(db, sql):
        seen.append(sql)
        if sql.startswith('PRAGMA integrity_check('):
            raise sqlite3.OperationalError('near "(": syntax error')
        return real(db, sql)

    monkeypatch.setattr(sqlite_snapshot, '_check_rows', old_sqlite)
    assert sqlite_snapshot._full_check(path) == ['ok']
    assert seen[-1] == 'PRAGMA integrity_check'


@pytest.mark.parametrize('level', ['quick', 'full'])
def test_snapshot_checks_its_copies_at_the_level_asked(tmp_path, monkeypatch, level):
    source = make_db(tmp_path / 'records.db', rows=10)
    destination = str(tmp_path / 'copy.db')
    asked = []
    real = sqlite_snapshot.integrity_check
    monkeypatch.setattr(sqlite_snapshot, 'integrity_check', lambda path, lvl='full': asked.append((path, lvl))
                        or real(path, lvl))
    infos = snapshot([(source, destination)], check=level)
    assert asked == [(destination, level)]
    # A backup takes no digests: only a restore that compares needs them (it takes them then).
    assert 'tables' not in infos[0] and 'digest_format' not in infos[0]
    assert describe(destination)['tables'] == describe(source)['tables']
    with_digests = snapshot([(source, str(tmp_path / 'digested.db'))], check=level, digests=True)
    assert (with_digests[0]['digest_format'], with_digests[0]['tables']) == (2, describe(source)['tables'])
    with pytest.raises(ValueError, match='check'):
        snapshot([(source, str(tmp_path / 'other.db'))], check='none')


def spread_db(path, count=40):
    """One row in each of ``count`` rowid ranges (and some neighbours), so that digests go to workers."""
    conn = sqlite3.connect(str(path))
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v, w TEXT)')
    rows = [((n - 5) << 16 | (n * 37 % 65536), [n, 'x%d' % n, n / 3.0, b'\x00%d' % n, None][n % 5], 'w\n%d' % n)
            for n in range(count)]
    conn.executemany('INSERT INTO t VALUES (?, ?, ?)', rows)
    conn.commit()
    conn.close()
    return str(path)


def test_format_2_in_worker_processes_equals_its_definition(tmp_path, monkeypatch):
    path = spread_db(tmp_path / 'spread.db')
    started = []
    real_popen = sqlite_snapshot.subprocess.Popen
    monkeypatch.setattr(sqlite_snapshot.subprocess, 'Popen', lambda *a, **k: started.append(a) or real_popen(*a, **k))
    monkeypatch.setattr(sqlite_snapshot, 'DIGEST_WORKERS', 3)
    in_workers = describe(path)['tables']['t']
    assert len(started) == 3
    assert in_workers == format2_reference(path, 't', ['id', 'v', 'w'])
    monkeypatch.setattr(sqlite_snapshot, 'DIGEST_WORKERS', 1)
    assert describe(path)['tables']['t'] == in_workers
    assert len(started) == 3  # one worker: no process


def test_a_failing_digest_worker_is_redone_in_the_module(tmp_path, monkeypatch):
    path = spread_db(tmp_path / 'spread.db')
    monkeypatch.setattr(sqlite_snapshot, 'DIGEST_WORKERS', 1)
    expected = describe(path)['tables']['t']
    monkeypatch.setattr(sqlite_snapshot, 'DIGEST_WORKERS', 2)
    monkeypatch.setattr(sqlite_snapshot, '_RANGE_WORKER', 'import sys; sys.exit(3)')
    assert describe(path)['tables']['t'] == expected


def test_snapshot_reports_the_lock_then_the_copies_then_their_check(tmp_path, monkeypatch):
    a, b = make_pair_dbs(tmp_path)
    events = []
    real_copy, real_check = sqlite_snapshot.copy_fd, sqlite_snapshot.integrity_check
    monkeypatch.setattr(sqlite_snapshot, 'copy_fd', lambda *args: (events.append('copy'), real_copy(*args)))
    monkeypatch.setattr(sqlite_snapshot, 'integrity_check',
                        lambda *args: (events.append('check'), real_check(*args))[1])
    snapshot([(a, str(tmp_path / 'ca.db')), (b, str(tmp_path / 'cb.db'))],
             on_locked=lambda: events.append('locked'), on_copied=lambda: events.append('copied'))
    assert events == ['locked', 'copy', 'copy', 'copied', 'check', 'check']
