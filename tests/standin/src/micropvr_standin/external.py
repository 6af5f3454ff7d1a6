"""Optional external tasks database: PostgreSQL, or MySQL/MariaDB (``tasks-db-engine``).

With ``"tasks-db-engine": "postgresql"`` or ``"mysql"`` the ``tasks`` table lives in that
database instead of tasks.db; records stay in the SQLite records.db.  The drivers are Debian's
python3-psycopg2 and python3-pymysql, imported only in this mode (``load_driver``).

Schema version: one row in ``micropvr_schema(version integer)`` next to ``tasks``.  Schema 1
(1.9.x) and 2 (1.10.x) have the same columns and meaning as in SQLite (see schema.py):

    1: tasks(id, channel_id, name, start_time text 'YYYY-MM-DD HH:MM:SS' UTC,
             duration minutes, record_location, status)
    2: tasks(id, channel_id, name, start_time bigint epoch seconds, duration seconds,
             end_time bigint = start_time + duration, record_location, status)

Creating the schema and migrating 1 -> 2 is a ``Plan``:

* PostgreSQL (transactional DDL): every statement, the version row included, in ONE
  transaction under an advisory lock: all or nothing.
* MySQL/MariaDB (DDL commits implicitly): the new ``tasks`` and ``micropvr_schema`` tables are
  built under scratch names (``*_migrate_new``), the rows copied in one transaction, and ONE
  atomic ``RENAME TABLE`` swaps both tables, so the data and the version switch together.  An
  interrupted run leaves schema 1 as it was; the next run drops the scratch tables and starts
  over.  Serialised with ``GET_LOCK``.

The password comes from ``tasks-db-password-file`` (a root-only file, read by the daemon) and
goes to the driver in memory: it is never logged, never on a command line, and every driver
message passes through ``redact`` before it is shown.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import stat
from typing import Any, Callable

from .schema import SchemaError

SQLITE, POSTGRESQL, MYSQL = "sqlite", "postgresql", "mysql"


@dataclasses.dataclass(frozen=True)
class Engine:
    name: str
    module: str  # Python driver module, imported lazily
    package: str  # Debian package that provides it
    default_port: int


ENGINES: dict[str, Engine] = {
    POSTGRESQL: Engine(POSTGRESQL, "psycopg2", "python3-psycopg2", 5432),
    MYSQL: Engine(MYSQL, "pymysql", "python3-pymysql", 3306),
}

TASKS_TABLE = "tasks"
VERSION_TABLE = "micropvr_schema"
NEW, OLD = "_migrate_new", "_migrate_old"  # scratch table name suffixes (MySQL)
KNOWN_SCHEMAS = (1, 2)

CONNECT_TIMEOUT_S = 5
# MySQL: rowcount of an UPDATE = rows matched, not rows changed (pymysql.constants.CLIENT).
MYSQL_CLIENT_FOUND_ROWS = 2
MYSQL_INIT_COMMAND = ("SET SESSION time_zone = '+00:00', SESSION sql_mode = "
                      "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
                      "NO_ENGINE_SUBSTITUTION'")
# PostgreSQL advisory lock key that serialises schema changes ('mpvr').
PG_LOCK_KEY = 0x6D707672
LOCK_WAIT_S = 30

MAX_PASSWORD_BYTES = 1024
REDACTED = "********"

TASK_COLUMNS: dict[int, tuple[str, ...]] = {
    1: ("id", "channel_id", "name", "start_time", "duration", "record_location", "status"),
    2: ("id", "channel_id", "name", "start_time", "duration", "end_time", "record_location",
        "status"),
}


class ExternalError(Exception):
    """A problem with the external tasks database (message meant for the operator)."""


class DriverMissing(ExternalError):
    pass


class PasswordFileError(ExternalError):
    pass


class DatabaseError(ExternalError):
    """A driver error (connection, SQL), message already redacted."""


# -- settings, password file, driver ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Settings:
    engine: str
    name: str
    user: str
    host: str = "127.0.0.1"
    port: int | None = None
    password_file: str | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Settings | None":
        """External settings from a validated config; None for the SQLite tasks.db."""
        engine = cfg.get("tasks-db-engine", SQLITE)
        if engine == SQLITE:
            return None
        return cls(engine=engine, name=cfg["tasks-db-name"], user=cfg["tasks-db-user"],
                   host=cfg.get("tasks-db-host") or "127.0.0.1", port=cfg.get("tasks-db-port"),
                   password_file=cfg.get("tasks-db-password-file"))

    @property
    def resolved_port(self) -> int:
        return self.port or ENGINES[self.engine].default_port

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def label(self) -> str:
        """How messages name the database (never with the password)."""
        where = f"unix:{self.host}" if self.is_socket else f"{self.host}:{self.resolved_port}"
        return f"{self.engine}://{self.user}@{where}/{self.name}"


def load_driver(engine: str, importer: Callable[[str], Any] = importlib.import_module) -> Any:
    """Import the engine's driver module; DriverMissing names the module and its package."""
    eng = ENGINES[engine]
    try:
        return importer(eng.module)
    except ImportError:
        raise DriverMissing(
            f"'tasks-db-engine' is \"{engine}\" but the Python module {eng.module} is missing "
            f"(install {eng.package})") from None


def read_password_file(path: str) -> str:
    """The password in ``path``: one line, trailing newline dropped.

    The file must be a regular file owned by root (or by the daemon's user) with no group or
    other permissions.  Messages name the file and the problem, never its content.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise PasswordFileError(f"password file {path}: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PasswordFileError(f"password file {path} is not a regular file")
        if st.st_uid not in (0, os.geteuid()):
            raise PasswordFileError(f"password file {path} must be owned by root (owner uid {st.st_uid})")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise PasswordFileError(
                f"password file {path} must be readable by root only (mode {mode:04o}; "
                f"chmod 600 {path})")
        data = b""
        while len(data) <= MAX_PASSWORD_BYTES:
            chunk = os.read(fd, MAX_PASSWORD_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_PASSWORD_BYTES:
        raise PasswordFileError(f"password file {path} is larger than {MAX_PASSWORD_BYTES} bytes")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise PasswordFileError(f"password file {path} is empty")
    if b"\n" in data or b"\r" in data or b"\x00" in data:
        raise PasswordFileError(f"password file {path} must hold the password on one line")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordFileError(f"password file {path} is not valid UTF-8") from None


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (driver messages, just in case)."""
    if secret:
        text = text.replace(secret, REDACTED)
    return text


def connect_kwargs(settings: Settings, password: str | None) -> dict[str, Any]:
    """Keyword arguments of the driver's connect() (the password only when there is one)."""
    if settings.engine == POSTGRESQL:
        kw: dict[str, Any] = {"dbname": settings.name, "user": settings.user,
                              "host": settings.host, "port": settings.resolved_port,
                              "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "micropvr"}
    elif settings.engine == MYSQL:
        kw = {"database": settings.name, "user": settings.user, "charset": "utf8mb4",
              "autocommit": False, "connect_timeout": CONNECT_TIMEOUT_S,
              "client_flag": MYSQL_CLIENT_FOUND_ROWS, "init_command": MYSQL_INIT_COMMAND}
        if settings.is_socket:
            kw["unix_socket"] = settings.host
        else:
            kw["host"], kw["port"] = settings.host, settings.resolved_port
    else:
        raise ValueError(f"not an external engine: {settings.engine}")
    if password is not None:
        kw["password"] = password
    return kw


# -- SQL ------------------------------------------------------------------------------------------
def tasks_ddl(engine: str, version: int, table: str = TASKS_TABLE) -> list[str]:
    """CREATE TABLE (and, on PostgreSQL, CREATE INDEX) statements of ``tasks`` at ``version``."""
    if version not in KNOWN_SCHEMAS:
        raise ValueError(f"unknown schema version {version}")
    if engine == POSTGRESQL:
        if version == 1:
            times = ("    start_time      text    NOT NULL,  -- 'YYYY-MM-DD HH:MM:SS', UTC\n"
                     "    duration        integer NOT NULL,  -- minutes\n")
        else:
            times = ("    start_time      bigint  NOT NULL,  -- seconds since the epoch, UTC\n"
                     "    duration        integer NOT NULL,  -- seconds\n"
                     "    end_time        bigint  NOT NULL,  -- start_time + duration\n")
        stmts = [
            f"CREATE TABLE {table} (\n"
            "    id              integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
            "    channel_id      integer NOT NULL,\n"
            "    name            text    NOT NULL,\n"
            f"{times}"
            "    record_location text    NOT NULL,\n"
            "    status          text    NOT NULL DEFAULT 'scheduled'\n"
            ")",
            f"CREATE INDEX {table}_channel_id ON {table} (channel_id)",
        ]
        if version == 2:
            stmts.append(f"CREATE INDEX {table}_end_time ON {table} (end_time)")
        return stmts
    if engine == MYSQL:
        if version == 1:
            times = ("    start_time      VARCHAR(32)   NOT NULL,  -- 'YYYY-MM-DD HH:MM:SS', UTC\n"
                     "    duration        INTEGER       NOT NULL,  -- minutes\n")
            index = ""
        else:
            times = ("    start_time      BIGINT        NOT NULL,  -- seconds since the epoch, UTC\n"
                     "    duration        INTEGER       NOT NULL,  -- seconds\n"
                     "    end_time        BIGINT        NOT NULL,  -- start_time + duration\n")
            index = ",\n    INDEX tasks_end_time (end_time)"
        return [
            f"CREATE TABLE {table} (\n"
            "    id              INTEGER       NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
            "    channel_id      INTEGER       NOT NULL,\n"
            "    name            VARCHAR(1024) NOT NULL,\n"
            f"{times}"
            "    record_location TEXT          NOT NULL,\n"
            "    status          VARCHAR(32)   NOT NULL DEFAULT 'scheduled',\n"
            f"    INDEX tasks_channel_id (channel_id){index}\n"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        ]
    raise ValueError(f"not an external engine: {engine}")


def version_table_ddl(engine: str, table: str = VERSION_TABLE) -> str:
    if engine == MYSQL:
        return f"CREATE TABLE {table} (version INTEGER NOT NULL) ENGINE=InnoDB"
    return f"CREATE TABLE {table} (version integer NOT NULL)"


def epoch_sql(engine: str, column: str = "start_time") -> str:
    """SQL turning a schema-1 'YYYY-MM-DD HH:MM:SS' (UTC) text into epoch seconds.

    Neither depends on the session time zone; a value that is not a time gives an error (or
    NULL, refused by NOT NULL), which rolls the whole migration back.
    """
    if engine == POSTGRESQL:
        return f"CAST(EXTRACT(EPOCH FROM CAST({column} AS timestamp)) AS bigint)"
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', CAST({column} AS DATETIME))"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Statements of a schema change.

    ``before`` (MySQL DDL, committing on its own), then ``transaction`` and COMMIT; on any error
    ROLLBACK and ``on_failure``.  Then ``switch`` (the atomic step on MySQL) and ``cleanup``
    (errors ignored: leftovers are dropped by the next run's ``before``).
    """

    before: tuple[str, ...] = ()
    transaction: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    switch: tuple[str, ...] = ()
    cleanup: tuple[str, ...] = ()


def _mysql_drop_scratch() -> str:
    return (f"DROP TABLE IF EXISTS {TASKS_TABLE}{NEW}, {VERSION_TABLE}{NEW}, "
            f"{TASKS_TABLE}{OLD}, {VERSION_TABLE}{OLD}")


def create_plan(engine: str, version: int) -> Plan:
    """Create ``tasks`` and ``micropvr_schema`` (with its one row) in an empty database."""
    insert = "INSERT INTO {t} (version) VALUES (%d)" % int(version)
    if engine == POSTGRESQL:
        return Plan(transaction=(*tasks_ddl(engine, version), version_table_ddl(engine),
                                 insert.format(t=VERSION_TABLE)))
    if engine == MYSQL:
        return Plan(
            before=(_mysql_drop_scratch(), *tasks_ddl(engine, version, TASKS_TABLE + NEW),
                    version_table_ddl(engine, VERSION_TABLE + NEW)),
            transaction=(insert.format(t=VERSION_TABLE + NEW),),
            on_failure=(_mysql_drop_scratch(),),
            switch=(f"RENAME TABLE {TASKS_TABLE}{NEW} TO {TASKS_TABLE}, "
                    f"{VERSION_TABLE}{NEW} TO {VERSION_TABLE}",),
        )
    raise ValueError(f"not an external engine: {engine}")


def _copy_1_to_2(engine: str, target: str, source: str) -> str:
    e = epoch_sql(engine)
    return (f"INSERT INTO {target} (id, channel_id, name, start_time, duration, end_time, "
            "record_location, status)\n"
            f"SELECT id, channel_id, name, {e}, duration * 60, {e} + duration * 60, "
            f"record_location, status\nFROM {source}")


def migration_plan_1_to_2(engine: str) -> Plan:
    """Schema 1 -> 2 of the external ``tasks`` table (start_time -> epoch, duration x 60,
    end_time added), rows and ids kept; the result equals a table created at schema 2."""
    if engine == POSTGRESQL:
        new = TASKS_TABLE + NEW
        return Plan(transaction=(
            tasks_ddl(engine, 2, new)[0],
            _copy_1_to_2(engine, new, TASKS_TABLE),
            f"DROP TABLE {TASKS_TABLE}",
            f"ALTER TABLE {new} RENAME TO {TASKS_TABLE}",
            # Same names as in a table created at schema 2.
            f"ALTER INDEX {new}_pkey RENAME TO {TASKS_TABLE}_pkey",
            f"ALTER SEQUENCE {new}_id_seq RENAME TO {TASKS_TABLE}_id_seq",
            f"SELECT setval(pg_get_serial_sequence('{TASKS_TABLE}', 'id'), "
            f"COALESCE(MAX(id), 0) + 1, false) FROM {TASKS_TABLE}",
            *tasks_ddl(engine, 2)[1:],
            f"UPDATE {VERSION_TABLE} SET version = 2",
        ))
    if engine == MYSQL:
        return Plan(
            before=(_mysql_drop_scratch(), *tasks_ddl(engine, 2, TASKS_TABLE + NEW),
                    version_table_ddl(engine, VERSION_TABLE + NEW)),
            transaction=(_copy_1_to_2(engine, TASKS_TABLE + NEW, TASKS_TABLE),
                         f"INSERT INTO {VERSION_TABLE}{NEW} (version) VALUES (2)"),
            on_failure=(_mysql_drop_scratch(),),
            # One atomic statement: data and version switch together.
            switch=(f"RENAME TABLE {TASKS_TABLE} TO {TASKS_TABLE}{OLD}, "
                    f"{TASKS_TABLE}{NEW} TO {TASKS_TABLE}, "
                    f"{VERSION_TABLE} TO {VERSION_TABLE}{OLD}, "
                    f"{VERSION_TABLE}{NEW} TO {VERSION_TABLE}",),
            cleanup=(f"DROP TABLE IF EXISTS {TASKS_TABLE}{OLD}, {VERSION_TABLE}{OLD}",),
        )
    raise ValueError(f"not an external engine: {engine}")


MIGRATION_PLANS = {1: migration_plan_1_to_2}


def tables_sql(engine: str) -> str:
    """Which of tasks / micropvr_schema exist in the connection's database (schema)."""
    scope = "current_schema()" if engine == POSTGRESQL else "DATABASE()"
    return ("SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {scope} AND table_name IN ('{TASKS_TABLE}', '{VERSION_TABLE}')")


def insert_task_sql(engine: str, version: int) -> str:
    cols = [c for c in TASK_COLUMNS[version] if c not in ("id", "status")]
    sql = (f"INSERT INTO {TASKS_TABLE} ({', '.join(cols)}) "
           f"VALUES ({', '.join(['%s'] * len(cols))})")
    return sql + " RETURNING id" if engine == POSTGRESQL else sql


def select_tasks_sql(version: int, by_channel: bool = False, by_status: bool = False) -> str:
    sql = f"SELECT {', '.join(TASK_COLUMNS[version])} FROM {TASKS_TABLE}"
    where = [w for w, on in (("channel_id = %s", by_channel), ("status = %s", by_status)) if on]
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY id"


CANCEL_TASK_SQL = f"UPDATE {TASKS_TABLE} SET status = 'cancelled' WHERE id = %s"
DELETE_TASK_SQL = f"DELETE FROM {TASKS_TABLE} WHERE id = %s"
COUNT_TASKS_SQL = f"SELECT count(*) AS n FROM {TASKS_TABLE}"


# -- the database -----------------------------------------------------------------------------------
class ExternalDB:
    """The external tasks table: connections, schema version, create, migrate.

    A new connection per operation (like the SQLite store), so server threads share nothing.
    """

    def __init__(self, settings: Settings, driver: Any, password: str | None):
        self.settings = settings
        self.driver = driver
        self._password = password

    def __repr__(self) -> str:  # never the password
        return f"ExternalDB({self.settings.label})"

    @property
    def engine(self) -> str:
        return self.settings.engine

    @property
    def label(self) -> str:
        return self.settings.label

    def error(self, err: BaseException, what: str = "") -> DatabaseError:
        msg = " ".join(str(err).split()) or type(err).__name__
        return DatabaseError(redact(f"{self.label}: {what}{msg}", self._password))

    def connect(self) -> Any:
        try:
            return self.driver.connect(**connect_kwargs(self.settings, self._password))
        except self.driver.Error as err:
            raise self.error(err, "cannot connect: ") from None

    # -- schema version ----------------------------------------------------------------------------
    def _read_version(self, cur: Any) -> int | None:
        cur.execute(tables_sql(self.engine))
        tables = {r[0] for r in cur.fetchall()}
        if VERSION_TABLE not in tables:
            if TASKS_TABLE in tables:
                raise SchemaError(f"database {self.label} has a {TASKS_TABLE} table but no "
                                  f"{VERSION_TABLE} table (not a micropvr database?)")
            return None
        cur.execute(f"SELECT version FROM {VERSION_TABLE}")
        rows = cur.fetchall()
        if len(rows) != 1 or not isinstance(rows[0][0], int):
            raise SchemaError(f"database {self.label}: {VERSION_TABLE} must hold exactly one "
                              f"version row (found {len(rows)})")
        if TASKS_TABLE not in tables:
            raise SchemaError(f"database {self.label} has schema version {rows[0][0]} but no "
                              f"{TASKS_TABLE} table")
        return rows[0][0]

    def read_schema_version(self) -> int | None:
        """Schema version of the external tasks table; None when neither table exists."""
        conn = self.connect()
        try:
            cur = conn.cursor()
            try:
                return self._read_version(cur)
            finally:
                conn.rollback()
        except self.driver.Error as err:
            raise self.error(err) from None
        finally:
            conn.close()

    # -- schema changes ------------------------------------------------------------------------------
    def _lock(self, cur: Any) -> None:
        if self.engine == POSTGRESQL:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (PG_LOCK_KEY,))
            cur.fetchall()
        else:
            cur.execute("SELECT GET_LOCK(%s, %s)", (self._lock_name(), LOCK_WAIT_S))
            if cur.fetchall()[0][0] != 1:
                raise DatabaseError(f"{self.label}: another micropvr is changing the schema "
                                    f"(lock {self._lock_name()} held for {LOCK_WAIT_S}s)")

    def _unlock(self, cur: Any) -> None:
        """MySQL's lock is the session's (PostgreSQL's ends with the transaction)."""
        if self.engine == MYSQL:
            try:
                cur.execute("SELECT RELEASE_LOCK(%s)", (self._lock_name(),))
                cur.fetchall()
            except Exception:  # noqa: BLE001 - closing the session releases it anyway
                pass

    def _lock_name(self) -> str:
        return f"micropvr_schema:{self.settings.name}"

    @staticmethod
    def _run(conn: Any, cur: Any, plan: Plan) -> None:
        try:
            for stmt in plan.before + plan.transaction:
                cur.execute(stmt)
            conn.commit()
        except BaseException:
            conn.rollback()
            for stmt in plan.on_failure:
                try:
                    cur.execute(stmt)
                except Exception:  # noqa: BLE001 - best effort, the original error matters
                    pass
            raise
        for stmt in plan.switch:
            cur.execute(stmt)
        conn.commit()
        for stmt in plan.cleanup:
            try:
                cur.execute(stmt)
                conn.commit()
            except Exception:  # noqa: BLE001 - the next run drops leftovers
                conn.rollback()

    def _locked(self, body: Callable[[Any, Any], Any]) -> Any:
        conn = self.connect()
        try:
            cur = conn.cursor()
            self._lock(cur)
            try:
                return body(conn, cur)
            finally:
                self._unlock(cur)
        except self.driver.Error as err:
            raise self.error(err) from None
        finally:
            conn.close()

    def ensure_schema(self, version: int) -> bool:
        """Create the tables at ``version`` if neither exists.  Returns True if created."""

        def body(conn: Any, cur: Any) -> bool:
            if self._read_version(cur) is not None:
                conn.rollback()
                return False
            self._run(conn, cur, create_plan(self.engine, version))
            return True

        return self._locked(body)

    def migrate_1_to_2(self) -> int:
        """Schema 1 -> 2; -1 when already at 2 (idempotent), else the number of rows."""

        def body(conn: Any, cur: Any) -> int:
            version = self._read_version(cur)
            if version == 2:
                conn.rollback()
                return -1
            if version != 1:
                raise SchemaError(f"cannot migrate {self.label} from schema version {version} to 2")
            cur.execute(COUNT_TASKS_SQL)
            rows = cur.fetchall()[0][0]
            try:
                self._run(conn, cur, MIGRATION_PLANS[1](self.engine))
            except self.driver.Error as err:
                raise self.error(err, "migration 1 -> 2 failed and was rolled back: ") from None
            return rows

        return self._locked(body)

    def migrate(self, target: int) -> str:
        """Bring the table up to ``target``; a one-line report like schema.migrate_file's."""
        found = self.read_schema_version()
        if found is None:
            return f"{self.label}: absent, nothing to migrate"
        if found == target:
            return f"{self.label}: already at schema version {target}"
        if found > target:
            raise SchemaError(f"database {self.label} has schema version {found}, newer than {target}")
        reports = []
        while found < target:
            if found not in MIGRATION_PLANS:
                raise SchemaError(f"no migration from schema version {found}")
            rows = self.migrate_1_to_2()
            reports.append(f"{found} -> {found + 1} ({max(rows, 0)} rows)")
            found += 1
        return f"{self.label}: migrated schema version " + ", ".join(reports)

    # -- data ------------------------------------------------------------------------------------------
    def select(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
            conn.rollback()
            return rows
        except self.driver.Error as err:
            raise self.error(err) from None
        finally:
            conn.close()

    def execute(self, sql: str, args: tuple = ()) -> int:
        """One statement in its own transaction; returns the rowcount."""
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            count = cur.rowcount
            conn.commit()
            return count
        except self.driver.Error as err:
            conn.rollback()
            raise self.error(err) from None
        finally:
            conn.close()

    def insert_task(self, conn: Any, version: int, values: tuple) -> int:
        """INSERT in ``conn``'s open transaction (not committed); returns the new id."""
        cur = conn.cursor()
        cur.execute(insert_task_sql(self.engine, version), values)
        if self.engine == POSTGRESQL:
            return cur.fetchone()[0]
        return cur.lastrowid


def open_database(cfg: dict[str, Any],
                  importer: Callable[[str], Any] = importlib.import_module) -> ExternalDB | None:
    """ExternalDB for a validated config (driver imported, password read); None for SQLite.

    Raises DriverMissing or PasswordFileError (the caller adds the config file and line).
    """
    settings = Settings.from_config(cfg)
    if settings is None:
        return None
    driver = load_driver(settings.engine, importer)
    password = read_password_file(settings.password_file) if settings.password_file else None
    return ExternalDB(settings, driver, password)
