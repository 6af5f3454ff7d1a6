"""``/usr/sbin/micropvr-migrate`` (shipped from 1.10 on; in every release of the strict
variant): bring records.db and tasks.db (or the external tasks table, ``tasks-db-engine``) up to
the schema version of the installed release.

One transaction per database; idempotent (a database already at the target is left alone, an
absent one is skipped: the daemon creates it).  Refuses to run while the daemon runs, unless a
database needs nothing, or ``--force``.  Refuses (exit 1, nothing changed) when any database has
a schema newer than the release's: "database X has schema version 2, newer than 1 supported by
micropvr 1.9.0; restore a backup of this release's databases".

    micropvr-migrate [-c CONFIG] [--force] [--quiet]
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import config, daemon, external, schema, versioninfo
from .versioninfo import Release

DEFAULT_PIDFILE = "/run/micropvr.pid"
log = logging.getLogger("micropvr")


def running_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if not daemon.pid_alive(pid):
        return None
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii", errors="replace") as f:
            if f.read().strip() != "micropvr":
                return None
    except OSError:
        pass
    return pid


def newer_message(path: str, version: int, release: Release) -> str:
    return (f"micropvr-migrate: database {path} has schema version {version}, newer than "
            f"{release.schema_version} supported by micropvr {release.version}; restore a backup "
            "of this release's databases")


def main(argv: list[str] | None = None, release: Release | None = None) -> int:
    parser = argparse.ArgumentParser(prog="micropvr-migrate",
                                     description="migrate MicroPVR databases (test stand-in)")
    parser.add_argument("-c", "--config", default=config.DEFAULT_CONFIG_PATH)
    parser.add_argument("--pidfile", default=DEFAULT_PIDFILE)
    parser.add_argument("--force", action="store_true", help="migrate even if the daemon runs")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    release = release or versioninfo.current_release()
    target = release.schema_version

    def say(msg: str) -> None:
        log.info("micropvr-migrate: %s", msg)
        if not args.quiet:
            print(f"micropvr-migrate: {msg}")

    try:
        cfg, _ = config.load(args.config, release.extra_config_keys)
    except config.ConfigError as err:
        print(f"micropvr-migrate: {err}", file=sys.stderr)
        return 1
    daemon.setup_logging(cfg["log-path"], cfg["log-verbose-level"])
    try:
        ext = daemon.open_external(cfg, args.config)
    except config.ConfigError as err:
        return daemon.fail(f"micropvr-migrate: {err}")
    dbs = [(cfg["records-db-path"], schema.RECORDS)]
    if ext is None:
        dbs.append((cfg["tasks-db-path"], schema.TASKS))
    try:
        found = [(p, k, schema.read_schema_version(p)) for p, k in dbs]
        if ext is not None:
            found.append((ext.label, schema.TASKS, ext.read_schema_version()))
    except (schema.SchemaError, external.ExternalError) as err:
        return daemon.fail(f"micropvr-migrate: {err}")
    # A database newer than this release: never touched, whatever else is pending (a
    # downgrade of the package without the data of its release).
    newer = [(p, v) for p, _, v in found if v is not None and v > target]
    if newer:
        for path, version in newer:
            daemon.fail(newer_message(path, version, release))
        return 1
    pending = [(p, k) for p, k, v in found if v is not None and v != target]
    if not pending:
        say(f"databases are at schema version {target} (or absent); nothing to do")
        return 0
    pid = running_pid(args.pidfile)
    if pid is not None and not args.force:
        return daemon.fail(f"micropvr-migrate: the micropvr daemon is running (pid {pid}); stop it first")
    status = 0
    for path, kind in pending:
        try:
            if ext is not None and path == ext.label:
                say(ext.migrate(target))
            else:
                say(schema.migrate_file(path, kind, target))
        except (schema.SchemaError, external.ExternalError, OSError) as err:
            daemon.fail(f"micropvr-migrate: {err}")
            status = 1
        except Exception as err:  # noqa: BLE001 - sqlite errors etc., rolled back already
            daemon.fail(f"micropvr-migrate: {path}: migration failed and was rolled back: {err}")
            status = 1
    return status

if __name__ == "__main__":
    sys.exit(main())
