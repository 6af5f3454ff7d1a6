"""Threaded raw-TCP JSON-RPC server (one thread per connection)."""

from __future__ import annotations

import logging
import socket
import socketserver

from . import rpc

log = logging.getLogger("micropvr")

IDLE_TIMEOUT_S = 600.0


class _Handler(socketserver.BaseRequestHandler):
    server: "RpcServer"

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(IDLE_TIMEOUT_S)
        dispatcher = self.server.dispatcher
        buf = b""
        eof = False
        try:
            while True:
                message, consumed = rpc.split_message(buf, eof)
                buf = buf[consumed:]
                if message is not None:
                    answer = dispatcher.handle_message(message)
                    if answer is not None:
                        sock.sendall(answer)
                    continue
                if eof:
                    return
                if len(buf) > rpc.MAX_MESSAGE_BYTES:
                    err = rpc.RpcError(rpc.PARSE_ERROR, "Parse error", "request too large")
                    sock.sendall(rpc.encode(rpc.error_response(None, err)))
                    return
                data = sock.recv(65536)
                if not data:
                    eof = True
                buf += data
        except (socket.timeout, ConnectionError, OSError) as exc:
            log.debug("connection from %s closed: %s", self.client_address, exc)


class RpcServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, dispatcher: rpc.Dispatcher):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.dispatcher = dispatcher
        super().__init__((host, port), _Handler)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        log.exception("error while serving %s", client_address)
