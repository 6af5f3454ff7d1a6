"""``/usr/sbin/micropvr``: the stand-in daemon (runs in the foreground; the init script
backgrounds it with start-stop-daemon).

    micropvr [-c CONFIG]                       run the daemon
    micropvr [-c CONFIG] --check               check config and database schemas, then exit
    micropvr [-c CONFIG] --wait-ready --pid N [--timeout S]
                                               wait until daemon N answers JSON-RPC (exit 0),
                                               has died (exit 1) or the timeout passed (exit 2)
    micropvr --version

Exit status 1 with ``micropvr: <reason>`` on stderr (and in the log when possible) when the
configuration is malformed (``micropvr.conf:LINE: reason``; also a missing database driver or
a bad ``tasks-db-password-file``), a database has a schema this release cannot use, the external
tasks database (``tasks-db-engine``) cannot be reached, or the RPC port cannot be bound.  SIGTERM/SIGINT stop it, SIGHUP re-reads
the configuration (log level, score limits; a changed listen address needs a restart).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from typing import Any

from . import api, config, external, rpc, schema, server, store, versioninfo
from .versioninfo import Release

log = logging.getLogger("micropvr")

LOG_FORMAT = "%(asctime)s.%(msecs)03d [%(levelname)s] %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"

EXIT_OK, EXIT_FAIL, EXIT_TIMEOUT = 0, 1, 2


def log_level(verbose: int) -> int:
    """log-verbose-level 0..6 -> logging level."""
    if verbose <= 1:
        return logging.ERROR
    if verbose == 2:
        return logging.WARNING
    if verbose == 3:
        return logging.INFO
    return logging.DEBUG


def close_logging() -> None:
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def setup_logging(path: str, verbose: int = 3) -> None:
    close_logging()
    log.propagate = False
    log.setLevel(log_level(verbose))
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handler: logging.Handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        print(f"micropvr: cannot open log {path}: {exc.strerror}; logging to stderr", file=sys.stderr)
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
    log.addHandler(handler)


def fail(message: str) -> int:
    """Report a fatal problem in the log (if set up) and on stderr; exit status 1."""
    if log.handlers:
        log.error("%s", message)
    print(f"micropvr: {message}", file=sys.stderr)
    return EXIT_FAIL


def load_config(path: str, release: Release) -> tuple[dict[str, Any], list[str]]:
    return config.load(path, release.extra_config_keys)


def open_external(cfg: dict[str, Any], config_path: str) -> external.ExternalDB | None:
    """The external tasks database of a config (None: SQLite tasks.db).

    A missing driver or a bad password file is a ConfigError naming the config line.
    """
    try:
        return external.open_database(cfg)
    except external.DriverMissing as err:
        raise config.ConfigError(config_path, config.locate(config_path, "tasks-db-engine"),
                                 str(err)) from None
    except external.PasswordFileError as err:
        raise config.ConfigError(config_path,
                                 config.locate(config_path, "tasks-db-password-file"),
                                 str(err)) from None


def make_store(cfg: dict[str, Any], config_path: str, release: Release) -> store.Store:
    db = open_external(cfg, config_path)
    if db is None:
        return store.Store(cfg["tasks-db-path"], cfg["records-db-path"], release.schema_version)
    return store.ExternalStore(db, cfg["records-db-path"], release.schema_version)


def connect_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def rpc_call(host: str, port: int, method: str, params: dict | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call (used by --wait-ready; handy in tests too)."""
    req = {"jsonrpc": "2.0", "method": method, "params": params or {}, "id": 1}
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


def wait_ready(cfg: dict[str, Any], pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    host = connect_host(cfg["json-rpc-listen-host"])
    port = cfg["json-rpc-listen-port"]
    settle_until = time.monotonic() + 1.0
    while True:
        if not pid_alive(pid):
            return EXIT_FAIL
        if cfg["json-rpc-enabled"]:
            try:
                rpc_call(host, port, "get_version", timeout=1.0)
                if pid_alive(pid):
                    return EXIT_OK
            except (OSError, ValueError, RuntimeError):
                pass
        elif time.monotonic() >= settle_until:
            return EXIT_OK  # no port to probe: alive after a second counts as started
        if time.monotonic() >= deadline:
            return EXIT_TIMEOUT
        time.sleep(0.2)


class Daemon:
    def __init__(self, release: Release, config_path: str):
        self.release = release
        self.config_path = config_path
        self.cfg: dict[str, Any] = {}
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.rpc_server: server.RpcServer | None = None
        self.api: api.Api | None = None
        self.store: store.Store | None = None
        self.holders: list[sqlite3.Connection] = []  # open connections kept while serving (WAL)

    # -- startup -------------------------------------------------------------------------------
    def load(self) -> int | None:
        """Config, logging and schema checks.  Returns an exit status on failure, else None."""
        try:
            self.cfg, warnings = load_config(self.config_path, self.release)
        except config.ConfigError as err:
            # No usable log-path: log to the default log if its directory exists.
            if os.path.isdir(os.path.dirname(config.DEFAULTS["log-path"])):
                setup_logging(config.DEFAULTS["log-path"])
            else:
                close_logging()
            return fail(str(err))
        setup_logging(self.cfg["log-path"], self.cfg["log-verbose-level"])
        for w in warnings:
            log.warning("%s", w)
        try:
            self.store = make_store(self.cfg, self.config_path, self.release)
        except config.ConfigError as err:
            return fail(str(err))
        try:
            self.store.check_databases(self.release.version)
        except (schema.SchemaError, external.ExternalError) as err:
            return fail(str(err))
        return None

    def start(self) -> int | None:
        assert self.store is not None
        try:
            for path in self.store.ensure_databases():
                log.info("created database %s (schema version %d)", path, self.release.schema_version)
            if self.release.journal_mode:
                for path, (old, new) in self.store.set_journal_mode(self.release.journal_mode).items():
                    if old != new:
                        log.info("database %s: journal mode %s -> %s", path, old, new)
                    # Like a real daemon, keep each database open while serving: in WAL mode its
                    # -wal and -shm files stay beside it until the daemon stops.
                    self.holders.append(schema.connect(path))
                    self.holders[-1].execute("SELECT count(*) FROM sqlite_master").fetchone()
            os.makedirs(self.cfg["records-link-dir"], exist_ok=True)
            if isinstance(self.store, store.ExternalStore):
                log.info("tasks in %s (tasks-db-engine %s), records in %s",
                         self.store.external.label, self.store.external.engine,
                         self.cfg["records-db-path"])
        except Exception as err:  # noqa: BLE001 - OSError, SchemaError, sqlite3.Error, ExternalError
            return fail(f"cannot prepare databases: {err}")
        self.api = api.Api(self.release, self.store, lambda: self.cfg)
        dispatcher = self.api.register(rpc.Dispatcher(self._internal_error))
        host, port = self.cfg["json-rpc-listen-host"], self.cfg["json-rpc-listen-port"]
        if self.cfg["json-rpc-enabled"]:
            try:
                self.rpc_server = server.RpcServer(host, port, dispatcher)
            except OSError as err:
                return fail(f"cannot listen on {host}:{port}: {err.strerror or err}")
            threading.Thread(target=self.rpc_server.serve_forever, name="json-rpc",
                             kwargs={"poll_interval": 0.2}, daemon=True).start()
            where = f"JSON-RPC listening on {host}:{port}"
        else:
            where = "JSON-RPC disabled"
        log.info("micropvr %s started: schema version %d, %s, pid %d",
                 self.release.version, self.release.schema_version, where, os.getpid())
        threading.Thread(target=self._state_loop, name="state-log", daemon=True).start()
        return None

    @staticmethod
    def _internal_error(method: str, exc: BaseException) -> None:
        log.error("internal error in %s: %s", method, exc, exc_info=exc)

    # -- running ---------------------------------------------------------------------------------
    def _state_loop(self) -> None:
        while not self.stop_event.is_set():
            period = self.cfg.get("log-state-period", 0)
            if period <= 0:
                self.stop_event.wait(5)
                continue
            if self.stop_event.wait(period):
                return
            try:
                state = self.api.is_alive() if self.api else {}
                counts = self.store.counts() if self.store else {}
                line = (f"{time.strftime(LOG_DATEFMT)} is_alive={state.get('is_alive')} "
                        f"score={state.get('score')} sessions={state.get('session_count')} "
                        f"tasks={counts.get('tasks')} records={counts.get('records')}\n")
                with open(self.cfg["log-state-path"], "a", encoding="utf-8") as f:
                    f.write(line)
            except Exception as exc:  # noqa: BLE001
                log.warning("state log: %s", exc)

    def reload(self) -> None:
        try:
            cfg, warnings = load_config(self.config_path, self.release)
        except config.ConfigError as err:
            log.error("reload failed, keeping the running configuration: %s", err)
            return
        for key in ("json-rpc-enabled", "json-rpc-listen-host", "json-rpc-listen-port",
                    "records-db-path", "tasks-db-path", "tasks-db-engine",
                    *config.EXTERNAL_DB_KEYS):
            if cfg[key] != self.cfg[key]:
                log.warning("reload: change of '%s' needs a restart; keeping %r", key, self.cfg[key])
                cfg[key] = self.cfg[key]
        self.cfg = cfg
        setup_logging(cfg["log-path"], cfg["log-verbose-level"])
        for w in warnings:
            log.warning("%s", w)
        log.info("configuration reloaded from %s", self.config_path)

    def run(self) -> int:
        status = self.load()
        if status is not None:
            return status
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        status = self.start()
        if status is not None:
            return status
        while not self.stop_event.wait(0.5):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        log.info("micropvr %s stopping (signal received)", self.release.version)
        if self.rpc_server is not None:
            self.rpc_server.shutdown()
            self.rpc_server.server_close()
        for conn in self.holders:
            conn.close()
        log.info("micropvr %s stopped", self.release.version)
        return EXIT_OK


def main(argv: list[str] | None = None, release: Release | None = None) -> int:
    parser = argparse.ArgumentParser(prog="micropvr", description="MicroPVR records manager (test stand-in)")
    parser.add_argument("-c", "--config", default=config.DEFAULT_CONFIG_PATH)
    parser.add_argument("--check", action="store_true", help="check config and databases, then exit")
    parser.add_argument("--wait-ready", action="store_true", help="wait for a started daemon")
    parser.add_argument("--pid", type=int, help="pid of the daemon for --wait-ready")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    release = release or versioninfo.current_release()

    if args.version:
        print(f"micropvr {release.version} (stand-in), schema version {release.schema_version}")
        return EXIT_OK
    if args.wait_ready:
        if args.pid is None:
            parser.error("--wait-ready needs --pid")
        try:
            cfg, _ = load_config(args.config, release)
        except config.ConfigError as err:
            print(f"micropvr: {err}", file=sys.stderr)
            return EXIT_FAIL
        return wait_ready(cfg, args.pid, args.timeout)

    daemon = Daemon(release, args.config)
    if args.check:
        status = daemon.load()
        if status is None:
            print(f"micropvr {release.version}: configuration {args.config} and databases OK")
            return EXIT_OK
        return status
    return daemon.run()
