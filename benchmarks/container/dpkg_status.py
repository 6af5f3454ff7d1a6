#!/usr/bin/python3
"""dpkg's status logger in a bench container: each status line, with the time it arrived.

dpkg runs it for every invocation (``status-logger`` in /etc/dpkg/dpkg.cfg.d/bench, set up by
the harness) and writes its machine-readable status lines to its stdin (``status: micropvr:
half-configured``, ``processing: configure: micropvr``). They are appended to the file
named by the one argument as ``<unix time> <line>``. /var/log/dpkg.log has one-second times;
an outage window of the update is a few seconds long, so the raw and the collection's update are
compared on these instead (benchmarks/harness/stats.py, ``dpkg_marks``).
"""

import sys
import time


def main():
    with open(sys.argv[1], 'a') as out:
        for line in sys.stdin:
            out.write('%.4f %s\n' % (time.time(), line.rstrip('\n')))
            out.flush()


if __name__ == '__main__':
    main()
