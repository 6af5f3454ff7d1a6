import json

import pytest

from micropvr_standin import api, rpc, store
from micropvr_standin.rpc import split_message


@pytest.mark.parametrize("buf, eof, msg, consumed", [
    (b'{"a":1}\n', False, b'{"a":1}', 7),
    (b'{"a":1}', False, b'{"a":1}', 7),
    (b'  \n {"a":1}{"b":2}', False, b'{"a":1}', 11),
    (b'{"a":', False, None, 0),
    (b'  {"a":', False, None, 2),
    (b'{"a":"}{\\"]"}x', False, b'{"a":"}{\\"]"}', 13),
    (b'[{"a":[1,2]},{}]', False, b'[{"a":[1,2]},{}]', 16),
    (b'hello world\n{"a":1}', False, b"hello world", 12),
    (b"hello", False, None, 0),
    (b"hello", True, b"hello", 5),
    (b'{"a":', True, b'{"a":', 5),
    (b" \r\n\t", False, None, 4),
    ('{"ключ":"значение"}'.encode(), False, '{"ключ":"значение"}'.encode(), 31),
])
def test_split_message(buf, eof, msg, consumed):
    assert split_message(buf, eof) == (msg, consumed)


def test_split_message_byte_by_byte():
    data = b'{"jsonrpc":"2.0","method":"x","params":{"s":"a}b"},"id":1}\n'
    buf = b""
    for i, byte in enumerate(data[:-1]):
        buf += bytes([byte])
        msg, used = split_message(buf)
        if i < len(data) - 2:
            assert msg is None
    assert msg == data[:-1] and used == len(data) - 1


def echo_dispatcher():
    d = rpc.Dispatcher()
    d.register("echo", lambda text, times=1: text * times, {
        "text": (rpc.is_str, "a string", True), "times": (rpc.is_int, "an integer", False)})
    d.register("boom", lambda: 1 / 0)
    return d


def call(d, raw):
    out = d.handle_message(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    if out is None:
        return None
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    return json.loads(out)


def err(code, req_id=None):
    return lambda resp: resp["error"]["code"] == code and resp["id"] == req_id and "result" not in resp


@pytest.mark.parametrize("request_obj, check", [
    ({"jsonrpc": "2.0", "method": "echo", "params": {"text": "ab", "times": 2}, "id": 1},
     lambda r: r == {"jsonrpc": "2.0", "result": "abab", "id": 1}),
    ({"jsonrpc": "2.0", "method": "echo", "params": ["ab"], "id": 2}, err(-32602, 2)),
    ({"jsonrpc": "2.0", "method": "echo", "params": {}, "id": "s"}, err(-32602, "s")),
    ({"jsonrpc": "2.0", "method": "echo", "params": {"text": 1}, "id": 3}, err(-32602, 3)),
    ({"jsonrpc": "2.0", "method": "echo", "params": {"text": "a", "x": 1}, "id": 4}, err(-32602, 4)),
    ({"jsonrpc": "2.0", "method": "nope", "id": 5}, err(-32601, 5)),
    ({"jsonrpc": "1.0", "method": "echo", "id": 6}, err(-32600, 6)),
    ({"method": "echo", "id": 7}, err(-32600, 7)),
    ({"jsonrpc": "2.0", "method": 5, "id": 8}, err(-32600, 8)),
    ({"jsonrpc": "2.0", "method": "echo", "params": "x", "id": 9}, err(-32600, 9)),
    ({"jsonrpc": "2.0", "method": "echo", "id": {"bad": "id"}}, err(-32600, None)),
    ({"jsonrpc": "2.0", "method": "echo", "id": True}, err(-32600, None)),
    ({"jsonrpc": "2.0", "method": "boom", "id": None}, err(-32603, None)),
    ("just a string", err(-32600, None)),
    ([], err(-32600, None)),
])
def test_request_validation(request_obj, check):
    assert check(call(echo_dispatcher(), request_obj))


def test_parse_error():
    resp = call(echo_dispatcher(), b'{"jsonrpc": "2.0", "method": "echo", "id": 1')
    assert resp["error"]["code"] == -32700 and resp["id"] is None
    assert call(echo_dispatcher(), b"\xff\xfe")["error"]["code"] == -32700


def test_notifications_and_batches():
    d = echo_dispatcher()
    assert call(d, {"jsonrpc": "2.0", "method": "echo", "params": {"text": "a"}}) is None
    assert call(d, {"jsonrpc": "2.0", "method": "nope"}) is None
    batch = [
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "a"}, "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "n"}},
        {"jsonrpc": "2.0", "method": "echo", "params": ["p"], "id": 2},
        42,
    ]
    resp = call(d, batch)
    assert [r.get("result") for r in resp] == ["a", None, None]
    assert [r.get("error", {}).get("code") for r in resp] == [None, -32602, -32600]
    assert call(d, [{"jsonrpc": "2.0", "method": "echo", "params": {"text": "n"}}]) is None


@pytest.fixture
def api_dispatcher(tmp_path, r110):
    st = store.Store(str(tmp_path / "tasks.db"), str(tmp_path / "records.db"), 2)
    st.ensure_databases()
    from micropvr_standin import config
    a = api.Api(r110, st, lambda: dict(config.DEFAULTS), load_avg=lambda: 0.0)
    return a.register(rpc.Dispatcher())


def req(method, params=None, i=1):
    r = {"jsonrpc": "2.0", "method": method, "id": i}
    if params is not None:
        r["params"] = params
    return r


def test_api_methods(api_dispatcher):
    d = api_dispatcher
    assert sorted(d.methods) == ["cancel_task", "create_new_task", "delete_records", "get_records",
                                 "get_tasks", "get_version", "is_alive", "standin_set_session_count"]
    assert call(d, req("get_version"))["result"] == {"version": "1.10.0", "schema_version": 2}
    assert call(d, req("is_alive"))["result"] == {"is_alive": True, "score": 0.0, "session_count": 0}
    r = call(d, req("create_new_task", {"channel_id": 7, "name": "News",
                                        "start_time": "2024-05-01 20:00:00", "duration": 90}))
    assert r["result"] == {"task_id": 1, "record_id": 1}
    assert call(d, req("get_tasks"))["result"] == [{
        "id": 1, "channel_id": 7, "name": "News", "start_time": 1714593600, "duration": 5400,
        "end_time": 1714599000, "record_location": "/var/pvr", "status": "scheduled"}]
    assert call(d, req("get_records", {"channel_id": 7}))["result"][0]["path"] == \
        "/var/pvr/ch_7/1_20240501200000.ts"
    assert call(d, req("get_records", {"channel_id": 8}))["result"] == []
    assert call(d, req("cancel_task", {"task_id": 1}))["result"] == {"task_id": 1, "status": "cancelled"}
    assert call(d, req("cancel_task", {"task_id": 9}))["error"]["code"] == -32001
    assert call(d, req("standin_set_session_count", {"count": 401}))["result"] == {"session_count": 401}
    assert call(d, req("is_alive"))["result"] == {"is_alive": False, "score": 80.2, "session_count": 401}
    assert call(d, req("delete_records", {"record_ids": [1]}))["result"] == {"deleted": 1}


@pytest.mark.parametrize("params", [
    {"channel_id": "7", "name": "x", "start_time": 0, "duration": 1},
    {"channel_id": 7, "name": "", "start_time": 0, "duration": 1},
    {"channel_id": 7, "name": "x", "start_time": "tomorrow", "duration": 1},
    {"channel_id": 7, "name": "x", "start_time": 0, "duration": 0},
    {"channel_id": 7, "name": "x", "start_time": 0},
    {"channel_id": 7, "name": "x", "start_time": 0, "duration": 1, "record_location": "rel"},
])
def test_create_new_task_bad_params(api_dispatcher, params):
    assert call(api_dispatcher, req("create_new_task", params))["error"]["code"] == -32602
    assert call(api_dispatcher, req("get_tasks"))["result"] == []
