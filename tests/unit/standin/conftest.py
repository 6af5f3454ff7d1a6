"""Unit tests of the MicroPVR stand-in's pure logic (tests/standin/src), no packages needed."""

from __future__ import annotations

import json
import os
import socket
import sys

import pytest

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standin"))
SRC = os.path.join(STANDIN, "src")
TOOLS = os.path.join(STANDIN, "tools")
for p in (SRC, TOOLS):
    if p not in sys.path:
        sys.path.insert(0, p)

from micropvr_standin import versioninfo  # noqa: E402


@pytest.fixture(params=sorted(versioninfo.RELEASES))
def any_release(request):
    return versioninfo.get_release(request.param)


@pytest.fixture
def r19():
    return versioninfo.get_release("1.9.0")


@pytest.fixture
def r110():
    return versioninfo.get_release("1.10.0")


@pytest.fixture
def r1101():
    return versioninfo.get_release("1.10.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def conf_factory(tmp_path):
    """Write a micropvr.conf whose paths all live in tmp_path; returns (path, cfg dict)."""

    def make(**overrides):
        cfg = {
            "log-path": str(tmp_path / "log" / "micropvr.log"),
            "log-state-path": str(tmp_path / "log" / "micropvr_state.log"),
            "log-state-period": 0,
            "json-rpc-listen-host": "127.0.0.1",
            "json-rpc-listen-port": free_port(),
            "records-db-path": str(tmp_path / "records.db"),
            "tasks-db-path": str(tmp_path / "tasks.db"),
            "records-link-dir": str(tmp_path / "links"),
        }
        cfg.update(overrides)
        path = tmp_path / "micropvr.conf"
        path.write_text("// test config\n" + json.dumps(cfg, indent=4) + "\n")
        return str(path), cfg

    return make
