#!/usr/bin/python3
"""Test fixture, runs on a test host: hold the middleware tables locked until a backup's dump
of them has started, watching every process meanwhile.

A dump blocked on the lock is a process that stays put long enough to be looked at, so what
the test checks is certain to have happened, not a lucky sample:
  * every command line and every dump tool's environment seen while the backup runs (the
    database passwords must be in none of them);
  * with --fill DIR, the filesystem of DIR is filled up while pg_dump waits, so the backup
    runs out of space in the middle of writing its set.

    dump-blocker.py --report FILE [--engines postgresql,mysql] [--fill DIR] [--timeout 600]

FILE gets "armed" once the locks are held, then the JSON report when the run is over:
{"seen": {"postgresql": true, ...}, "filled": bool, "cmdlines": [...], "environ": [...]}.
"""

import argparse
import json
import os
import select
import subprocess
import time

DUMP_TOOLS = {'postgresql': 'pg_dump', 'mysql': 'mysqldump'}
LOCK_SQL = {
    'postgresql': (['su', 'postgres', '-c', 'psql --no-psqlrc -q -At -d middleware'],
                   "BEGIN; LOCK TABLE subscribers IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n", 'COMMIT;\n'),
    'mysql': (['mysql', '--batch', '--unbuffered', '--skip-column-names', 'middleware'],
              "LOCK TABLES subscribers WRITE; SELECT 'locked';\n", 'UNLOCK TABLES;\n'),
}


def processes():
    """(pid, argv, environ) of every process that can be read right now."""
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as handle:
                argv = [a.decode('utf-8', 'replace') for a in handle.read().split(b'\0') if a]
            with open('/proc/%s/environ' % name, 'rb') as handle:
                environ = [a.decode('utf-8', 'replace') for a in handle.read().split(b'\0') if a]
        except OSError:
            continue
        if argv:
            yield int(name), argv, environ


def hold_lock(engine):
    command, lock, dummy = LOCK_SQL[engine]
    session = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    session.stdin.write(lock)
    session.stdin.flush()
    ready, dummy, dummy = select.select([session.stdout], [], [], 60)
    line = session.stdout.readline().strip() if ready else '(nothing within 60 s)'
    if line != 'locked':
        session.kill()
        raise SystemExit('%s: could not lock the subscribers table (got %r)' % (engine, line))
    return session


def release(engine, session):
    session.stdin.write(LOCK_SQL[engine][2])
    session.stdin.close()
    session.wait(timeout=60)


def fill(directory):
    """Take every free byte of the filesystem of ``directory``."""
    path = os.path.join(directory, 'filler')
    with open(path, 'wb') as handle:
        stats = os.statvfs(directory)
        try:
            os.posix_fallocate(handle.fileno(), 0, stats.f_bfree * stats.f_frsize)
        except OSError:
            pass
        block = b'\0' * 65536
        try:
            while True:
                handle.write(block)
                handle.flush()
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--report', required=True)
    parser.add_argument('--engines', default='postgresql,mysql')
    parser.add_argument('--fill')
    parser.add_argument('--timeout', type=float, default=600)
    args = parser.parse_args()
    engines = args.engines.split(',')
    sessions = dict((engine, hold_lock(engine)) for engine in engines)
    with open(args.report, 'w') as handle:
        handle.write('armed\n')
    me = os.getpid()
    seen = dict((engine, False) for engine in engines)
    cmdlines, environ, filled = set(), set(), False
    deadline = time.monotonic() + args.timeout
    while sessions and time.monotonic() < deadline:
        for pid, argv, env in processes():
            if pid == me:
                continue
            cmdlines.add(' '.join(argv))
            tool = os.path.basename(argv[0])
            for engine in list(sessions):
                if tool == DUMP_TOOLS[engine]:
                    environ.update(env)
                    seen[engine] = True
                    if args.fill and not filled:
                        fill(args.fill)
                        filled = True
                    release(engine, sessions.pop(engine))
        time.sleep(0.002)
    for engine, session in sessions.items():
        release(engine, session)
    # Whatever ran after the last dump (the restore test, the verification) is watched too.
    end = time.monotonic() + 5
    while time.monotonic() < end:
        for pid, argv, _env in processes():
            if pid != me:
                cmdlines.add(' '.join(argv))
        time.sleep(0.01)
    with open(args.report, 'w') as handle:
        json.dump(dict(seen=seen, filled=filled, cmdlines=sorted(cmdlines), environ=sorted(environ)), handle)


if __name__ == '__main__':
    main()
