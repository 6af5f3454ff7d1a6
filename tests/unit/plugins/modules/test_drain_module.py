"""micropvr_drain against a local JSON-RPC server whose session count falls."""

import pytest
from ansible.module_utils import basic

from local_servers import RPCServer
from module_runner import run_main
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_drain


@pytest.fixture
def server_with_sessions(serve):
    def start(counts):
        """The n-th call sees counts[n] sessions (the last count repeats)."""
        return serve(RPCServer(lambda index: {'is_alive': True, 'score': 1.0,
                                              'session_count': counts[min(index, len(counts)) - 1]}))
    return start


def run(capsys, **args):
    return run_main(micropvr_drain.main, capsys, **args)


def test_waits_until_sessions_fall_below_the_threshold(server_with_sessions, capsys):
    server = server_with_sessions([40, 12, 3])
    code, result = run(capsys, sessions=5, timeout=10, interval=0.05, rpc_port=server.port)
    assert code == 0 and result['drained'] is True and result['session_count'] == 3
    assert len(server.requests) == 3
    assert all(r['method'] == 'is_alive' for r in server.requests)


def test_gives_up_at_the_timeout_and_warns(server_with_sessions, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warnings.append(message))
    server = server_with_sessions([40])
    code, result = run(capsys, sessions=5, timeout=1, interval=0.2, rpc_port=server.port)
    assert code == 0 and result['drained'] is False and result['session_count'] == 40
    assert result['waited'] <= 1.5
    assert warnings == ['40 sessions remain after 1 s (micropvr_drain_timeout); updating anyway']


def test_check_mode_reads_once_and_does_not_wait(server_with_sessions, capsys):
    server = server_with_sessions([40, 0])
    code, result = run(capsys, sessions=5, timeout=30, interval=0.05, rpc_port=server.port, _ansible_check_mode=True)
    assert code == 0 and result['drained'] is False and len(server.requests) == 1


def test_fails_when_the_api_does_not_answer(capsys):
    code, result = run(capsys, sessions=5, timeout=1, rpc_port=1)
    assert code == 1 and result['msg'].startswith('cannot read the session count: is_alive on 127.0.0.1:1')
