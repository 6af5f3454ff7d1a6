#!/usr/bin/python3
"""Fill the stand-in MicroPVR databases with generated rows until records.db reaches a size.

Runs inside a bench container (Debian's python3, stdlib only), with the micropvr daemon stopped.
Rows are deterministic (derived from the row id), shaped like the stand-in's schema 1
(micropvr 1.9.x): one task per 50 records, paths like a recorder writes them. The rows are
written with INSERT ... SELECT over a recursive CTE, so SQLite does the work in C, with a page
cache large enough for the indexes' insertion points (700 channels interleave in
records_channel_id: with SQLite's default 2 MiB cache every chunk re-read and re-wrote those
pages, and the generation slowed down as the file grew) and without a rollback journal or fsync
(a generated file that a crash tears is simply generated again).

    gen_data.py --records-mb 1024 [--records /etc/micropvr/records.db] [--tasks /etc/micropvr/tasks.db]
"""

import argparse
import json
import os
import sqlite3
import sys
import time

CHUNK_ROWS = 1000000
# Bytes per row of the two indexes of records when built in one go (measured: ~21.9), to stop
# at the requested size while the indexes are dropped.
INDEX_BYTES_PER_ROW = 22
# Page cache of each connection while generating, in KiB (negative cache_size is KiB).
CACHE_KIB = 262144
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
    for conn in (records, tasks):
        # Per connection only: nothing of this is stored in the file the stand-in opens later.
        conn.execute('PRAGMA cache_size = -%d' % CACHE_KIB)
        conn.execute('PRAGMA journal_mode = OFF')
        conn.execute('PRAGMA synchronous = OFF')
    for conn, path in ((records, args.records), (tasks, args.tasks)):
        if schema_version(conn) != 1:
            sys.exit('%s: schema version %s, expected 1 (stand-in 1.9.0)' % (path, schema_version(conn)))
    last = records.execute('SELECT coalesce(max(id), 0) FROM records').fetchone()[0]
    # The indexes of records are dropped while rows go in and built again after, from their own
    # stored DDL (the schema stays byte-for-byte what the stand-in created): one sort per index
    # instead of an insertion per row and index, about half the time of a 4 GiB generation.
    indexes = [] if size_mib(records) >= args.records_mb else records.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL"
    ).fetchall()
    for name, dummy in indexes:
        records.execute('DROP INDEX "%s"' % name)
    count = records.execute('SELECT count(*) FROM records').fetchone()[0]

    def expected_mib():
        return size_mib(records) + (count * INDEX_BYTES_PER_ROW / 1048576.0 if indexes else 0)

    while expected_mib() < args.records_mb:
        # Smaller chunks near the end, so the file does not overshoot the target by much.
        missing = args.records_mb - expected_mib()
        rows = max(1000, min(CHUNK_ROWS, int(missing * 1048576 / 150)))
        fill_records(records, last + 1, rows)
        last += rows
        count += rows
    for dummy, sql in indexes:
        records.execute(sql)
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
