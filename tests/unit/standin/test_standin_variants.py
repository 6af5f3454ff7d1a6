"""Build variants of the stand-in (versioninfo.VARIANTS): the knobs, the rendered package files,
micropvr-migrate refusing a newer schema, and the WAL journal of the strict 1.10 daemon."""

import os
import sqlite3

import pytest

import render_template
from micropvr_standin import daemon, migrate, schema, store, versioninfo

PKG = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standin", "pkg"))


def journal(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def make_dbs(tmp_path, version):
    st = store.Store(str(tmp_path / "tasks.db"), str(tmp_path / "records.db"), version)
    st.ensure_databases()
    return st


def test_default_variant_is_the_stand_in_as_before():
    assert [versioninfo.debian_version(v) for v in versioninfo.RELEASES] == ["1.9.0-1", "1.10.0-1", "1.10.1-1"]
    assert versioninfo.packages() == ("micropvr", "micropvs")
    assert [versioninfo.get_release(v).has_migrate for v in versioninfo.RELEASES] == [False, True, True]
    assert all(versioninfo.get_release(v).journal_mode is None for v in versioninfo.RELEASES)
    assert versioninfo.get_release("1.10.0") == versioninfo.RELEASES["1.10.0"]


def test_strict_knobs():
    strict = versioninfo.get_variant("strict")
    assert (strict.subdir, strict.epoch, strict.wal_since) == ("strict", 1, "1.10")
    assert [versioninfo.debian_version(v, "strict") for v in versioninfo.RELEASES] == \
        ["1:1.9.0-1", "1:1.10.0-1", "1:1.10.1-1"]
    assert versioninfo.deb_filename("micropvr", "1.10.0", "strict") == "micropvr_1.10.0-1_amd64.deb"
    assert versioninfo.packages("strict") == ("micropvr", "micropvs", "micropvr-control")
    r19, r110 = versioninfo.get_release("1.9.0", "strict"), versioninfo.get_release("1.10.0", "strict")
    assert (r19.has_migrate, r19.journal_mode, r19.schema_version, r19.variant) == (True, None, 1, "strict")
    assert (r110.journal_mode, r110.broken_score) == ("wal", False)
    assert versioninfo.get_release("1.10.1", "strict").broken_score is True


def test_unknown_variant_is_an_error():
    with pytest.raises(ValueError, match="unknown stand-in variant 'lax'; known: default, strict"):
        versioninfo.get_release("1.9.0", "lax")


def render(path, version, variant, **extra):
    with open(os.path.join(PKG, path), encoding="utf-8") as f:
        return render_template.render(f.read(), version, os.path.dirname(os.path.join(PKG, path)), extra, variant)


def test_postinst_runs_migrate_per_variant():
    assert "micropvr-migrate" not in render("micropvr/postinst.in", "1.9.0", "default")
    assert "/usr/sbin/micropvr-migrate --quiet" in render("micropvr/postinst.in", "1.10.0", "default")
    strict = render("micropvr/postinst.in", "1.9.0", "strict")
    assert "/usr/sbin/micropvr-migrate --quiet" in strict
    assert "standin_fault_hook micropvr 1:1.9.0-1 postinst" in strict
    assert "@" not in strict.replace("example.invalid", "")


def test_companion_control_depends_on_the_exact_version():
    control = render("micropvr-control/control.in", "1.10.0", "strict", INSTALLED_SIZE="9")
    assert "Package: micropvr-control\nVersion: 1:1.10.0-1\n" in control
    assert "Depends: micropvr (= 1:1.10.0-1), python3 (>= 3.9)\n" in control


def test_if_lines_need_a_known_key():
    with pytest.raises(KeyError, match="@if NO_SUCH@"):
        render_template.render("@if NO_SUCH@x\n", "1.9.0", PKG)


def test_build_info_lines(capsys):
    assert render_template.main(["--variant", "strict", "info", "1.9.0"]) == 0
    assert capsys.readouterr().out == "1 yes 1:1.9.0-1\n"
    assert render_template.main(["variants"]) == 0
    assert capsys.readouterr().out == "default .\nstrict strict\n"
    assert render_template.main(["--variant", "strict", "packages"]) == 0
    assert capsys.readouterr().out.split() == ["micropvr", "micropvs", "micropvr-control"]


@pytest.mark.parametrize("variant", ["default", "strict"])
def test_migrate_refuses_a_newer_schema_and_changes_nothing(tmp_path, conf_factory, capsys, variant):
    conf, cfg = conf_factory()
    make_dbs(tmp_path, 2)
    before = open(cfg["records-db-path"], "rb").read()
    r19 = versioninfo.get_release("1.9.0", variant)
    assert migrate.main(["-c", conf, "--pidfile", str(tmp_path / "pid")], r19) == 1
    err = capsys.readouterr().err
    for db in ("records", "tasks"):
        assert (f"micropvr-migrate: database {cfg[db + '-db-path']} has schema version 2, newer than 1 supported "
                "by micropvr 1.9.0; restore a backup of this release's databases") in err
    assert open(cfg["records-db-path"], "rb").read() == before


def test_migrate_refuses_newer_even_when_another_database_is_older(tmp_path, conf_factory, capsys):
    conf, cfg = conf_factory()
    make_dbs(tmp_path, 1)
    conn = sqlite3.connect(cfg["records-db-path"])
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    r110 = versioninfo.get_release("1.10.0", "strict")
    assert migrate.main(["-c", conf, "--pidfile", str(tmp_path / "pid")], r110) == 1
    assert "records.db has schema version 3, newer than 2 supported by micropvr 1.10.0" in capsys.readouterr().err
    assert schema.read_schema_version(cfg["tasks-db-path"]) == 1  # nothing migrated


def test_strict_1_9_migrate_on_its_own_schema_is_a_no_op(tmp_path, conf_factory, capsys):
    conf, _ = conf_factory()
    make_dbs(tmp_path, 1)
    assert migrate.main(["-c", conf, "--pidfile", str(tmp_path / "pid")],
                        versioninfo.get_release("1.9.0", "strict")) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_set_journal_mode(tmp_path):
    make_dbs(tmp_path, 2)
    path = str(tmp_path / "records.db")
    assert schema.set_journal_mode(path, "wal") == ("delete", "wal")
    assert schema.set_journal_mode(path, "wal") == ("wal", "wal")
    assert journal(path) == "wal"  # persistent in the file


def start_daemon(conf, release):
    d = daemon.Daemon(release, conf)
    assert d.load() is None
    assert d.start() is None
    return d


def stop_daemon(d):
    d.rpc_server.shutdown()
    d.rpc_server.server_close()
    for conn in d.holders:
        conn.close()
    daemon.close_logging()


def test_strict_1_10_switches_to_wal_and_keeps_the_files_open(tmp_path, conf_factory):
    conf, cfg = conf_factory()
    make_dbs(tmp_path, 2)
    d = start_daemon(conf, versioninfo.get_release("1.10.0", "strict"))
    try:
        assert journal(cfg["records-db-path"]) == journal(cfg["tasks-db-path"]) == "wal"
        d.store.create_task(7, "News", "2024-05-01 20:00:00", 90)
        assert os.path.exists(cfg["records-db-path"] + "-wal") and os.path.exists(cfg["tasks-db-path"] + "-shm")
        assert d.store.counts() == {"tasks": 1, "records": 1}
    finally:
        stop_daemon(d)
    assert not os.path.exists(cfg["records-db-path"] + "-wal")  # checkpointed when the last one closed
    with open(cfg["log-path"]) as f:
        assert "journal mode delete -> wal" in f.read()


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_1_9_daemon_works_on_a_file_in_either_mode_and_keeps_it(tmp_path, conf_factory, mode):
    conf, cfg = conf_factory()
    make_dbs(tmp_path, 1)
    for db in ("records", "tasks"):
        schema.set_journal_mode(cfg[db + "-db-path"], mode)
    d = start_daemon(conf, versioninfo.get_release("1.9.0", "strict"))
    try:
        assert d.store.create_task(7, "News", "2024-05-01 20:00:00", 90) == {"task_id": 1, "record_id": 1}
        assert d.store.get_records(task_id=1)[0]["start_time"] == "2024-05-01 20:00:00"
    finally:
        stop_daemon(d)
    assert journal(cfg["records-db-path"]) == journal(cfg["tasks-db-path"]) == mode


def test_default_1_10_leaves_the_journal_alone(tmp_path, conf_factory):
    conf, cfg = conf_factory()
    make_dbs(tmp_path, 2)
    d = start_daemon(conf, versioninfo.get_release("1.10.0"))
    try:
        assert journal(cfg["records-db-path"]) == "delete" and d.holders == []
    finally:
        stop_daemon(d)
