#!/usr/bin/python3
"""Fill the stand-in MicroPVR databases with generated rows until records.db reaches a size.

Runs inside a bench container (Debian's python3, stdlib only), with the micropvr daemon stopped.
Rows are deterministic (derived from the row id), shaped like the stand-in's schema 1
(micropvr 1.9.x): one task per 50 records, paths like a recorder writes them. The rows are
written with INSERT ... SELECT over a recursive CTE, so SQLite does the work in C.

    gen_data.py --records-mb 1024 [--records /etc/micropvr/records.db] [--tasks /etc/micropvr/tasks.db]
"""

import argparse
import json
import os
import sqlite3
import sys
import time

CHUNK_ROWS = 200000
RECORDS_PER_TASK = 50


def size_mib(conn):
    pages = conn.execute('PRAGMA page_count').fetchone()[0]
    page_size = conn.execute('PRAGMA page_size').fetchone()[0]
    return pages * page_size / 1048576.0


def schema_version(conn):
    return conn.execute('PRAGMA user_version').fetchone()[0]


def fill_records(conn, start, count):
    conn.execute('BEGIN IMMEDIATE')
    conn.execute(
        """WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
           INSERT INTO records (id, task_id, channel_id, path, start_time, duration, size)
           SELECT i, i / %d + 1, i %% 700 + 1,
                  printf('/var/pvr/%%d/%%s/%%08d-%%08x.ts', i %% 700 + 1,
                         date(1672531200 + (i / 16) * 60, 'unixepoch'), i, (i * 2654435761) %% 4294967296),
                  datetime(1672531200 + (i / 16) * 60, 'unixepoch'), 30 + i %% 150,
                  (i * 1103515245 + 12345) %% 4294967296
           FROM n""" % RECORDS_PER_TASK, (start, start + count - 1))
    conn.execute('COMMIT')


def fill_tasks(conn, last_record):
    count = last_record // RECORDS_PER_TASK + 1
    conn.execute('BEGIN IMMEDIATE')
    conn.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
           INSERT OR IGNORE INTO tasks (id, channel_id, name, start_time, duration, record_location, status)
           SELECT i, i %% 700 + 1, printf('Programme %%d on channel %%d', i, i %% 700 + 1),
                  datetime(1672531200 + i * %d * 60 / 16, 'unixepoch'), 30 + i %% 150, '/var/pvr',
                  CASE WHEN i %% 10 = 0 THEN 'cancelled' ELSE 'scheduled' END
           FROM n""" % RECORDS_PER_TASK, (count,))
    conn.execute('COMMIT')
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records-mb', type=float, required=True)
    parser.add_argument('--records', default='/etc/micropvr/records.db')
    parser.add_argument('--tasks', default='/etc/micropvr/tasks.db')
    args = parser.parse_args()
    started = time.time()
    records = sqlite3.connect(args.records, isolation_level=None)
    tasks = sqlite3.connect(args.tasks, isolation_level=None)
    for conn, path in ((records, args.records), (tasks, args.tasks)):
        if schema_version(conn) != 1:
            sys.exit('%s: schema version %s, expected 1 (stand-in 1.9.0)' % (path, schema_version(conn)))
    last = records.execute('SELECT coalesce(max(id), 0) FROM records').fetchone()[0]
    while size_mib(records) < args.records_mb:
        # Smaller chunks near the end, so the file does not overshoot the target by much.
        missing = args.records_mb - size_mib(records)
        rows = max(1000, min(CHUNK_ROWS, int(missing * 1048576 / 150)))
        fill_records(records, last + 1, rows)
        last += rows
    task_count = fill_tasks(tasks, last)
    result = dict(records_rows=records.execute('SELECT count(*) FROM records').fetchone()[0],
                  tasks_rows=task_count, records_bytes=os.path.getsize(args.records),
                  tasks_bytes=os.path.getsize(args.tasks), seconds=round(time.time() - started, 1))
    records.close()
    tasks.close()
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
