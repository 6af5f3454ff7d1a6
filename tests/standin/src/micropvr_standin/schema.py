"""SQLite schemas of tasks.db and records.db, version checks and the 1 -> 2 migration.

The schema version lives in ``PRAGMA user_version``.

Schema 1 (micropvr 1.9.x)::

    tasks.db   tasks(id INTEGER PRIMARY KEY, channel_id INTEGER, name TEXT,
                     start_time TEXT 'YYYY-MM-DD HH:MM:SS' (UTC), duration INTEGER (minutes),
                     record_location TEXT, status TEXT 'scheduled'|'cancelled')
    records.db records(id INTEGER PRIMARY KEY, task_id INTEGER, channel_id INTEGER, path TEXT,
                       start_time TEXT 'YYYY-MM-DD HH:MM:SS' (UTC), duration INTEGER (minutes),
                       size INTEGER (bytes))

Schema 2 (micropvr 1.10.x) changes existing rows in both databases:

    start_time  TEXT 'YYYY-MM-DD HH:MM:SS'  ->  INTEGER seconds since the epoch (UTC)
    duration    minutes                     ->  seconds (x 60)
    end_time    new column                  =   start_time + duration (epoch seconds)

e.g. a task (start_time '2024-05-01 20:00:00', duration 90) becomes
(start_time 1714593600, duration 5400, end_time 1714599000).

Journal mode: by default SQLite's rollback journal (DELETE), never touched, so a database is
one file, and a transaction that writes tasks.db and records.db together (records.db ATTACHed)
commits atomically across both (a super-journal); another process can copy a live database
consistently with SQLite's online backup API while the daemon keeps writing (writers wait on the
lock for up to BUSY_TIMEOUT_S).

A release with ``journal_mode = "wal"`` (the strict variant's 1.10.x, versioninfo.py) switches
both files to WAL when the daemon starts (``set_journal_mode``; WAL is persistent in the file):
while it runs there are ``-wal`` and ``-shm`` files beside each database.  In WAL mode SQLite
does not make a transaction that spans ATTACHed databases atomic across the files (documented
SQLite behaviour: each file commits on its own); a consistent copy of both needs a write lock on
both while they are copied.  Releases without a journal mode (1.9.0) leave a file in whatever
mode it is in: SQLite reads and writes a WAL file and a DELETE file alike.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse

TASKS = "tasks"
RECORDS = "records"
KINDS = (RECORDS, TASKS)  # checked and migrated in this order

# Seconds a connection waits for another connection's lock (sqlite3 timeout / busy_timeout).
BUSY_TIMEOUT_S = 10.0

DDL: dict[int, dict[str, list[str]]] = {
    1: {
        TASKS: [
            """CREATE TABLE tasks (
                id              INTEGER PRIMARY KEY,
                channel_id      INTEGER NOT NULL,
                name            TEXT    NOT NULL,
                start_time      TEXT    NOT NULL,  -- 'YYYY-MM-DD HH:MM:SS', UTC
                duration        INTEGER NOT NULL,  -- minutes
                record_location TEXT    NOT NULL,
                status          TEXT    NOT NULL DEFAULT 'scheduled'
            )""",
            "CREATE INDEX tasks_channel_id ON tasks(channel_id)",
        ],
        RECORDS: [
            """CREATE TABLE records (
                id          INTEGER PRIMARY KEY,
                task_id     INTEGER NOT NULL,
                channel_id  INTEGER NOT NULL,
                path        TEXT    NOT NULL,
                start_time  TEXT    NOT NULL,  -- 'YYYY-MM-DD HH:MM:SS', UTC
                duration    INTEGER NOT NULL,  -- minutes
                size        INTEGER NOT NULL DEFAULT 0  -- bytes
            )""",
            "CREATE INDEX records_channel_id ON records(channel_id)",
            "CREATE INDEX records_task_id ON records(task_id)",
        ],
    },
    2: {
        TASKS: [
            """CREATE TABLE tasks (
                id              INTEGER PRIMARY KEY,
                channel_id      INTEGER NOT NULL,
                name            TEXT    NOT NULL,
                start_time      INTEGER NOT NULL,  -- seconds since the epoch, UTC
                duration        INTEGER NOT NULL,  -- seconds
                end_time        INTEGER NOT NULL,  -- start_time + duration
                record_location TEXT    NOT NULL,
                status          TEXT    NOT NULL DEFAULT 'scheduled'
            )""",
            "CREATE INDEX tasks_channel_id ON tasks(channel_id)",
            "CREATE INDEX tasks_end_time ON tasks(end_time)",
        ],
        RECORDS: [
            """CREATE TABLE records (
                id          INTEGER PRIMARY KEY,
                task_id     INTEGER NOT NULL,
                channel_id  INTEGER NOT NULL,
                path        TEXT    NOT NULL,
                start_time  INTEGER NOT NULL,  -- seconds since the epoch, UTC
                duration    INTEGER NOT NULL,  -- seconds
                end_time    INTEGER NOT NULL,  -- start_time + duration
                size        INTEGER NOT NULL DEFAULT 0  -- bytes
            )""",
            "CREATE INDEX records_channel_id ON records(channel_id)",
            "CREATE INDEX records_task_id ON records(task_id)",
            "CREATE INDEX records_end_time ON records(end_time)",
        ],
    },
}

KNOWN_SCHEMAS = tuple(sorted(DDL))

# Migration 1 -> 2, per database: build the new table from the old rows, swap them.
_EPOCH = "CAST(strftime('%s', start_time) AS INTEGER)"
MIGRATION_1_TO_2: dict[str, list[str]] = {
    TASKS: [
        DDL[2][TASKS][0].replace("CREATE TABLE tasks", "CREATE TABLE tasks_v2", 1),
        f"""INSERT INTO tasks_v2 (id, channel_id, name, start_time, duration, end_time,
                                  record_location, status)
            SELECT id, channel_id, name, {_EPOCH}, duration * 60, {_EPOCH} + duration * 60,
                   record_location, status
            FROM tasks""",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v2 RENAME TO tasks",
        *DDL[2][TASKS][1:],
    ],
    RECORDS: [
        DDL[2][RECORDS][0].replace("CREATE TABLE records", "CREATE TABLE records_v2", 1),
        f"""INSERT INTO records_v2 (id, task_id, channel_id, path, start_time, duration, end_time,
                                    size)
            SELECT id, task_id, channel_id, path, {_EPOCH}, duration * 60,
                   {_EPOCH} + duration * 60, size
            FROM records""",
        "DROP TABLE records",
        "ALTER TABLE records_v2 RENAME TO records",
        *DDL[2][RECORDS][1:],
    ],
}


class SchemaError(Exception):
    """A database this release cannot use (message is meant for the operator)."""


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    """Connection in autocommit mode (explicit BEGIN/COMMIT), waiting on locks."""
    if readonly:
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
    return conn


def user_version(conn: sqlite3.Connection, schema: str = "main") -> int:
    return conn.execute(f"PRAGMA {schema}.user_version").fetchone()[0]


def table_count(conn: sqlite3.Connection, schema: str = "main") -> int:
    return conn.execute(f"SELECT count(*) FROM {schema}.sqlite_master WHERE type='table'").fetchone()[0]


def read_schema_version(path: str) -> int | None:
    """Schema version of a database file; None when the file does not exist or is empty.

    Raises SchemaError for a file that is not an SQLite database or has tables but no version.
    """
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    try:
        conn = connect(path, readonly=True)
        try:
            version = user_version(conn)
            tables = table_count(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise SchemaError(f"database {path} cannot be read: {err}") from None
    if version == 0:
        if tables == 0:
            return None  # an empty SQLite file: treated like a missing one
        raise SchemaError(f"database {path} has tables but no schema version (not a micropvr database?)")
    return version


def check_version(path: str, found: int | None, supported: int, program_version: str) -> None:
    """Refuse a database whose schema this release cannot use."""
    if found is None or found == supported:
        return
    if found > supported:
        raise SchemaError(
            f"database {path} has schema version {found}, newer than {supported} supported by "
            f"micropvr {program_version}"
        )
    raise SchemaError(
        f"database {path} has schema version {found}, older than {supported} required by "
        f"micropvr {program_version}; run micropvr-migrate"
    )


def create_schema(conn: sqlite3.Connection, kind: str, version: int) -> None:
    """Create an empty database of ``kind`` at schema ``version`` in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if user_version(conn) != 0 or table_count(conn) != 0:
            raise SchemaError(f"refusing to create the {kind} schema in a non-empty database")
        for stmt in DDL[version][kind]:
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def journal_mode(conn: sqlite3.Connection, schema: str = "main") -> str:
    return conn.execute(f"PRAGMA {schema}.journal_mode").fetchone()[0].lower()


def set_journal_mode(path: str, mode: str) -> tuple[str, str]:
    """Set ``PRAGMA journal_mode`` of the database file ``path``; returns (old, new) modes.

    Raises SchemaError if SQLite keeps another mode (e.g. WAL on a file system without shared
    memory support)."""
    conn = connect(path)
    try:
        old = journal_mode(conn)
        new = conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0].lower()
    finally:
        conn.close()
    if new != mode.lower():
        raise SchemaError(f"database {path}: cannot set journal mode {mode} (SQLite keeps {new})")
    return old, new


def ensure_database(path: str, kind: str, version: int) -> bool:
    """Create the database file at ``version`` if it is absent.  Returns True if created."""
    if read_schema_version(path) is not None:
        return False
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    conn = connect(path)
    try:
        create_schema(conn, kind, version)
    finally:
        conn.close()
    return True


def migrate_1_to_2(conn: sqlite3.Connection, kind: str) -> int:
    """Migrate one database from schema 1 to 2 in a single transaction.

    Idempotent: a database already at schema 2 is left alone (returns -1).  Otherwise returns
    the number of migrated rows.  Rows whose start_time cannot be converted make the migration
    fail (NOT NULL) and roll back entirely.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(conn)
        if version == 2:
            conn.execute("ROLLBACK")
            return -1
        if version != 1:
            raise SchemaError(f"cannot migrate the {kind} database from schema version {version} to 2")
        rows = conn.execute(f"SELECT count(*) FROM {kind}").fetchone()[0]
        for stmt in MIGRATION_1_TO_2[kind]:
            conn.execute(stmt)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("COMMIT")
        return rows
    except BaseException:
        conn.execute("ROLLBACK")
        raise


MIGRATIONS = {1: migrate_1_to_2}


def migrate_file(path: str, kind: str, target: int) -> str:
    """Bring one database file up to ``target``; returns a one-line report."""
    found = read_schema_version(path)
    if found is None:
        return f"{path}: absent, nothing to migrate"
    if found == target:
        return f"{path}: already at schema version {target}"
    if found > target:
        raise SchemaError(f"database {path} has schema version {found}, newer than {target}")
    conn = connect(path)
    try:
        reports = []
        while found < target:
            step = MIGRATIONS.get(found)
            if step is None:
                raise SchemaError(f"no migration from schema version {found}")
            rows = step(conn, kind)
            reports.append(f"{found} -> {found + 1} ({rows} rows)")
            found += 1
    finally:
        conn.close()
    return f"{path}: migrated schema version " + ", ".join(reports)
