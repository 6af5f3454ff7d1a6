"""Fault 15: the LIVE records.db is corrupt before the backup (a b-tree page damaged on disk).

The backup copies pages as they are, so the copy carries the damage. The default check of the
copies (micropvr_backup_sqlite_check: quick, PRAGMA quick_check) must catch it before the set
is accepted: backup.yml fails naming records.db and quick_check, and leaves no set behind.

The damaged page is the root of an index (records' first index, a leaf on the test bed): the
rows themselves stay readable, so the per-table digests of the copy succeed and it is the check
that has to find the damage, not a read error. Page 1 (the header and the schema) is left alone.
The daemon stays stopped while the file is damaged, so that it neither trips over the page nor
rewrites it; the original file is put back and the daemon started afterwards.
"""

import pytest

from faultlib import assert_healthy_on, backup_ids, backup_root, baseline, reset, run_playbook

DATABASE = '/etc/micropvr/records.db'
SAVED = '/root/records.db.before-fault-15'
# Sets the page-type byte (offset 0 of a page other than page 1) to 0, which no b-tree page
# has (2, 5, 10, 13): SQLite's checks report the page.
FLIP = ('import sys; path, page, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); '
        'f = open(path, "r+b"); f.seek((page - 1) * size); old = f.read(1); f.seek((page - 1) * size); '
        'f.write(bytes([0])); f.close(); print(old[0])')


@pytest.fixture
def damaged(host):
    """records.db damaged, the daemon stopped; repaired (original file, daemon started) after the test."""
    reset(host)
    host.check_output('/etc/init.d/micropvr stop')
    host.check_output('cp -p %s %s' % (DATABASE, SAVED))
    try:
        page_size = int(host.check_output('sqlite3 %s "PRAGMA page_size"' % DATABASE))
        index, page = host.check_output(
            'sqlite3 -separator " " %s "SELECT name, rootpage FROM sqlite_master WHERE type = \'index\' '
            'AND tbl_name = \'records\' ORDER BY name LIMIT 1"' % DATABASE).split()
        page = int(page)
        assert page > 1
        old_type = int(host.check_output("python3 -c '%s' %s %d %d" % (FLIP, DATABASE, page, page_size)))
        assert old_type in (2, 10), 'page %d of %s is not an index b-tree page (type %d)' % (page, DATABASE, old_type)
        yield dict(index=index, page=page)
    finally:
        # Repair the host for the tests after this one: the original file, the daemon running.
        host.check_output('cp -p %s %s && rm -f %s' % (SAVED, DATABASE, SAVED))
        host.check_output('/etc/init.d/micropvr start')


def test_the_default_backup_refuses_a_corrupt_live_database(host, damaged):
    assert host.run('sqlite3 %s "PRAGMA quick_check"' % SAVED).stdout.strip() == 'ok'
    damage = host.run('sqlite3 %s "PRAGMA quick_check"' % DATABASE).stdout
    # SQLite 3.40 (Debian 12) says 'Page 3: ...', newer ones 'Tree 3 page 3: ...'.
    assert 'page %d' % damaged['page'] in damage.lower(), damage  # the fault is real
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml')
    assert result.returncode != 0, result.output
    assert 'the new backup set did not verify; it was removed: sqlite/records.db: quick_check: ' in result.output, \
        result.output
    assert 'page %d' % damaged['page'] in result.output.lower(), result.output
    assert backup_ids(host) == before, 'the refused backup left a set behind'
    assert host.run('ls -A %s | grep "^.incomplete-"' % backup_root(host)).stdout == '', 'a partial set was left'


def test_after_the_repair_a_backup_succeeds(host):
    """The fixture has put the original file back and started the daemon: the host is healthy."""
    assert_healthy_on(host, baseline(host))
    assert host.run('sqlite3 %s "PRAGMA quick_check"' % DATABASE).stdout.strip() == 'ok'
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml')
    assert result.returncode == 0, result.output
    assert len(set(backup_ids(host)) - set(before)) == 1
