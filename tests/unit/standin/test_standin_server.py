"""The JSON-RPC server over real TCP, and the daemon as a process (no packages needed)."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from micropvr_standin import api, config, daemon, rpc, server, store

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standin", "src"))


@pytest.fixture
def rpc_server(tmp_path, r19):
    st = store.Store(str(tmp_path / "tasks.db"), str(tmp_path / "records.db"), 1)
    st.ensure_databases()
    a = api.Api(r19, st, lambda: dict(config.DEFAULTS), load_avg=lambda: 0.0)
    srv = server.RpcServer("127.0.0.1", 0, a.register(rpc.Dispatcher()))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv.server_address
    srv.shutdown()
    srv.server_close()


def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "server closed the connection"
        data += chunk
    return data


def test_framing_over_tcp(rpc_server):
    with socket.create_connection(rpc_server, timeout=5) as s:
        # No newline, and split in two sends.
        s.sendall(b'{"jsonrpc":"2.0","method":"get_vers')
        time.sleep(0.05)
        s.sendall(b'ion","id":1}')
        line = read_line(s)
        assert json.loads(line) == {"jsonrpc": "2.0", "result": {"version": "1.9.0", "schema_version": 1},
                                    "id": 1}
        # Same connection, two pipelined requests -> two lines, in order.
        s.sendall(b'{"jsonrpc":"2.0","method":"is_alive","id":2}\n{"jsonrpc":"2.0","method":"x","id":3}\n')
        lines = b""
        while lines.count(b"\n") < 2:
            lines += s.recv(4096)
        first, second = [json.loads(x) for x in lines.splitlines()]
        assert first["result"]["is_alive"] is True and first["id"] == 2
        assert second["error"]["code"] == -32601 and second["id"] == 3
        # Garbage line: parse error, connection stays usable.
        s.sendall(b"GET / HTTP/1.0\n")
        assert json.loads(read_line(s))["error"]["code"] == -32700
        s.sendall(b'{"jsonrpc":"2.0","method":"get_version","params":[],"id":4}')
        assert json.loads(read_line(s))["error"]["code"] == -32602


def test_incomplete_request_at_eof_gets_parse_error(rpc_server):
    with socket.create_connection(rpc_server, timeout=5) as s:
        s.sendall(b'{"jsonrpc":"2.0",')
        s.shutdown(socket.SHUT_WR)
        assert json.loads(read_line(s))["error"]["code"] == -32700


def test_many_concurrent_clients(rpc_server):
    errors = []

    def client(n):
        try:
            with socket.create_connection(rpc_server, timeout=10) as s:
                for i in range(5):
                    req = {"jsonrpc": "2.0", "method": "create_new_task", "id": i, "params": {
                        "channel_id": n, "name": f"c{n}-{i}", "start_time": 1700000000 + i, "duration": 5}}
                    s.sendall(json.dumps(req).encode() + b"\n")
                    assert "task_id" in json.loads(read_line(s))["result"]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(30)]
    # Hold all connections open at once before anyone finishes.
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    res = daemon.rpc_call(*rpc_server, "get_records")
    assert len(res) == 150


# -- the daemon as a process -------------------------------------------------------------------
def start_daemon(conf, version):
    code = ("import sys; sys.path.insert(0, %r); from micropvr_standin import daemon, versioninfo; "
            "sys.exit(daemon.main(sys.argv[1:], versioninfo.get_release(%r)))" % (SRC, version))
    return subprocess.Popen([sys.executable, "-B", "-c", code, "-c", conf],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_daemon_lifecycle(conf_factory, tmp_path):
    conf, cfg = conf_factory()
    proc = start_daemon(conf, "1.10.0")
    try:
        cfg_loaded, _ = config.load(conf, ("score-max-cpu-la1",))
        assert daemon.wait_ready(cfg_loaded, proc.pid, 10) == daemon.EXIT_OK
        host, port = "127.0.0.1", cfg["json-rpc-listen-port"]
        assert daemon.rpc_call(host, port, "get_version") == {"version": "1.10.0", "schema_version": 2}
        for path in (cfg["tasks-db-path"], cfg["records-db-path"]):
            assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
            assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        # reload: new score limit takes effect, listen port change is refused.
        with open(conf) as f:
            data = json.loads(f.read().split("\n", 1)[1])
        data["score-max-score"] = 0.001
        data["json-rpc-listen-port"] = 1
        with open(conf, "w") as f:
            json.dump(data, f)
        daemon.rpc_call(host, port, "standin_set_session_count", {"count": 1})
        proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while daemon.rpc_call(host, port, "is_alive")["is_alive"] and time.time() < deadline:
            time.sleep(0.05)
        assert daemon.rpc_call(host, port, "is_alive")["is_alive"] is False
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert daemon.wait_ready(cfg_loaded, proc.pid, 1) == daemon.EXIT_FAIL
    log = open(cfg["log-path"]).read()
    assert (f"micropvr 1.10.0 started: schema version 2, JSON-RPC listening on 127.0.0.1:{port}, "
            f"pid {proc.pid}") in log
    assert "change of 'json-rpc-listen-port' needs a restart" in log
    assert "micropvr 1.10.0 stopped" in log


def test_daemon_refuses_busy_port(conf_factory):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        conf, cfg = conf_factory(**{"json-rpc-listen-port": blocker.getsockname()[1]})
        proc = start_daemon(conf, "1.9.0")
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err.startswith(f"micropvr: cannot listen on 127.0.0.1:{cfg['json-rpc-listen-port']}: ")
    assert "Traceback" not in err


def test_daemon_refuses_newer_schema(conf_factory, tmp_path):
    conf, cfg = conf_factory()
    store.Store(cfg["tasks-db-path"], cfg["records-db-path"], 2).ensure_databases()
    proc = start_daemon(conf, "1.9.0")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err == (f"micropvr: database {cfg['records-db-path']} has schema version 2, newer than 1 "
                   "supported by micropvr 1.9.0\n")


def test_backup_api_copy_while_writing(conf_factory, tmp_path):
    """Another process's online-backup copy is a consistent database while writes go on."""
    conf, cfg = conf_factory()
    proc = start_daemon(conf, "1.9.0")
    stop = threading.Event()
    written = []
    try:
        cfg_loaded, _ = config.load(conf)
        assert daemon.wait_ready(cfg_loaded, proc.pid, 10) == 0
        port = cfg["json-rpc-listen-port"]

        def writer():
            i = 0
            while not stop.is_set() and i < 2000:
                daemon.rpc_call("127.0.0.1", port, "create_new_task", {
                    "channel_id": i % 5, "name": f"t{i}", "start_time": "2024-05-01 20:00:00",
                    "duration": 30}, timeout=15)
                written.append(i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        for n in range(5):
            time.sleep(0.1)
            for kind in ("tasks", "records"):
                dst_path = tmp_path / f"{kind}-{n}.db"
                src = sqlite3.connect(cfg[f"{kind}-db-path"])
                dst = sqlite3.connect(dst_path)
                src.backup(dst)
                src.close()
                assert dst.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert dst.execute("PRAGMA user_version").fetchone()[0] == 1
                ids = [r[0] for r in dst.execute(f"SELECT id FROM {kind} ORDER BY id")]
                assert ids == list(range(1, len(ids) + 1))
                dst.close()
        stop.set()
        t.join(30)
        assert len(written) > 0
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
