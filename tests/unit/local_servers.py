"""Servers on 127.0.0.1 that answer like the real ones, for tests of the clients."""

import http.server
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


class _HTTPHandler(http.server.BaseHTTPRequestHandler):
    STATUS = {'/nginx-stats': 200, '/empty': 204, '/fail': 500, '/missing': 404}

    def do_GET(self):
        self.server.paths.append(self.path)
        status = self.STATUS.get(self.path, 404)
        body = b'Active connections: 1\n' if status == 200 else b''
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HTTPServer(http.server.ThreadingHTTPServer):
    """Answers /nginx-stats (200, as micropvs does), /empty (204), /fail (500), anything else 404."""

    daemon_threads = True

    def __init__(self):
        http.server.ThreadingHTTPServer.__init__(self, ('127.0.0.1', 0), _HTTPHandler)
        self.paths = []
        self.port = self.server_address[1]

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)
