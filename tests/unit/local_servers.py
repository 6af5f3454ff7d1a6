"""Servers on 127.0.0.1 that answer like the real ones, for tests of the clients."""

import json
import socketserver
import threading


class _RPCHandler(socketserver.StreamRequestHandler):
    def handle(self):
        request = json.loads(self.rfile.readline().decode('utf-8'))
        server = self.server
        with server.lock:
            server.requests.append(request)
            index = len(server.requests)
        result = server.answer(index)
        reply = {'jsonrpc': '2.0', 'id': request['id'], 'result': result}
        self.wfile.write(json.dumps(reply).encode('utf-8') + b'\n')


class RPCServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer):
        socketserver.ThreadingTCPServer.__init__(self, ('127.0.0.1', 0), _RPCHandler)
        self.answer = answer  # call number (1, 2, ...) -> result
        self.requests = []
        self.lock = threading.Lock()
        self.port = self.server_address[1]
