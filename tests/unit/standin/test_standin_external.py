"""External tasks database (tasks-db-engine postgresql/mysql): config keys, password file, SQL
per engine and the schema create/migrate flow, against a scripted DB-API fake (no server; the
real PostgreSQL/MariaDB run is tests/standin/container-external-db.sh)."""

import os
import re
import sqlite3
import subprocess
import sys

import pytest

from micropvr_standin import config, daemon, external, migrate, schema, store
from micropvr_standin.config import ConfigError
from micropvr_standin.external import MYSQL, POSTGRESQL
from micropvr_standin.schema import SchemaError

import render_template

SECRET = "s3cret-Pass/word%1"
CONF_IN = os.path.join(render_template.HERE, "..", "pkg", "micropvr", "micropvr.conf.in")


def shipped(version):
    with open(CONF_IN, encoding="utf-8") as f:
        return render_template.render(f.read(), version, os.path.dirname(CONF_IN))
ENGINES = (POSTGRESQL, MYSQL)


# -- a scripted DB-API driver ----------------------------------------------------------------------
class FakeError(Exception):
    pass


class FakeDriver:
    """Just enough of psycopg2/pymysql: statements are logged; the few SELECTs the code issues
    are answered from a tiny state (tables, version rows) that commits and RENAMEs change."""

    Error = FakeError

    def __init__(self, engine, tables=(), versions=(), count=0, fail_on=None, fail_commit=False,
                 lock_ok=True, rowcount=1):
        self.engine = engine
        self.tables = set(tables)
        self.versions = list(versions)
        self.count = count
        self.fail_on = fail_on
        self.fail_commit = fail_commit
        self.lock_ok = lock_ok
        self.rowcount = rowcount
        self.next_id = 1
        self.log = []
        self.connects = []
        self.pending = {}

    def connect(self, **kwargs):
        self.connects.append(kwargs)
        return FakeConn(self)

    def statements(self):
        return [s for s in self.log if s not in ("COMMIT", "ROLLBACK", "CLOSE")]


class FakeConn:
    def __init__(self, d):
        self.d = d

    def cursor(self):
        return FakeCursor(self.d)

    def commit(self):
        if self.d.fail_commit:
            raise FakeError("commit failed")
        self.d.log.append("COMMIT")
        if "version" in self.d.pending:
            self.d.versions = [self.d.pending["version"]]
            self.d.tables |= self.d.pending.get("tables", set())
        self.d.pending = {}

    def rollback(self):
        self.d.log.append("ROLLBACK")
        self.d.pending = {}

    def close(self):
        self.d.log.append("CLOSE")


class FakeCursor:
    def __init__(self, d):
        self.d = d
        self.rows = []
        self.description = None
        self.rowcount = -1
        self.lastrowid = None

    def execute(self, sql, args=None):
        d = self.d
        flat = " ".join(sql.split())
        d.log.append(flat if args is None else f"{flat} {list(args)!r}")
        if d.fail_on and d.fail_on in flat:
            raise FakeError(f"error near '{d.fail_on}' (password {SECRET} was used)")
        self.rows, self.description = [], None
        if "information_schema.tables" in flat:
            self.rows = [(t,) for t in sorted(d.tables)]
        elif flat.startswith("SELECT version FROM micropvr_schema"):
            self.rows = [(v,) for v in d.versions]
        elif "GET_LOCK" in flat:
            self.rows = [(1 if d.lock_ok else 0,)]
        elif "RELEASE_LOCK" in flat or "pg_advisory_xact_lock" in flat:
            self.rows = [(1,)]
        elif flat.startswith("SELECT count(*)"):
            self.rows, self.description = [(d.count,)], [("n",)]
        elif flat.startswith("SELECT id,"):
            self.rows, self.description = [(1, 7)], [("id",), ("channel_id",)]
        elif m := re.match(r"INSERT INTO micropvr_schema(_migrate_new)? \(version\) VALUES \((\d+)\)", flat):
            d.pending = {"version": int(m.group(2)), "tables": {"tasks", "micropvr_schema"}}
            if m.group(1):  # MySQL: switched by RENAME, not by COMMIT
                d.pending = {"scratch": int(m.group(2))}
                d.scratch = int(m.group(2))
        elif flat.startswith("UPDATE micropvr_schema SET version"):
            d.pending = {"version": int(flat.rsplit(" ", 1)[1])}
        elif flat.startswith("RENAME TABLE"):
            d.versions = [d.scratch]
            d.tables |= {"tasks", "micropvr_schema"}
        elif flat.startswith("INSERT INTO tasks ("):
            self.lastrowid = d.next_id
            self.rows = [(d.next_id,)]
            d.next_id += 1
        elif flat.startswith(("UPDATE tasks", "DELETE FROM tasks")):
            self.rowcount = d.rowcount

    def fetchall(self):
        return list(self.rows)

    def fetchone(self):
        return self.rows[0] if self.rows else None


def settings(engine, **kw):
    return external.Settings(engine=engine, name="micropvr", user="micropvr", **kw)


def fake_db(engine, **kw):
    drv = FakeDriver(engine, **kw)
    return external.ExternalDB(settings(engine), drv, SECRET), drv


def password_file(tmp_path, content=SECRET + "\n", mode=0o600, name="tasks-db.password"):
    path = tmp_path / name
    path.write_text(content)
    path.chmod(mode)
    return str(path)


def ext_conf(conf_factory, engine=POSTGRESQL, **overrides):
    keys = {"tasks-db-engine": engine, "tasks-db-name": "micropvr", "tasks-db-user": "micropvr"}
    keys.update(overrides)
    return conf_factory(**keys)


# -- config keys -----------------------------------------------------------------------------------
def test_absent_keys_are_todays_sqlite_behaviour(r19, r110):
    for release in (r19, r110):
        cfg, warnings = config.validate({}, "{}", known_extra_keys=release.extra_config_keys)
        assert warnings == []
        assert cfg["tasks-db-engine"] == "sqlite" and cfg["tasks-db-host"] == "127.0.0.1"
        assert cfg["tasks-db-port"] is None and cfg["tasks-db-password-file"] is None
        assert external.Settings.from_config(cfg) is None
        assert external.open_database(cfg, importer=pytest.fail) is None  # no driver import


def test_shipped_conffile_mentions_the_keys_only_in_comments(any_release):
    text = shipped(any_release.version)
    data = config.parse_text(text)
    for key in ("tasks-db-engine", "tasks-db-name", "tasks-db-host", "tasks-db-port",
                "tasks-db-user", "tasks-db-password-file"):
        assert f'// "{key}":' in text
        assert key not in data


@pytest.mark.parametrize("engine", ENGINES)
def test_external_keys_known_by_every_release(engine, any_release):
    text = ('{\n  "tasks-db-engine": "%s",\n  "tasks-db-name": "micropvr",\n'
            '  "tasks-db-host": "db.example.net",\n  "tasks-db-port": 6432,\n'
            '  "tasks-db-user": "pvr",\n  "tasks-db-password-file": "/etc/micropvr/pw"\n}' % engine)
    cfg, warnings = config.validate(config.parse_text(text), text, "m.conf",
                                    any_release.extra_config_keys)
    assert warnings == []
    s = external.Settings.from_config(cfg)
    assert s == external.Settings(engine, "micropvr", "pvr", "db.example.net", 6432, "/etc/micropvr/pw")
    assert s.label == f"{engine}://pvr@db.example.net:6432/micropvr"


def test_engine_default_ports_and_socket_label():
    assert settings(POSTGRESQL).resolved_port == 5432
    assert settings(MYSQL).resolved_port == 3306
    assert settings(POSTGRESQL).label == "postgresql://micropvr@127.0.0.1:5432/micropvr"
    assert settings(MYSQL, host="/run/mysqld/mysqld.sock").label == \
        "mysql://micropvr@unix:/run/mysqld/mysqld.sock/micropvr"


@pytest.mark.parametrize("key, value", [
    ("tasks-db-engine", "mariadb"), ("tasks-db-engine", "SQLite"), ("tasks-db-engine", 1),
    ("tasks-db-name", ""), ("tasks-db-name", "my db"), ("tasks-db-name", "x" * 64),
    ("tasks-db-host", ""), ("tasks-db-host", "a b"), ("tasks-db-port", 0),
    ("tasks-db-port", "5432"), ("tasks-db-port", 70000), ("tasks-db-user", ""),
    ("tasks-db-user", " root"), ("tasks-db-password-file", "pw.txt"),
    ("tasks-db-password-file", ""),
])
def test_bad_values_name_the_line(key, value):
    import json
    text = '{\n  "log-verbose-level": 3,\n  "%s": %s\n}\n' % (key, json.dumps(value))
    with pytest.raises(ConfigError) as exc:
        config.validate(config.parse_text(text), text, "m.conf")
    assert str(exc.value).startswith(f"m.conf:3: '{key}' must be ")


@pytest.mark.parametrize("missing", ["tasks-db-name", "tasks-db-user"])
def test_external_engine_needs_name_and_user(missing):
    keys = {"tasks-db-engine": "mysql", "tasks-db-name": "m", "tasks-db-user": "u"}
    del keys[missing]
    text = "{\n" + ",\n".join(f'  "{k}": "{v}"' for k, v in keys.items()) + "\n}\n"
    with pytest.raises(ConfigError) as exc:
        config.validate(config.parse_text(text), text, "m.conf")
    assert str(exc.value) == f"m.conf:2: 'tasks-db-engine' is \"mysql\": '{missing}' must be set too"


def test_external_keys_without_engine_are_warned_and_ignored():
    text = '{\n  "tasks-db-host": "db",\n  "tasks-db-engine": "sqlite"\n}\n'
    cfg, warnings = config.validate(config.parse_text(text), text, "m.conf")
    assert warnings == ["m.conf:2: 'tasks-db-host' is only used with an external "
                        "'tasks-db-engine' (\"postgresql\" or \"mysql\"); ignored"]
    assert external.Settings.from_config(cfg) is None


# -- driver ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine, module, package", [
    (POSTGRESQL, "psycopg2", "python3-psycopg2"), (MYSQL, "pymysql", "python3-pymysql")])
def test_missing_driver_names_module_and_package(engine, module, package, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails like an absent package
    with pytest.raises(external.DriverMissing) as exc:
        external.load_driver(engine)
    assert str(exc.value) == (f"'tasks-db-engine' is \"{engine}\" but the Python module {module} "
                              f"is missing (install {package})")


def test_daemon_without_driver_fails_with_config_line(conf_factory, capsys, monkeypatch, r19):
    monkeypatch.setitem(sys.modules, "pymysql", None)
    conf, cfg = ext_conf(conf_factory, MYSQL)
    line = config.locate(conf, "tasks-db-engine")
    assert line is not None
    for args in (["-c", conf, "--check"], ["-c", conf]):
        assert daemon.main(args, r19) == 1
        err = capsys.readouterr().err
        assert err == (f"micropvr: {conf}:{line}: 'tasks-db-engine' is \"mysql\" but the Python "
                       "module pymysql is missing (install python3-pymysql)\n")
    assert not os.path.exists(cfg["tasks-db-path"])


# -- password file -----------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [SECRET, SECRET + "\n", SECRET + "\r\n"])
def test_password_file_read(tmp_path, content):
    assert external.read_password_file(password_file(tmp_path, content)) == SECRET


@pytest.mark.parametrize("content, mode, problem", [
    (SECRET, 0o644, "must be readable by root only (mode 0644; chmod 600 "),
    (SECRET, 0o640, "must be readable by root only (mode 0640; chmod 600 "),
    (SECRET, 0o604, "must be readable by root only (mode 0604; chmod 600 "),
    ("", 0o600, "is empty"),
    ("\n", 0o600, "is empty"),
    (SECRET + "\nsecond line\n", 0o600, "must hold the password on one line"),
    (SECRET * 100, 0o600, "is larger than 1024 bytes"),
])
def test_password_file_refused_without_echo(tmp_path, content, mode, problem):
    path = password_file(tmp_path, content, mode)
    with pytest.raises(external.PasswordFileError) as exc:
        external.read_password_file(path)
    assert f"password file {path} {problem}" in str(exc.value)
    assert SECRET not in str(exc.value) and "second line" not in str(exc.value)


def test_password_file_missing_or_not_a_file(tmp_path):
    with pytest.raises(external.PasswordFileError, match="no-such: No such file or directory"):
        external.read_password_file(str(tmp_path / "no-such"))
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(external.PasswordFileError, match="is not a regular file"):
        external.read_password_file(str(tmp_path / "dir"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_password_file_must_be_owned_by_root(tmp_path):
    path = password_file(tmp_path)
    os.chown(path, 65534, 65534)
    with pytest.raises(external.PasswordFileError, match=r"must be owned by root \(owner uid 65534\)"):
        external.read_password_file(path)


def test_bad_password_file_stops_daemon_with_config_line(tmp_path, conf_factory, capsys, monkeypatch, r110):
    monkeypatch.setitem(sys.modules, "psycopg2", FakeDriver(POSTGRESQL))
    pw = password_file(tmp_path, mode=0o644)
    conf, cfg = ext_conf(conf_factory, **{"tasks-db-password-file": pw})
    line = config.locate(conf, "tasks-db-password-file")
    assert daemon.main(["-c", conf, "--check"], r110) == 1
    err = capsys.readouterr().err
    assert err == (f"micropvr: {conf}:{line}: password file {pw} must be readable by root only "
                   f"(mode 0644; chmod 600 {pw})\n")
    with open(cfg["log-path"]) as f:
        assert SECRET not in f.read()


def test_redact():
    assert external.redact(f"auth failed for {SECRET}!", SECRET) == "auth failed for ********!"
    assert external.redact("nothing", None) == "nothing"
    assert external.redact("nothing", "") == "nothing"


def test_password_only_in_driver_kwargs_never_in_repr_or_labels(tmp_path):
    pg = external.connect_kwargs(settings(POSTGRESQL), SECRET)
    assert pg == {"dbname": "micropvr", "user": "micropvr", "host": "127.0.0.1", "port": 5432,
                  "connect_timeout": 5, "application_name": "micropvr", "password": SECRET}
    my = external.connect_kwargs(settings(MYSQL, port=3307), SECRET)
    assert (my["host"], my["port"], my["database"], my["password"]) == ("127.0.0.1", 3307, "micropvr", SECRET)
    assert my["client_flag"] == 2 and my["autocommit"] is False and my["charset"] == "utf8mb4"
    assert "time_zone = '+00:00'" in my["init_command"] and "STRICT_ALL_TABLES" in my["init_command"]
    sock = external.connect_kwargs(settings(MYSQL, host="/run/mysqld/mysqld.sock"), None)
    assert sock["unix_socket"] == "/run/mysqld/mysqld.sock"
    assert "host" not in sock and "port" not in sock and "password" not in sock
    db, _ = fake_db(POSTGRESQL)
    for text in (repr(db), str(db.settings), db.label, repr(store.ExternalStore(db, "/x.db", 1).tasks_path)):
        assert SECRET not in text


def test_driver_errors_are_redacted(tmp_path):
    db, drv = fake_db(POSTGRESQL, fail_on="information_schema")
    with pytest.raises(external.DatabaseError) as exc:
        db.read_schema_version()
    assert SECRET not in str(exc.value)
    assert str(exc.value).startswith("postgresql://micropvr@127.0.0.1:5432/micropvr: error near ")
    assert "(password ******** was used)" in str(exc.value)


# -- SQL per engine ------------------------------------------------------------------------------------
def ddl_columns(create_table):
    names = []
    for line in create_table.splitlines()[1:]:
        word = line.strip().split(" ", 1)[0]
        if word and word not in (")", "INDEX", "CONSTRAINT", "PRIMARY") and not word.startswith(")"):
            names.append(word)
    return names


def sqlite_columns(version):
    conn = sqlite3.connect(":memory:")
    conn.execute(schema.DDL[version][schema.TASKS][0])
    return [r[1] for r in conn.execute("PRAGMA table_info(tasks)")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("version", [1, 2])
def test_tasks_ddl_has_the_sqlite_columns(engine, version):
    create = external.tasks_ddl(engine, version)[0]
    assert create.startswith("CREATE TABLE tasks (")
    assert ddl_columns(create) == sqlite_columns(version) == list(external.TASK_COLUMNS[version])


def test_tasks_ddl_types():
    pg1, pg2 = external.tasks_ddl(POSTGRESQL, 1), external.tasks_ddl(POSTGRESQL, 2)
    assert "id              integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in pg1[0]
    assert "start_time      text    NOT NULL" in pg1[0] and "end_time" not in pg1[0]
    assert "start_time      bigint  NOT NULL" in pg2[0] and "end_time        bigint  NOT NULL" in pg2[0]
    assert pg1[1:] == ["CREATE INDEX tasks_channel_id ON tasks (channel_id)"]
    assert pg2[1:] == ["CREATE INDEX tasks_channel_id ON tasks (channel_id)",
                       "CREATE INDEX tasks_end_time ON tasks (end_time)"]
    my1, my2 = external.tasks_ddl(MYSQL, 1), external.tasks_ddl(MYSQL, 2)
    assert len(my1) == len(my2) == 1  # indexes inside CREATE TABLE
    assert "AUTO_INCREMENT PRIMARY KEY" in my1[0] and "start_time      VARCHAR(32)" in my1[0]
    assert "INDEX tasks_channel_id (channel_id)\n" in my1[0] and "end_time" not in my1[0]
    assert "start_time      BIGINT" in my2[0] and "INDEX tasks_end_time (end_time)" in my2[0]
    for stmt in my1 + my2:
        assert stmt.endswith(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
    with pytest.raises(ValueError):
        external.tasks_ddl(POSTGRESQL, 3)
    with pytest.raises(ValueError):
        external.tasks_ddl("sqlite", 1)


def test_create_plans():
    pg = external.create_plan(POSTGRESQL, 1)
    assert pg.before == pg.switch == pg.cleanup == ()
    assert pg.transaction == (*external.tasks_ddl(POSTGRESQL, 1),
                              "CREATE TABLE micropvr_schema (version integer NOT NULL)",
                              "INSERT INTO micropvr_schema (version) VALUES (1)")
    my = external.create_plan(MYSQL, 2)
    assert my.before == (
        "DROP TABLE IF EXISTS tasks_migrate_new, micropvr_schema_migrate_new, tasks_migrate_old, "
        "micropvr_schema_migrate_old",
        external.tasks_ddl(MYSQL, 2, "tasks_migrate_new")[0],
        "CREATE TABLE micropvr_schema_migrate_new (version INTEGER NOT NULL) ENGINE=InnoDB")
    assert my.transaction == ("INSERT INTO micropvr_schema_migrate_new (version) VALUES (2)",)
    assert my.switch == ("RENAME TABLE tasks_migrate_new TO tasks, "
                         "micropvr_schema_migrate_new TO micropvr_schema",)
    assert my.on_failure == my.before[:1]


def test_postgresql_migration_is_one_transaction():
    plan = external.migration_plan_1_to_2(POSTGRESQL)
    assert plan.before == plan.switch == plan.cleanup == plan.on_failure == ()
    epoch = "CAST(EXTRACT(EPOCH FROM CAST(start_time AS timestamp)) AS bigint)"
    assert [" ".join(s.split()) for s in plan.transaction] == [
        " ".join(external.tasks_ddl(POSTGRESQL, 2, "tasks_migrate_new")[0].split()),
        "INSERT INTO tasks_migrate_new (id, channel_id, name, start_time, duration, end_time, "
        f"record_location, status) SELECT id, channel_id, name, {epoch}, duration * 60, "
        f"{epoch} + duration * 60, record_location, status FROM tasks",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_migrate_new RENAME TO tasks",
        "ALTER INDEX tasks_migrate_new_pkey RENAME TO tasks_pkey",
        "ALTER SEQUENCE tasks_migrate_new_id_seq RENAME TO tasks_id_seq",
        "SELECT setval(pg_get_serial_sequence('tasks', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM tasks",
        "CREATE INDEX tasks_channel_id ON tasks (channel_id)",
        "CREATE INDEX tasks_end_time ON tasks (end_time)",
        "UPDATE micropvr_schema SET version = 2",
    ]


def test_mysql_migration_switches_data_and_version_in_one_rename():
    plan = external.migration_plan_1_to_2(MYSQL)
    epoch = "TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', CAST(start_time AS DATETIME))"
    assert plan.before[1:] == (external.tasks_ddl(MYSQL, 2, "tasks_migrate_new")[0],
                               "CREATE TABLE micropvr_schema_migrate_new (version INTEGER NOT NULL) ENGINE=InnoDB")
    assert [" ".join(s.split()) for s in plan.transaction] == [
        "INSERT INTO tasks_migrate_new (id, channel_id, name, start_time, duration, end_time, "
        f"record_location, status) SELECT id, channel_id, name, {epoch}, duration * 60, "
        f"{epoch} + duration * 60, record_location, status FROM tasks",
        "INSERT INTO micropvr_schema_migrate_new (version) VALUES (2)"]
    assert plan.switch == ("RENAME TABLE tasks TO tasks_migrate_old, tasks_migrate_new TO tasks, "
                           "micropvr_schema TO micropvr_schema_migrate_old, "
                           "micropvr_schema_migrate_new TO micropvr_schema",)
    assert plan.cleanup == ("DROP TABLE IF EXISTS tasks_migrate_old, micropvr_schema_migrate_old",)
    assert plan.on_failure == plan.before[:1]


def test_data_statements():
    assert external.insert_task_sql(POSTGRESQL, 1) == (
        "INSERT INTO tasks (channel_id, name, start_time, duration, record_location) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id")
    assert external.insert_task_sql(MYSQL, 2) == (
        "INSERT INTO tasks (channel_id, name, start_time, duration, end_time, record_location) "
        "VALUES (%s, %s, %s, %s, %s, %s)")
    assert external.select_tasks_sql(1) == (
        "SELECT id, channel_id, name, start_time, duration, record_location, status FROM tasks "
        "ORDER BY id")
    assert external.select_tasks_sql(2, by_channel=True, by_status=True) == (
        "SELECT id, channel_id, name, start_time, duration, end_time, record_location, status "
        "FROM tasks WHERE channel_id = %s AND status = %s ORDER BY id")
    assert external.select_tasks_sql(2, by_status=True).endswith(" WHERE status = %s ORDER BY id")
    assert "current_schema()" in external.tables_sql(POSTGRESQL)
    assert "DATABASE()" in external.tables_sql(MYSQL)


# -- schema flow against the fake --------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_create_schema_once(engine):
    db, drv = fake_db(engine)
    assert db.read_schema_version() is None
    assert db.ensure_schema(1) is True
    assert drv.versions == [1] and drv.tables == {"tasks", "micropvr_schema"}
    assert db.read_schema_version() == 1
    drv.log.clear()
    assert db.ensure_schema(1) is False
    assert not any(s.startswith(("CREATE", "DROP", "RENAME", "INSERT")) for s in drv.log)


def test_postgresql_create_runs_under_the_advisory_lock_in_one_transaction():
    db, drv = fake_db(POSTGRESQL)
    db.ensure_schema(2)
    assert drv.log[0] == f"SELECT pg_advisory_xact_lock(%s) [{external.PG_LOCK_KEY}]"
    body = drv.log[2:drv.log.index("COMMIT")]
    assert body == [" ".join(s.split()) for s in external.create_plan(POSTGRESQL, 2).transaction]
    assert drv.log[-2:] == ["COMMIT", "CLOSE"]


def test_mysql_create_renames_after_commit_and_releases_the_lock():
    db, drv = fake_db(MYSQL)
    db.ensure_schema(1)
    assert drv.log[0] == "SELECT GET_LOCK(%s, %s) ['micropvr_schema:micropvr', 30]"
    i = drv.log.index("COMMIT")
    assert drv.log[i - 1] == "INSERT INTO micropvr_schema_migrate_new (version) VALUES (1)"
    assert drv.log[i + 1].startswith("RENAME TABLE tasks_migrate_new TO tasks")
    assert drv.log[-2:] == ["SELECT RELEASE_LOCK(%s) ['micropvr_schema:micropvr']", "CLOSE"]


def test_mysql_lock_timeout():
    db, drv = fake_db(MYSQL, lock_ok=False)
    with pytest.raises(external.DatabaseError, match="another micropvr is changing the schema"):
        db.ensure_schema(1)
    assert not any(s.startswith("CREATE") for s in drv.log)


@pytest.mark.parametrize("engine", ENGINES)
def test_migration_flow_and_idempotence(engine):
    db, drv = fake_db(engine, tables={"tasks", "micropvr_schema"}, versions=[1], count=3)
    label = f"{engine}://micropvr@127.0.0.1:{5432 if engine == POSTGRESQL else 3306}/micropvr"
    assert db.migrate(2) == f"{label}: migrated schema version 1 -> 2 (3 rows)"
    assert drv.versions == [2]
    plan = external.migration_plan_1_to_2(engine)
    ran = drv.statements()
    for stmt in plan.before + plan.transaction + plan.switch + plan.cleanup:
        assert " ".join(stmt.split()) in ran
    drv.log.clear()
    assert db.migrate(2) == f"{label}: already at schema version 2"
    assert db.migrate_1_to_2() == -1
    assert not any(s.startswith(("CREATE", "INSERT", "UPDATE", "RENAME")) for s in drv.log)


@pytest.mark.parametrize("engine", ENGINES)
def test_failed_migration_rolls_back(engine):
    db, drv = fake_db(engine, tables={"tasks", "micropvr_schema"}, versions=[1], count=3,
                      fail_on="INSERT INTO tasks_migrate_new")
    with pytest.raises(external.DatabaseError) as exc:
        db.migrate(2)
    assert ": migration 1 -> 2 failed and was rolled back: error near " in str(exc.value)
    assert SECRET not in str(exc.value)
    assert drv.versions == [1]
    assert not any(s.startswith(("RENAME", "UPDATE")) for s in drv.log)
    i = len(drv.log) - 1 - drv.log[::-1].index("ROLLBACK")  # the migration's (not the read's)
    if engine == MYSQL:  # scratch tables dropped again
        assert drv.log[i + 1].startswith("DROP TABLE IF EXISTS tasks_migrate_new")
    else:
        assert "COMMIT" not in drv.log


def test_migrate_refuses_newer_and_unknown():
    db, _ = fake_db(POSTGRESQL, tables={"tasks", "micropvr_schema"}, versions=[3])
    with pytest.raises(SchemaError, match=r"micropvr has schema version 3, newer than 2$"):
        db.migrate(2)
    db, _ = fake_db(POSTGRESQL)
    assert db.migrate(2).endswith("micropvr: absent, nothing to migrate")


@pytest.mark.parametrize("tables, versions, message", [
    ({"tasks"}, [], "has a tasks table but no micropvr_schema table (not a micropvr database?)"),
    ({"tasks", "micropvr_schema"}, [], "micropvr_schema must hold exactly one version row (found 0)"),
    ({"tasks", "micropvr_schema"}, [1, 2], "micropvr_schema must hold exactly one version row (found 2)"),
    ({"micropvr_schema"}, [1], "has schema version 1 but no tasks table"),
])
def test_version_table_problems(tables, versions, message):
    db, _ = fake_db(MYSQL, tables=tables, versions=versions)
    with pytest.raises(SchemaError) as exc:
        db.read_schema_version()
    assert message in str(exc.value)


# -- daemon, store and micropvr-migrate with the fake driver --------------------------------------------
@pytest.fixture
def fake_pg(monkeypatch):
    """psycopg2 replaced by a FakeDriver module (same object every import)."""
    drv = FakeDriver(POSTGRESQL)
    monkeypatch.setitem(sys.modules, "psycopg2", drv)
    return drv


def test_daemon_refuses_newer_and_older_external_schema(tmp_path, conf_factory, capsys, fake_pg, r19, r110):
    conf, cfg = ext_conf(conf_factory, **{"tasks-db-password-file": password_file(tmp_path)})
    fake_pg.tables, fake_pg.versions = {"tasks", "micropvr_schema"}, [2]
    assert daemon.main(["-c", conf, "--check"], r19) == 1
    msg = ("database postgresql://micropvr@127.0.0.1:5432/micropvr has schema version 2, newer "
           "than 1 supported by micropvr 1.9.0")
    assert capsys.readouterr().err == f"micropvr: {msg}\n"
    fake_pg.versions = [1]
    assert daemon.main(["-c", conf, "--check"], r110) == 1
    assert capsys.readouterr().err == (
        "micropvr: database postgresql://micropvr@127.0.0.1:5432/micropvr has schema version 1, "
        "older than 2 required by micropvr 1.10.0; run micropvr-migrate\n")
    assert daemon.main(["-c", conf, "--check"], r19) == 0
    assert fake_pg.connects[-1]["password"] == SECRET
    with open(cfg["log-path"]) as f:
        assert SECRET not in f.read()
    assert not os.path.exists(cfg["tasks-db-path"])


def test_migrate_external_and_records_not_tasks_db(tmp_path, conf_factory, capsys, fake_pg, r110):
    conf, cfg = ext_conf(conf_factory)
    schema.ensure_database(cfg["records-db-path"], schema.RECORDS, 1)
    fake_pg.tables, fake_pg.versions, fake_pg.count = {"tasks", "micropvr_schema"}, [1], 4
    pidfile = str(tmp_path / "pid")
    assert migrate.main(["-c", conf, "--pidfile", pidfile], r110) == 0
    out = capsys.readouterr().out
    assert f"{cfg['records-db-path']}: migrated schema version 1 -> 2 (0 rows)" in out
    assert "postgresql://micropvr@127.0.0.1:5432/micropvr: migrated schema version 1 -> 2 (4 rows)" in out
    assert fake_pg.versions == [2]
    assert "password" not in fake_pg.connects[-1]  # no password file: none sent
    assert not os.path.exists(cfg["tasks-db-path"])
    assert migrate.main(["-c", conf, "--pidfile", pidfile], r110) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_migrate_reports_unreachable_server(tmp_path, conf_factory, capsys, monkeypatch, r110):
    drv = FakeDriver(MYSQL, fail_on="information_schema")
    monkeypatch.setitem(sys.modules, "pymysql", drv)
    conf, _ = ext_conf(conf_factory, MYSQL, **{"tasks-db-password-file": password_file(tmp_path)})
    assert migrate.main(["-c", conf, "--pidfile", str(tmp_path / "pid")], r110) == 1
    err = capsys.readouterr().err
    assert err.startswith("micropvr: micropvr-migrate: mysql://micropvr@127.0.0.1:3306/micropvr: error near")
    assert SECRET not in err


def ext_store(tmp_path, engine=POSTGRESQL, version=1, **kw):
    db, drv = fake_db(engine, tables={"tasks", "micropvr_schema"}, versions=[version], **kw)
    st = store.ExternalStore(db, str(tmp_path / "records.db"), version)
    assert st.ensure_databases() == [str(tmp_path / "records.db")]
    return st, drv


@pytest.mark.parametrize("engine", ENGINES)
def test_create_task_writes_task_externally_and_record_in_sqlite(tmp_path, engine):
    st, drv = ext_store(tmp_path, engine, 2)
    drv.next_id = 41
    assert st.create_task(7, "News", "2024-05-01 20:00:00", 90) == {"task_id": 41, "record_id": 1}
    insert = [s for s in drv.log if s.startswith("INSERT INTO tasks")]
    assert insert == [external.insert_task_sql(engine, 2) +
                      " [7, 'News', 1714593600, 5400, 1714599000, '/var/pvr']"]
    assert drv.log[-2:] == ["COMMIT", "CLOSE"]
    assert st.get_records() == [{"id": 1, "task_id": 41, "channel_id": 7,
                                 "path": "/var/pvr/ch_7/41_20240501200000.ts",
                                 "start_time": 1714593600, "duration": 5400,
                                 "end_time": 1714599000, "size": 0}]
    assert not os.path.exists(tmp_path / "tasks.db")


def test_create_task_schema_1_values(tmp_path):
    st, drv = ext_store(tmp_path, MYSQL, 1)
    st.create_task(8, "Film", 1714600800, 30, "/srv/rec")
    assert [s for s in drv.log if s.startswith("INSERT")] == [
        external.insert_task_sql(MYSQL, 1) + " [8, 'Film', '2024-05-01 22:00:00', 30, '/srv/rec']"]


def test_failed_external_commit_leaves_no_record(tmp_path):
    st, drv = ext_store(tmp_path, POSTGRESQL, 1, fail_commit=True)
    with pytest.raises(store.DatabaseError, match="commit failed"):
        st.create_task(7, "News", "2024-05-01 20:00:00", 90)
    assert st.get_records() == []
    assert drv.log[-2:] == ["ROLLBACK", "CLOSE"]


def test_get_cancel_count_external(tmp_path):
    st, drv = ext_store(tmp_path, POSTGRESQL, 2, count=5)
    assert st.get_tasks(channel_id=7) == [{"id": 1, "channel_id": 7}]
    assert drv.log[-3] == (external.select_tasks_sql(2, by_channel=True) + " [7]")
    st.get_tasks(status="cancelled")
    assert drv.log[-3].endswith("WHERE status = %s ORDER BY id ['cancelled']")
    assert st.cancel_task(3) == {"task_id": 3, "status": "cancelled"}
    assert "UPDATE tasks SET status = 'cancelled' WHERE id = %s [3]" in drv.log
    drv.rowcount = 0
    with pytest.raises(store.NotFound, match="task 9 not found"):
        st.cancel_task(9)
    assert st.counts() == {"tasks": 5, "records": 0}


def test_api_answers_external_errors_as_database_error(tmp_path, r19):
    from micropvr_standin import api, rpc
    st, drv = ext_store(tmp_path, POSTGRESQL, 1)
    drv.fail_on = "FROM tasks"
    a = api.Api(r19, st, lambda: dict(config.DEFAULTS), load_avg=lambda: 0.0)
    with pytest.raises(rpc.RpcError) as exc:
        a.get_tasks()
    assert exc.value.code == rpc.DATABASE_ERROR
    assert SECRET not in str(exc.value.data) and "********" in exc.value.data


def test_drivers_are_imported_lazily():
    """Importing the daemon and micropvr-migrate never imports a database driver."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import micropvr_standin.daemon, micropvr_standin.migrate; "
            "sys.exit(1 if {'psycopg2', 'pymysql'} & set(sys.modules) else 0)")
    src = os.path.dirname(os.path.dirname(os.path.abspath(external.__file__)))
    assert subprocess.run([sys.executable, "-c", code, src], check=False).returncode == 0
