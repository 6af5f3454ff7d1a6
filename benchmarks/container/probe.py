#!/usr/bin/python3
"""Poll micropvr's JSON-RPC ``is_alive`` at a fixed interval and log every answer.

Runs inside a bench container (Debian's python3, stdlib only) while an update runs, so the
probe talks to 127.0.0.1 and is not slowed by docker's port forwarding. Each probe is a new
TCP connection (as a new subscriber would make) sending one request; it counts as available
only when ``is_alive`` is true within ``--timeout`` seconds. One JSON line per probe:

    [wall_time, latency_seconds, ok, "error or empty", cpu_busy, cpu_iowait, cpu_total]

The last three are the machine's cumulative CPU counters from /proc/stat (in clock ticks, all
CPUs; /proc/stat is not namespaced, so they count the controller and every container too): what
the CPUs were doing during an outage window is their difference between its first and last probe.

It stops when ``--stop-file`` appears or after ``--max-seconds`` (a bound, never reached in a
normal run), writes ``--ready-file`` after its first successful probe and ``--done-file`` when it
has stopped.
"""

import argparse
import json
import os
import socket
import time

REQUEST = b'{"jsonrpc": "2.0", "id": 1, "method": "is_alive"}\n'


def cpu_counters():
    """(busy, iowait, total) clock ticks of all CPUs since boot, from the first line of /proc/stat."""
    with open('/proc/stat') as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    return user + nice + system + irq + softirq + steal, iowait, sum(fields)


def probe(host, port, timeout):
    """(ok, error): one is_alive call on a fresh connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(REQUEST)
            data = b''
            while not data.endswith(b'\n'):
                chunk = conn.recv(4096)
                if not chunk:
                    return False, 'connection closed'
                data += chunk
        answer = json.loads(data.decode('utf-8'))
        result = answer.get('result') or {}
        if result.get('is_alive') is True:
            return True, ''
        return False, 'is_alive=%s' % json.dumps(result.get('is_alive', answer.get('error')))
    except socket.timeout:
        return False, 'timeout'
    except (OSError, ValueError) as exc:
        return False, type(exc).__name__


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--stop-file', required=True)
    parser.add_argument('--ready-file')
    parser.add_argument('--done-file')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=4089)
    parser.add_argument('--interval', type=float, default=0.05)
    parser.add_argument('--timeout', type=float, default=0.5)
    parser.add_argument('--max-seconds', type=float, default=1800)
    args = parser.parse_args()
    try:
        run(args)
    finally:
        if args.done_file:
            with open(args.done_file, 'w'):
                pass


def run(args):
    deadline = time.monotonic() + args.max_seconds
    ready = False
    with open(args.out, 'w') as out:
        next_at = time.monotonic()
        while not os.path.exists(args.stop_file) and time.monotonic() < deadline:
            wall, started = time.time(), time.monotonic()
            ok, error = probe(args.host, args.port, args.timeout)
            out.write(json.dumps([round(wall, 4), round(time.monotonic() - started, 4), ok, error]
                                 + list(cpu_counters())) + '\n')
            out.flush()
            if ok and not ready and args.ready_file:
                with open(args.ready_file, 'w'):
                    pass
                ready = True
            next_at += args.interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:  # a slow probe: start the next one now, keep the rhythm from here
                next_at = time.monotonic()


if __name__ == '__main__':
    main()
