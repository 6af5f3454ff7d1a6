"""Tasks and records, stored in tasks.db and records.db at the release's schema version
(``Store``), or tasks in an external PostgreSQL/MySQL table and records in records.db
(``ExternalStore``)."""

from __future__ import annotations

import datetime
import re
import sqlite3
from typing import Any

from . import external, schema

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(Z|\+00:00)?$")


class NotFound(Exception):
    pass


# Errors of an external tasks database (already redacted), answered like sqlite3.Error.
DatabaseError = external.DatabaseError


def parse_start_time(value: Any) -> int:
    """Epoch seconds (UTC) from an int or a 'YYYY-MM-DD HH:MM:SS' UTC string; ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError("start_time must be 'YYYY-MM-DD HH:MM:SS' (UTC) or epoch seconds")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("start_time must not be negative")
        return value
    if isinstance(value, str) and _TIME_RE.match(value):
        text = value[:19].replace("T", " ")
        dt = datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
        return int(dt.timestamp())
    raise ValueError("start_time must be 'YYYY-MM-DD HH:MM:SS' (UTC) or epoch seconds")


def format_time(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(TIME_FORMAT)


def record_path(record_location: str, channel_id: int, task_id: int, start_epoch: int) -> str:
    stamp = datetime.datetime.fromtimestamp(start_epoch, datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{record_location.rstrip('/') or '/'}/ch_{channel_id}/{task_id}_{stamp}.ts"


class Store:
    """Data access for one schema version.  A short-lived connection per operation, so any
    number of server threads can use one Store; tasks.db is the main database and records.db
    is ATTACHed as ``rec``, so that writes to both commit in one transaction (atomic across
    both files in the rollback-journal modes; in WAL mode SQLite commits each file on its own,
    see schema.py)."""

    def __init__(self, tasks_path: str, records_path: str, schema_version: int):
        if schema_version not in schema.KNOWN_SCHEMAS:
            raise ValueError(f"unknown schema version {schema_version}")
        self.tasks_path = tasks_path
        self.records_path = records_path
        self.schema_version = schema_version

    def _connect(self) -> sqlite3.Connection:
        conn = schema.connect(self.tasks_path)
        conn.row_factory = sqlite3.Row
        conn.execute("ATTACH DATABASE ? AS rec", (self.records_path,))
        return conn

    def ensure_databases(self) -> list[str]:
        """Create missing databases; returns the paths created."""
        created = []
        for path, kind in ((self.records_path, schema.RECORDS), (self.tasks_path, schema.TASKS)):
            if schema.ensure_database(path, kind, self.schema_version):
                created.append(path)
        return created

    def sqlite_paths(self) -> list[str]:
        """The SQLite database files of this store."""
        return [self.records_path, self.tasks_path]

    def set_journal_mode(self, mode: str) -> dict[str, tuple[str, str]]:
        """``PRAGMA journal_mode`` on every SQLite file (persistent for WAL); {path: (old, new)}."""
        return {path: schema.set_journal_mode(path, mode) for path in self.sqlite_paths()}

    def check_databases(self, program_version: str) -> dict[str, int | None]:
        """Schema version per database; raises SchemaError if this release cannot use one."""
        found = {}
        for path in (self.records_path, self.tasks_path):
            version = schema.read_schema_version(path)
            schema.check_version(path, version, self.schema_version, program_version)
            found[path] = version
        return found

    # -- storage format of this schema version --------------------------------------------------
    def _stored_time(self, epoch: int) -> Any:
        return format_time(epoch) if self.schema_version == 1 else epoch

    def _stored_duration(self, minutes: int) -> int:
        return minutes if self.schema_version == 1 else minutes * 60

    def _task_values(self, channel_id: int, name: str, start: int, duration: int,
                     record_location: str) -> tuple:
        """Column values of a new task (without id and status), as this schema stores them."""
        if self.schema_version == 1:
            return (channel_id, name, self._stored_time(start), self._stored_duration(duration),
                    record_location)
        return (channel_id, name, self._stored_time(start), self._stored_duration(duration),
                start + duration * 60, record_location)

    def _insert_record(self, conn: sqlite3.Connection, task_id: int, channel_id: int,
                       record_location: str, start: int, duration: int) -> int:
        """INSERT the record of a new task into ``rec.records`` (in the caller's transaction)."""
        path = record_path(record_location, channel_id, task_id, start)
        stored_start, stored_duration = self._stored_time(start), self._stored_duration(duration)
        if self.schema_version == 1:
            cur = conn.execute(
                "INSERT INTO rec.records (task_id, channel_id, path, start_time, duration) "
                "VALUES (?, ?, ?, ?, ?)",
                (task_id, channel_id, path, stored_start, stored_duration))
        else:
            cur = conn.execute(
                "INSERT INTO rec.records (task_id, channel_id, path, start_time, duration, "
                "end_time) VALUES (?, ?, ?, ?, ?, ?)",
                (task_id, channel_id, path, stored_start, stored_duration, start + duration * 60))
        return cur.lastrowid

    def create_task(self, channel_id: int, name: str, start_time: Any, duration: int,
                    record_location: str = "/var/pvr") -> dict[str, int]:
        """Insert a task and its record in one transaction spanning both databases."""
        start = parse_start_time(start_time)
        values = self._task_values(channel_id, name, start, duration, record_location)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cols = "channel_id, name, start_time, duration, record_location"
                if self.schema_version != 1:
                    cols = "channel_id, name, start_time, duration, end_time, record_location"
                cur = conn.execute(
                    f"INSERT INTO main.tasks ({cols}) VALUES ({', '.join('?' * len(values))})",
                    values)
                task_id = cur.lastrowid
                record_id = self._insert_record(conn, task_id, channel_id, record_location,
                                                start, duration)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return {"task_id": task_id, "record_id": record_id}

    def get_tasks(self, channel_id: int | None = None, status: str | None = None) -> list[dict]:
        sql, args, where = "SELECT * FROM main.tasks", [], []
        if channel_id is not None:
            where.append("channel_id = ?")
            args.append(channel_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._select(sql + " ORDER BY id", args)

    def get_records(self, channel_id: int | None = None, task_id: int | None = None) -> list[dict]:
        sql, args, where = "SELECT * FROM rec.records", [], []
        if channel_id is not None:
            where.append("channel_id = ?")
            args.append(channel_id)
        if task_id is not None:
            where.append("task_id = ?")
            args.append(task_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._select(sql + " ORDER BY id", args)

    def _select(self, sql: str, args: list) -> list[dict]:
        conn = self._connect()
        try:
            return [dict(row) for row in conn.execute(sql, args)]
        finally:
            conn.close()

    def cancel_task(self, task_id: int) -> dict[str, Any]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute("UPDATE main.tasks SET status = 'cancelled' WHERE id = ?", (task_id,))
                if cur.rowcount == 0:
                    raise NotFound(f"task {task_id} not found")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return {"task_id": task_id, "status": "cancelled"}

    def delete_records(self, record_ids: list[int]) -> dict[str, int]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                for rid in record_ids:
                    deleted += conn.execute("DELETE FROM rec.records WHERE id = ?", (rid,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return {"deleted": deleted}

    def counts(self) -> dict[str, int]:
        conn = self._connect()
        try:
            tasks = conn.execute("SELECT count(*) FROM main.tasks").fetchone()[0]
            records = conn.execute("SELECT count(*) FROM rec.records").fetchone()[0]
        finally:
            conn.close()
        return {"tasks": tasks, "records": records}


class ExternalStore(Store):
    """Tasks in an external PostgreSQL/MySQL table (external.ExternalDB), records in records.db.

    records.db is ATTACHed as ``rec`` to an in-memory main database, so the records queries of
    Store work unchanged.  create_task cannot be one transaction across two servers: the task is
    inserted (uncommitted), then the record (SQLite transaction open), then the external
    transaction commits and then SQLite's; if SQLite's commit fails the task is deleted again.
    """

    def __init__(self, db: external.ExternalDB, records_path: str, schema_version: int):
        super().__init__("", records_path, schema_version)
        self.external = db
        self.tasks_path = db.label  # for messages only

    def _connect(self) -> sqlite3.Connection:
        conn = schema.connect(":memory:")
        conn.row_factory = sqlite3.Row
        conn.execute("ATTACH DATABASE ? AS rec", (self.records_path,))
        return conn

    def sqlite_paths(self) -> list[str]:
        return [self.records_path]

    def ensure_databases(self) -> list[str]:
        created = []
        if schema.ensure_database(self.records_path, schema.RECORDS, self.schema_version):
            created.append(self.records_path)
        if self.external.ensure_schema(self.schema_version):
            created.append(self.external.label)
        return created

    def check_databases(self, program_version: str) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        version = schema.read_schema_version(self.records_path)
        schema.check_version(self.records_path, version, self.schema_version, program_version)
        found[self.records_path] = version
        version = self.external.read_schema_version()
        schema.check_version(self.external.label, version, self.schema_version, program_version)
        found[self.external.label] = version
        return found

    def create_task(self, channel_id: int, name: str, start_time: Any, duration: int,
                    record_location: str = "/var/pvr") -> dict[str, int]:
        start = parse_start_time(start_time)
        values = self._task_values(channel_id, name, start, duration, record_location)
        db = self.external
        ext = db.connect()
        try:
            try:
                task_id = db.insert_task(ext, self.schema_version, values)
            except db.driver.Error as err:
                raise db.error(err) from None
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    record_id = self._insert_record(conn, task_id, channel_id, record_location,
                                                    start, duration)
                    try:
                        ext.commit()
                    except db.driver.Error as err:
                        raise db.error(err) from None
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    db.execute(external.DELETE_TASK_SQL, (task_id,))  # take the task back
                    raise
            finally:
                conn.close()
        except BaseException:
            try:
                ext.rollback()  # no-op after a commit
            except Exception:  # noqa: BLE001 - the original error matters
                pass
            raise
        finally:
            ext.close()
        return {"task_id": task_id, "record_id": record_id}

    def get_tasks(self, channel_id: int | None = None, status: str | None = None) -> list[dict]:
        args = tuple(a for a in (channel_id, status) if a is not None)
        sql = external.select_tasks_sql(self.schema_version, channel_id is not None,
                                        status is not None)
        return self.external.select(sql, args)

    def cancel_task(self, task_id: int) -> dict[str, Any]:
        if self.external.execute(external.CANCEL_TASK_SQL, (task_id,)) == 0:
            raise NotFound(f"task {task_id} not found")
        return {"task_id": task_id, "status": "cancelled"}

    def counts(self) -> dict[str, int]:
        tasks = self.external.select(external.COUNT_TASKS_SQL)[0]["n"]
        conn = self._connect()
        try:
            records = conn.execute("SELECT count(*) FROM rec.records").fetchone()[0]
        finally:
            conn.close()
        return {"tasks": tasks, "records": records}
