"""JSON-RPC 2.0 over raw TCP: framing, request validation, dispatch.

Framing: the client sends JSON request objects (or batch arrays) on a TCP connection, each one
terminated by a newline or not; the server reads until one complete JSON value can be parsed,
answers it with one JSON line terminated by ``\\n`` (nothing for a notification), and keeps the
connection open for more requests until the client closes it.  A line that is not an object or
array (garbage) is answered with a parse error (-32700) and reading goes on after the newline.
Only named parameters are accepted (positional -> -32602).
"""

from __future__ import annotations

import json
from typing import Any, Callable

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server errors (-32000 .. -32099).
NOT_FOUND = -32001
DATABASE_ERROR = -32002

MAX_MESSAGE_BYTES = 1 << 20

_WS = b" \t\r\n"


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def split_message(buf: bytes, eof: bool = False) -> tuple[bytes | None, int]:
    """Find the first complete JSON message in ``buf``.

    Returns (message, consumed): ``message`` is the bytes of one JSON value (an object/array,
    found by bracket matching outside strings, or for anything else the rest of the line), or
    None when more data is needed; ``consumed`` is how many bytes of ``buf`` to drop.  With
    ``eof`` an incomplete tail is returned as the message (it will fail to parse).
    """
    i, n = 0, len(buf)
    while i < n and buf[i] in _WS:
        i += 1
    if i == n:
        return None, n
    if buf[i] in b"{[":
        depth = 0
        in_str = esc = False
        for j in range(i, n):
            b = buf[j]
            if in_str:
                if esc:
                    esc = False
                elif b == 0x5C:  # backslash
                    esc = True
                elif b == 0x22:
                    in_str = False
                continue
            if b == 0x22:
                in_str = True
            elif b in b"{[":
                depth += 1
            elif b in b"}]":
                depth -= 1
                if depth == 0:
                    return buf[i:j + 1], j + 1
    else:
        nl = buf.find(b"\n", i)
        if nl != -1:
            return buf[i:nl], nl + 1
    if eof:
        return buf[i:], n
    return None, i


def error_response(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": req_id}


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (
        isinstance(value, (int, float)) and not isinstance(value, bool))


def validate_request(obj: Any) -> tuple[Any, str, dict[str, Any], bool]:
    """Check one request object.  Returns (id, method, params, is_notification).

    Raises RpcError; its ``request_id`` attribute is the id to answer with (None when unknown).
    """
    req_id = None
    if isinstance(obj, dict) and "id" in obj and _valid_id(obj["id"]):
        req_id = obj["id"]

    def fail(code: int, message: str, data: Any = None):
        err = RpcError(code, message, data)
        err.request_id = req_id  # type: ignore[attr-defined]
        return err

    if not isinstance(obj, dict):
        raise fail(INVALID_REQUEST, "Invalid Request", "request must be a JSON object")
    if obj.get("jsonrpc") != "2.0":
        raise fail(INVALID_REQUEST, "Invalid Request", "'jsonrpc' must be exactly \"2.0\"")
    if "id" in obj and not _valid_id(obj["id"]):
        raise fail(INVALID_REQUEST, "Invalid Request", "'id' must be a string, a number or null")
    method = obj.get("method")
    if not isinstance(method, str):
        raise fail(INVALID_REQUEST, "Invalid Request", "'method' must be a string")
    params = obj.get("params", {})
    if isinstance(params, list):
        raise fail(INVALID_PARAMS, "Invalid params",
                   "positional parameters are not supported; pass named parameters (an object)")
    if not isinstance(params, dict):
        raise fail(INVALID_REQUEST, "Invalid Request", "'params' must be an object")
    return req_id, method, params, "id" not in obj


# Parameter types: name -> (python type check, description, required)
ParamSpec = dict[str, tuple[Callable[[Any], bool], str, bool]]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_str(v: Any) -> bool:
    return isinstance(v, str)


def check_params(spec: ParamSpec, params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise RpcError(INVALID_PARAMS, "Invalid params", f"unexpected parameter(s): {', '.join(unknown)}")
    out = {}
    for name, (check, expected, required) in spec.items():
        if name not in params:
            if required:
                raise RpcError(INVALID_PARAMS, "Invalid params", f"missing required parameter '{name}'")
            continue
        if not check(params[name]):
            raise RpcError(INVALID_PARAMS, "Invalid params", f"parameter '{name}' must be {expected}")
        out[name] = params[name]
    return out


class Dispatcher:
    """Registry of methods with their parameter specs."""

    def __init__(self, on_internal_error: Callable[[str, BaseException], None] | None = None):
        self._methods: dict[str, tuple[Callable[..., Any], ParamSpec]] = {}
        self._on_internal_error = on_internal_error

    def register(self, name: str, func: Callable[..., Any], spec: ParamSpec | None = None) -> None:
        self._methods[name] = (func, spec or {})

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    def call_one(self, obj: Any) -> dict[str, Any] | None:
        """Answer one request object; None for a notification."""
        try:
            req_id, method, params, notification = validate_request(obj)
        except RpcError as err:
            return error_response(getattr(err, "request_id", None), err)
        try:
            entry = self._methods.get(method)
            if entry is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found", method)
            func, spec = entry
            result = func(**check_params(spec, params))
            response = {"jsonrpc": "2.0", "result": result, "id": req_id}
        except RpcError as err:
            response = error_response(req_id, err)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON-RPC error
            if self._on_internal_error:
                self._on_internal_error(method, exc)
            response = error_response(req_id, RpcError(INTERNAL_ERROR, "Internal error", str(exc)))
        return None if notification else response

    def handle_message(self, raw: bytes) -> bytes | None:
        """Answer one framed message (object or batch); None when there is nothing to send."""
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return encode(error_response(None, RpcError(PARSE_ERROR, "Parse error", str(exc))))
        if isinstance(obj, list):
            if not obj:
                return encode(error_response(None, RpcError(INVALID_REQUEST, "Invalid Request", "empty batch")))
            answers = [a for a in (self.call_one(item) for item in obj) if a is not None]
            return encode(answers) if answers else None
        answer = self.call_one(obj)
        return encode(answer) if answer is not None else None
