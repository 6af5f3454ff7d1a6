# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A JSON-RPC 2.0 client for micropvr's raw-TCP API (no HTTP framing)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket


class RPCError(Exception):
    """The call failed: no connection, a timeout, a malformed reply or a JSON-RPC error."""


def _complete(decoder, data):
    try:
        decoder.raw_decode(data.decode('utf-8').strip())
    except ValueError:
        return False
    return True


def call(host, port, method, params=None, timeout=5.0, request_id=1):
    """Send one request with named ``params``; return its ``result``."""
    request = dict(jsonrpc='2.0', id=request_id, method=method, params=params or {})
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(json.dumps(request).encode('utf-8') + b'\n')
            reply = b''
            decoder = json.JSONDecoder()
            # Read until the reply parses as one JSON value or the server closes.
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if _complete(decoder, reply):
                    break
    except (OSError, socket.timeout) as exc:
        raise RPCError('%s on %s:%s: %s' % (method, host, port, exc))
    try:
        decoded, dummy = decoder.raw_decode(reply.decode('utf-8').strip())
    except ValueError:
        raise RPCError('%s on %s:%s: no complete JSON reply (got %r)' % (method, host, port, reply[:200]))
    if not isinstance(decoded, dict):
        raise RPCError('%s on %s:%s: reply is not a JSON object' % (method, host, port))
    if 'error' in decoded:
        error = decoded['error']
        if isinstance(error, dict):
            raise RPCError('%s on %s:%s: error %s: %s' % (method, host, port, error.get('code'), error.get('message')))
        raise RPCError('%s on %s:%s: error %r' % (method, host, port, error))
    if 'result' not in decoded:
        raise RPCError('%s on %s:%s: reply has neither result nor error' % (method, host, port))
    return decoded['result']
