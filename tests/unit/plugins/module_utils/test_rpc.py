"""Unit tests for plugins/module_utils/rpc.py against a real JSON-RPC-ish TCP server on 127.0.0.1."""

import json
import socket
import threading
import time

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils.rpc import RPCError, call

HOST = '127.0.0.1'


class TCPServer(object):
    """Accepts connections one after the other; ``reply(conn, request)`` answers each request.

    ``request`` is the decoded first line the client sent. ``stop`` is set at teardown, so a
    handler that waits on it (a server that never answers) ends with the test.
    """

    def __init__(self, reply):
        self.reply = reply
        self.requests = []
        self.raw = []
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, dummy = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                with conn:
                    conn.settimeout(5)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    data = b''
                    while b'\n' not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.raw.append(data)
                    request = json.loads(data.decode('utf-8'))
                    self.requests.append(request)
                    self.reply(conn, request, self)
            except Exception as exc:  # surfaced by the fixture
                self.errors.append(exc)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(reply):
        server = TCPServer(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
    for server in servers:
        assert server.errors == []


def wait_for_client_close(conn, server):
    """Keep the connection open until the client hangs up (or the test ends)."""
    while not server.stop.is_set():
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def answer(payload, newline=True, close=False, pieces=1, pause=0.0):
    """A reply() that sends ``payload`` (an object or raw bytes), optionally in pieces."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode('utf-8')
    if newline:
        data += b'\n'

    def reply(conn, request, server):
        size = max(1, -(-len(data) // pieces))
        for start in range(0, len(data), size):
            conn.sendall(data[start:start + size])
            if pause:
                time.sleep(pause)
        if not close:
            conn.settimeout(0.1)
            wait_for_client_close(conn, server)

    return reply


def ok(result, request_id=1):
    return {'jsonrpc': '2.0', 'id': request_id, 'result': result}


ALIVE = {'is_alive': True, 'score': 12.5, 'session_count': 3}


# --- replies that work ---------------------------------------------------------------------------

def test_reply_in_one_chunk_server_keeps_the_connection_open(serve):
    server = serve(answer(ok(ALIVE)))
    started = time.monotonic()
    assert call(HOST, server.port, 'is_alive', timeout=3) == ALIVE
    # returned as soon as the reply parsed, not when the 3 s timeout ran out
    assert time.monotonic() - started < 2


def test_reply_split_over_several_sends(serve):
    result = {'is_alive': True, 'name': 'caf\u00e9 \u20ac \u2603', 'list': list(range(20))}
    server = serve(answer(ok(result), pieces=9, pause=0.02))
    assert call(HOST, server.port, 'is_alive', timeout=3) == result


def test_reply_split_inside_a_multibyte_character(serve):
    payload = json.dumps(ok('\u20ac\u20ac\u20ac'), ensure_ascii=False).encode('utf-8')
    cut = payload.index('\u20ac'.encode('utf-8')) + 1  # one byte into the euro sign

    def reply(conn, request, server):
        conn.sendall(payload[:cut])
        time.sleep(0.05)
        conn.sendall(payload[cut:])
        wait_for_client_close(conn, server)

    server = serve(reply)
    assert call(HOST, server.port, 'x', timeout=3) == '\u20ac\u20ac\u20ac'


def test_reply_without_newline_then_close(serve):
    server = serve(answer(ok(ALIVE), newline=False, close=True))
    assert call(HOST, server.port, 'is_alive', timeout=3) == ALIVE


def test_reply_with_newline_then_close(serve):
    server = serve(answer(ok(ALIVE), newline=True, close=True))
    assert call(HOST, server.port, 'is_alive', timeout=3) == ALIVE


def test_reply_without_newline_connection_kept_open(serve):
    # No framing at all: the client must notice the JSON value is complete.
    server = serve(answer(ok(ALIVE), newline=False))
    assert call(HOST, server.port, 'is_alive', timeout=3) == ALIVE


@pytest.mark.parametrize('result', [None, False, 0, '', [], {}, [1, 'two']])
def test_falsy_and_non_object_results_are_returned(serve, result):
    server = serve(answer(ok(result)))
    assert call(HOST, server.port, 'm', timeout=3) == result


# --- the request ---------------------------------------------------------------------------------

def test_request_is_json_rpc_2_with_named_params(serve):
    server = serve(answer(ok({'session_count': 3})))
    call(HOST, server.port, 'standin_set_session_count', params={'count': 3}, timeout=3)
    assert server.requests == [{'jsonrpc': '2.0', 'id': 1, 'method': 'standin_set_session_count',
                                'params': {'count': 3}}]
    # one line, newline-terminated, nothing after it
    assert server.raw[0].endswith(b'\n') and server.raw[0].count(b'\n') == 1


def test_request_without_params_sends_an_empty_object(serve):
    server = serve(answer(ok(ALIVE)))
    call(HOST, server.port, 'is_alive', timeout=3)
    assert server.requests == [{'jsonrpc': '2.0', 'id': 1, 'method': 'is_alive', 'params': {}}]


def test_request_id(serve):
    server = serve(answer(ok(ALIVE, request_id=42)))
    call(HOST, server.port, 'is_alive', timeout=3, request_id=42)
    assert server.requests[0]['id'] == 42


# --- failures ------------------------------------------------------------------------------------

def test_json_rpc_error_object(serve):
    server = serve(answer({'jsonrpc': '2.0', 'id': 1, 'error': {'code': -32601, 'message': 'Method not found'}}))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'no_such_method', timeout=3)
    assert str(excinfo.value) == 'no_such_method on 127.0.0.1:%d: error -32601: Method not found' % server.port


def test_json_rpc_error_with_data(serve):
    error = {'code': -32602, 'message': 'Invalid params', 'data': {'count': 'must be an int'}}
    server = serve(answer({'jsonrpc': '2.0', 'id': 1, 'error': error}))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'standin_set_session_count', params={'count': 'x'}, timeout=3)
    assert str(excinfo.value) == ('standin_set_session_count on 127.0.0.1:%d: error -32602: Invalid params'
                                  % server.port)


def test_json_rpc_error_that_is_not_an_object(serve):
    server = serve(answer({'jsonrpc': '2.0', 'id': 1, 'error': 'internal failure'}))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert 'internal failure' in str(excinfo.value)


def test_reply_without_result_or_error(serve):
    server = serve(answer({'jsonrpc': '2.0', 'id': 1}))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value) == 'is_alive on 127.0.0.1:%d: reply has neither result nor error' % server.port


@pytest.mark.parametrize('payload', [[1, 2, 3], 'alive', 42, None, True])
def test_non_object_reply(serve, payload):
    server = serve(answer(payload, close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value) == 'is_alive on 127.0.0.1:%d: reply is not a JSON object' % server.port


def test_garbage_reply_then_close(serve):
    server = serve(answer(b'HTTP/1.1 400 Bad Request', close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value) == ("is_alive on 127.0.0.1:%d: no complete JSON reply (got b'HTTP/1.1 400 Bad "
                                  "Request\\n')" % server.port)


def test_truncated_reply_then_close(serve):
    server = serve(answer(b'{"jsonrpc": "2.0", "id": 1, "result": {"is_al', newline=False, close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value).startswith('is_alive on 127.0.0.1:%d: no complete JSON reply (got b\'{"jsonrpc"'
                                         % server.port)


def test_long_garbage_is_cut_in_the_message(serve):
    server = serve(answer(b'x' * 5000, newline=False, close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value) == "is_alive on 127.0.0.1:%d: no complete JSON reply (got b'%s')" % (server.port,
                                                                                                 'x' * 200)


def test_invalid_utf8_reply_then_close(serve):
    server = serve(answer(b'\xff\xfe{}', close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert 'no complete JSON reply' in str(excinfo.value)


def test_empty_reply_server_closes(serve):
    server = serve(answer(b'', newline=False, close=True))
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=3)
    assert str(excinfo.value) == "is_alive on 127.0.0.1:%d: no complete JSON reply (got b'')" % server.port


def test_garbage_reply_connection_kept_open_times_out(serve):
    server = serve(answer(b'not json at all'))
    started = time.monotonic()
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=0.5)
    assert time.monotonic() - started < 3
    assert str(excinfo.value) == 'is_alive on 127.0.0.1:%d: timed out' % server.port


def test_connection_refused():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()  # bound, never listened: nothing accepts on this port now
    with pytest.raises(RPCError) as excinfo:
        call(HOST, port, 'is_alive', timeout=2)
    message = str(excinfo.value)
    assert message.startswith('is_alive on 127.0.0.1:%d: ' % port)
    assert 'Connection refused' in message


def test_server_that_never_answers_times_out_quickly(serve):
    def silent(conn, request, server):
        server.stop.wait(10)

    server = serve(silent)
    started = time.monotonic()
    with pytest.raises(RPCError) as excinfo:
        call(HOST, server.port, 'is_alive', timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3
    assert str(excinfo.value) == 'is_alive on 127.0.0.1:%d: timed out' % server.port
    assert server.requests[0]['method'] == 'is_alive'  # it did get the request


def test_rpc_error_is_an_exception():
    assert issubclass(RPCError, Exception)
