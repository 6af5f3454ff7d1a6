import sqlite3

import pytest

from micropvr_standin import daemon, migrate, schema, store
from micropvr_standin.schema import SchemaError


def columns(path, table):
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def rows(path, table):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        conn.close()


def uv(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def make_store(tmp_path, version):
    st = store.Store(str(tmp_path / "tasks.db"), str(tmp_path / "records.db"), version)
    assert st.ensure_databases() == [str(tmp_path / "records.db"), str(tmp_path / "tasks.db")]
    return st


def test_schema_1_created(tmp_path):
    st = make_store(tmp_path, 1)
    assert uv(st.tasks_path) == 1 and uv(st.records_path) == 1
    assert columns(st.tasks_path, "tasks") == [
        "id", "channel_id", "name", "start_time", "duration", "record_location", "status"]
    assert columns(st.records_path, "records") == [
        "id", "task_id", "channel_id", "path", "start_time", "duration", "size"]
    assert st.ensure_databases() == []  # idempotent


def test_schema_2_created(tmp_path):
    st = make_store(tmp_path, 2)
    assert uv(st.tasks_path) == 2 and uv(st.records_path) == 2
    assert columns(st.tasks_path, "tasks") == [
        "id", "channel_id", "name", "start_time", "duration", "end_time", "record_location", "status"]
    assert columns(st.records_path, "records") == [
        "id", "task_id", "channel_id", "path", "start_time", "duration", "end_time", "size"]


def test_store_writes_schema_native_rows(tmp_path):
    (tmp_path / "a").mkdir()
    s1 = make_store(tmp_path / "a", 1)
    assert s1.create_task(7, "News", "2024-05-01 20:00:00", 90) == {"task_id": 1, "record_id": 1}
    assert s1.create_task(8, "Film", 1714600800, 120, "/srv/rec") == {"task_id": 2, "record_id": 2}
    assert rows(s1.tasks_path, "tasks") == [
        (1, 7, "News", "2024-05-01 20:00:00", 90, "/var/pvr", "scheduled"),
        (2, 8, "Film", "2024-05-01 22:00:00", 120, "/srv/rec", "scheduled")]
    assert rows(s1.records_path, "records") == [
        (1, 1, 7, "/var/pvr/ch_7/1_20240501200000.ts", "2024-05-01 20:00:00", 90, 0),
        (2, 2, 8, "/srv/rec/ch_8/2_20240501220000.ts", "2024-05-01 22:00:00", 120, 0)]
    (tmp_path / "b").mkdir()
    s2 = make_store(tmp_path / "b", 2)
    s2.create_task(7, "News", "2024-05-01T20:00:00Z", 90)
    assert rows(s2.tasks_path, "tasks") == [
        (1, 7, "News", 1714593600, 5400, 1714599000, "/var/pvr", "scheduled")]
    assert rows(s2.records_path, "records") == [
        (1, 1, 7, "/var/pvr/ch_7/1_20240501200000.ts", 1714593600, 5400, 1714599000, 0)]


def test_store_reads_and_cancels(tmp_path):
    st = make_store(tmp_path, 2)
    st.create_task(1, "a", 1000, 1)
    st.create_task(2, "b", 2000, 2)
    assert [t["name"] for t in st.get_tasks(channel_id=2)] == ["b"]
    assert [r["task_id"] for r in st.get_records()] == [1, 2]
    assert st.cancel_task(1) == {"task_id": 1, "status": "cancelled"}
    assert [t["id"] for t in st.get_tasks(status="cancelled")] == [1]
    with pytest.raises(store.NotFound):
        st.cancel_task(99)
    assert st.delete_records([1, 5]) == {"deleted": 1}
    assert st.counts() == {"tasks": 2, "records": 1}


@pytest.mark.parametrize("bad", ["2024-05-01", "yesterday", -1, True, 1.5, None])
def test_bad_start_time(bad):
    with pytest.raises(ValueError):
        store.parse_start_time(bad)


def test_migration_1_to_2_changes_rows_exactly(tmp_path):
    st = make_store(tmp_path, 1)
    st.create_task(7, "News", "2024-05-01 20:00:00", 90)
    st.create_task(8, "Night film", "2024-12-31 23:30:00", 150, "/srv/rec")
    st.cancel_task(2)
    conn = sqlite3.connect(st.records_path)
    conn.execute("UPDATE records SET size = 123456 WHERE id = 1")
    conn.commit()
    conn.close()

    for path, kind in ((st.records_path, schema.RECORDS), (st.tasks_path, schema.TASKS)):
        assert schema.migrate_file(path, kind, 2) == f"{path}: migrated schema version 1 -> 2 (2 rows)"

    assert uv(st.tasks_path) == 2 and uv(st.records_path) == 2
    assert rows(st.tasks_path, "tasks") == [
        # id, channel, name, start_time (epoch), duration (s), end_time, location, status
        (1, 7, "News", 1714593600, 5400, 1714599000, "/var/pvr", "scheduled"),
        (2, 8, "Night film", 1735687800, 9000, 1735696800, "/srv/rec", "cancelled")]
    assert rows(st.records_path, "records") == [
        (1, 1, 7, "/var/pvr/ch_7/1_20240501200000.ts", 1714593600, 5400, 1714599000, 123456),
        (2, 2, 8, "/srv/rec/ch_8/2_20241231233000.ts", 1735687800, 9000, 1735696800, 0)]
    # Same columns and indexes as a database created at schema 2.
    (tmp_path / "fresh").mkdir()
    fresh = make_store(tmp_path / "fresh", 2)
    for path, fpath, table in ((st.tasks_path, fresh.tasks_path, "tasks"),
                               (st.records_path, fresh.records_path, "records")):
        assert columns(path, table) == columns(fpath, table)
        q = "SELECT name FROM sqlite_master WHERE type='index' ORDER BY name"
        assert sqlite3.connect(path).execute(q).fetchall() == sqlite3.connect(fpath).execute(q).fetchall()
    # And the 1.10 store keeps writing into it.
    st2 = store.Store(st.tasks_path, st.records_path, 2)
    assert st2.create_task(9, "x", 0, 1) == {"task_id": 3, "record_id": 3}


def test_migration_is_idempotent(tmp_path):
    st = make_store(tmp_path, 1)
    st.create_task(7, "News", "2024-05-01 20:00:00", 90)
    conn = schema.connect(st.tasks_path)
    assert schema.migrate_1_to_2(conn, schema.TASKS) == 1
    before = rows(st.tasks_path, "tasks")
    assert schema.migrate_1_to_2(conn, schema.TASKS) == -1
    conn.close()
    assert rows(st.tasks_path, "tasks") == before
    assert schema.migrate_file(st.tasks_path, schema.TASKS, 2) == f"{st.tasks_path}: already at schema version 2"


def test_failed_migration_rolls_back(tmp_path):
    st = make_store(tmp_path, 1)
    st.create_task(7, "News", "2024-05-01 20:00:00", 90)
    conn = sqlite3.connect(st.tasks_path)
    conn.execute("INSERT INTO tasks (channel_id, name, start_time, duration, record_location) "
                 "VALUES (1, 'broken', 'not a time', 5, '/x')")
    conn.commit()
    conn.close()
    before = rows(st.tasks_path, "tasks")
    with pytest.raises(sqlite3.IntegrityError):
        schema.migrate_file(st.tasks_path, schema.TASKS, 2)
    assert uv(st.tasks_path) == 1
    assert rows(st.tasks_path, "tasks") == before
    assert columns(st.tasks_path, "tasks")[3:5] == ["start_time", "duration"]


def test_read_schema_version(tmp_path):
    assert schema.read_schema_version(str(tmp_path / "absent.db")) is None
    (tmp_path / "empty.db").write_bytes(b"")
    assert schema.read_schema_version(str(tmp_path / "empty.db")) is None
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SchemaError, match="cannot be read"):
        schema.read_schema_version(str(tmp_path / "junk.db"))
    conn = sqlite3.connect(tmp_path / "noversion.db")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(SchemaError, match="no schema version"):
        schema.read_schema_version(str(tmp_path / "noversion.db"))


def test_check_version_messages():
    schema.check_version("/x.db", None, 1, "1.9.0")
    schema.check_version("/x.db", 1, 1, "1.9.0")
    with pytest.raises(SchemaError) as exc:
        schema.check_version("/etc/micropvr/records.db", 2, 1, "1.9.0")
    assert str(exc.value) == ("database /etc/micropvr/records.db has schema version 2, newer than 1 "
                              "supported by micropvr 1.9.0")
    with pytest.raises(SchemaError) as exc:
        schema.check_version("/etc/micropvr/tasks.db", 1, 2, "1.10.0")
    assert str(exc.value) == ("database /etc/micropvr/tasks.db has schema version 1, older than 2 "
                              "required by micropvr 1.10.0; run micropvr-migrate")


def test_1_9_refuses_schema_2(tmp_path, conf_factory, capsys, r19):
    conf, cfg = conf_factory()
    make_store(tmp_path, 2)
    assert daemon.main(["-c", conf, "--check"], r19) == 1
    msg = (f"database {cfg['records-db-path']} has schema version 2, newer than 1 supported by "
           "micropvr 1.9.0")
    assert capsys.readouterr().err == f"micropvr: {msg}\n"
    with open(cfg["log-path"]) as f:
        assert f.read().rstrip().endswith("[ERROR] " + msg)


def test_1_10_refuses_schema_1_and_migrate_fixes_it(tmp_path, conf_factory, capsys, r110):
    conf, cfg = conf_factory()
    make_store(tmp_path, 1).create_task(7, "News", "2024-05-01 20:00:00", 90)
    assert daemon.main(["-c", conf, "--check"], r110) == 1
    assert "has schema version 1, older than 2 required by micropvr 1.10.0; run micropvr-migrate" in \
        capsys.readouterr().err
    pidfile = tmp_path / "micropvr.pid"
    assert migrate.main(["-c", conf, "--pidfile", str(pidfile)], r110) == 0
    out = capsys.readouterr().out
    assert "records.db: migrated schema version 1 -> 2 (1 rows)" in out
    assert "tasks.db: migrated schema version 1 -> 2 (1 rows)" in out
    assert daemon.main(["-c", conf, "--check"], r110) == 0
    assert migrate.main(["-c", conf, "--pidfile", str(pidfile)], r110) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert uv(cfg["tasks-db-path"]) == 2


def test_migrate_refuses_while_daemon_runs(tmp_path, conf_factory, capsys, r110, monkeypatch):
    conf, cfg = conf_factory()
    make_store(tmp_path, 1)
    pidfile = tmp_path / "micropvr.pid"
    pidfile.write_text("4242\n")
    monkeypatch.setattr(migrate, "running_pid", lambda path: 4242)
    assert migrate.main(["-c", conf, "--pidfile", str(pidfile)], r110) == 1
    assert "daemon is running (pid 4242); stop it first" in capsys.readouterr().err
    assert uv(cfg["tasks-db-path"]) == 1
    assert migrate.main(["-c", conf, "--pidfile", str(pidfile), "--force"], r110) == 0
    assert uv(cfg["tasks-db-path"]) == 2


def test_migrate_refuses_newer_schema(tmp_path, conf_factory, capsys, r110):
    conf, cfg = conf_factory()
    make_store(tmp_path, 2)
    conn = sqlite3.connect(cfg["records-db-path"])
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    assert migrate.main(["-c", conf, "--pidfile", str(tmp_path / "p")], r110) == 1
    assert "schema version 3, newer than 2" in capsys.readouterr().err
