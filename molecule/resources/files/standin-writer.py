#!/usr/bin/env python3
"""Keep writing to the stand-in MicroPVR through its JSON-RPC API (test fixture).

Calls create_new_task in a loop, one line per call in the log: "<unix time> ok <task_id>" or
"<unix time> error <reason>". Stops when the stop file appears or after --max-seconds.
Used to show that a backup is consistent while the daemon keeps writing.
"""

import argparse
import json
import os
import socket
import time


def call(conn, reader, request_id, method, params):
    conn.sendall(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                             "params": params}).encode() + b"\n")
    reply = json.loads(reader.readline())
    if "error" in reply:
        raise RuntimeError(reply["error"].get("message", reply["error"]))
    return reply["result"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4089)
    parser.add_argument("--log", default="/run/standin-writer.log")
    parser.add_argument("--stop-file", default="/run/standin-writer.stop")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    deadline = time.time() + args.max_seconds
    request_id = 0
    with open(args.log, "a", buffering=1) as log:
        while not os.path.exists(args.stop_file) and time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", args.port), timeout=30) as conn:
                    reader = conn.makefile("r")
                    while not os.path.exists(args.stop_file) and time.time() < deadline:
                        request_id += 1
                        result = call(conn, reader, request_id, "create_new_task", {
                            "channel_id": 100 + request_id % 7, "name": "writer %d" % request_id,
                            "start_time": 1767225600 + request_id * 60, "duration": 30})
                        log.write("%.3f ok %d\n" % (time.time(), result["task_id"]))
                        time.sleep(args.interval)
            except (OSError, ValueError, RuntimeError) as exc:
                log.write("%.3f error %s\n" % (time.time(), str(exc).replace("\n", " ")))
                time.sleep(0.2)


if __name__ == "__main__":
    main()
