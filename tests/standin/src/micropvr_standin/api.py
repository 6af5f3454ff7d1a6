"""The JSON-RPC methods of the stand-in daemon (named parameters only).

==========================  ======================================================  ==========================
method                      params                                                  result
==========================  ======================================================  ==========================
is_alive                    -                                                       {is_alive, score, session_count}
get_version                 -                                                       {version, schema_version}
create_new_task             channel_id:int, name:str, start_time:str|int,           {task_id, record_id}
                            duration:int (minutes), [record_location:str]
get_tasks                   [channel_id:int], [status:str]                          [task rows]
get_records                 [channel_id:int], [task_id:int]                         [record rows]
cancel_task                 task_id:int                                             {task_id, status}
delete_records              record_ids:[int]                                        {deleted}
standin_set_session_count   count:int                                               {session_count}
==========================  ======================================================  ==========================

``start_time`` is 'YYYY-MM-DD HH:MM:SS' (UTC) or epoch seconds.  Rows come back as stored by the
release's schema (schema 1: start_time text, duration minutes; schema 2: epoch seconds, seconds,
end_time).  ``standin_set_session_count`` exists only in the stand-in: it simulates subscribers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, Callable

from . import health, rpc, store
from .rpc import RpcError, is_int, is_str
from .versioninfo import Release


def _is_name(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 1024


def _is_start(v: Any) -> bool:
    return isinstance(v, str) or is_int(v)


def _is_duration(v: Any) -> bool:
    return is_int(v) and 0 < v <= 7 * 24 * 60


def _is_location(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("/")


def _is_id_list(v: Any) -> bool:
    return isinstance(v, list) and all(is_int(x) for x in v)


def _is_count(v: Any) -> bool:
    return is_int(v) and v >= 0


class Api:
    def __init__(self, release: Release, st: store.Store, get_config: Callable[[], dict[str, Any]],
                 load_avg: Callable[[], float] | None = None):
        self.release = release
        self.store = st
        self.get_config = get_config
        self.load_avg = load_avg or (lambda: os.getloadavg()[0])
        self._lock = threading.Lock()
        self.session_count = 0

    def register(self, dispatcher: rpc.Dispatcher) -> rpc.Dispatcher:
        d = dispatcher
        d.register("is_alive", self.is_alive)
        d.register("get_version", self.get_version)
        d.register("create_new_task", self.create_new_task, {
            "channel_id": (is_int, "an integer", True),
            "name": (_is_name, "a non-empty string", True),
            "start_time": (_is_start, "'YYYY-MM-DD HH:MM:SS' (UTC) or epoch seconds", True),
            "duration": (_is_duration, "an integer number of minutes (1-10080)", True),
            "record_location": (_is_location, "an absolute path", False),
        })
        d.register("get_tasks", self.get_tasks, {
            "channel_id": (is_int, "an integer", False),
            "status": (is_str, "a string", False),
        })
        d.register("get_records", self.get_records, {
            "channel_id": (is_int, "an integer", False),
            "task_id": (is_int, "an integer", False),
        })
        d.register("cancel_task", self.cancel_task, {"task_id": (is_int, "an integer", True)})
        d.register("delete_records", self.delete_records,
                   {"record_ids": (_is_id_list, "a list of integers", True)})
        d.register("standin_set_session_count", self.standin_set_session_count,
                   {"count": (_is_count, "an integer >= 0", True)})
        return d

    # -- methods ---------------------------------------------------------------------------------
    def is_alive(self) -> dict[str, Any]:
        with self._lock:
            sessions = self.session_count
        try:
            la1 = self.load_avg()
        except OSError:
            la1 = None
        return health.compute(sessions, self.get_config(), self.release, la1)

    def get_version(self) -> dict[str, Any]:
        return {"version": self.release.version, "schema_version": self.release.schema_version}

    def create_new_task(self, channel_id: int, name: str, start_time: Any, duration: int,
                        record_location: str = "/var/pvr") -> dict[str, int]:
        try:
            store.parse_start_time(start_time)
        except ValueError as exc:
            raise RpcError(rpc.INVALID_PARAMS, "Invalid params", str(exc)) from None
        return self._db(self.store.create_task, channel_id, name, start_time, duration, record_location)

    def get_tasks(self, channel_id: int | None = None, status: str | None = None) -> list[dict]:
        return self._db(self.store.get_tasks, channel_id, status)

    def get_records(self, channel_id: int | None = None, task_id: int | None = None) -> list[dict]:
        return self._db(self.store.get_records, channel_id, task_id)

    def cancel_task(self, task_id: int) -> dict[str, Any]:
        return self._db(self.store.cancel_task, task_id)

    def delete_records(self, record_ids: list[int]) -> dict[str, int]:
        return self._db(self.store.delete_records, record_ids)

    def standin_set_session_count(self, count: int) -> dict[str, int]:
        with self._lock:
            self.session_count = count
        return {"session_count": count}

    @staticmethod
    def _db(func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except store.NotFound as exc:
            raise RpcError(rpc.NOT_FOUND, "Not found", str(exc)) from None
        except (sqlite3.Error, store.DatabaseError) as exc:
            raise RpcError(rpc.DATABASE_ERROR, "Database error", str(exc)) from None
