"""Helpers for the testinfra suites: talk to a test host's MicroPVR the way an operator would."""

import json

# Runs inside the test host: one JSON-RPC 2.0 request over raw TCP, reply printed as JSON.
_RPC_CLIENT = r'''
import json, socket, sys
method, params, port = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        reply += chunk
print(reply.decode())
'''


class RPCError(Exception):
    pass


def rpc(host, method, port=4089, **params):
    """Call a JSON-RPC method of the micropvr daemon on ``host``; return its result."""
    cmd = host.run('python3 -c %s %s %s %s', _RPC_CLIENT, method, json.dumps(params), str(port))
    if cmd.rc != 0:
        raise RPCError('%s: rc=%d %s' % (method, cmd.rc, cmd.stderr))
    reply = json.loads(cmd.stdout)
    if 'error' in reply:
        raise RPCError('%s: %s' % (method, reply['error']))
    return reply['result']


def user_version(host, path):
    """PRAGMA user_version of an SQLite database on ``host``."""
    return int(host.check_output('sqlite3 %s "PRAGMA user_version"', path))


def table_rows(host, path, table):
    """All rows of ``table`` as a list of dicts, ordered by id."""
    out = host.check_output('sqlite3 -json %s %s', path, 'SELECT * FROM %s ORDER BY id' % table)
    return json.loads(out) if out.strip() else []


def service_status(host, name):
    """Exit code of ``/etc/init.d/<name> status`` (LSB: 0 running, 3 stopped)."""
    return host.run('/etc/init.d/%s status' % name).rc


def apt_install(host, *specs, extra=''):
    """apt-get install keeping the operator's conffile edits; returns the testinfra result."""
    return host.run('DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
                    '-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold %s %s'
                    % (extra, ' '.join(specs)))
