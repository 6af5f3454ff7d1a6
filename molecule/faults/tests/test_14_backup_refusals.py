"""Fault 14: backup.yml on a host it must not back up as it is.

* micropvr.conf does not parse (the vendor's sample has a missing comma): a set taken then would
  lack the databases the file names, and still verify. The backup refuses with file and line,
  unless the operator names the databases.
* An update or rollback holds the host lock: the backup waits (micropvr_backup_lock_timeout),
  then refuses naming the run; a lock with an unfinished step is refused at once.
"""

import json

import pytest

from faultlib import LOCK, backup_ids, reset, run_playbook

CONFIG = '/etc/micropvr/micropvr.conf'


@pytest.fixture(scope='module')
def clean(host):
    reset(host)


def test_an_invalid_config_refuses_the_backup(host, clean):
    host.check_output('cp -p %s /root/micropvr.conf.good' % CONFIG)
    # The vendor's sample: a comma missing at the end of a line.
    line = int(host.check_output("grep -n '\"log-verbose-level\"' %s | cut -d: -f1" % CONFIG))
    host.check_output("sed -i '%ds/: \\([0-9]*\\),/: \\1/' %s" % (line, CONFIG))
    before = backup_ids(host)
    try:
        refused = run_playbook(host, 'backup.yml')
        named = run_playbook(host, 'backup.yml', micropvr_sqlite_databases=['/etc/micropvr/records.db',
                                                                             '/etc/micropvr/tasks.db'])
    finally:
        host.check_output('cp -p /root/micropvr.conf.good %s' % CONFIG)
    assert refused.returncode != 0
    assert 'config_file: %s:%d: Expecting \',\' delimiter (is a comma missing at the end of line %d?)' % (
        CONFIG, line + 1, line) in refused.output, refused.output
    assert 'no backup was taken' in refused.output and 'micropvr_sqlite_databases' in refused.output
    assert named.returncode == 0, named.output
    added = sorted(set(backup_ids(host)) - set(before))
    assert len(added) == 1, 'the refused backup left a set behind'


def test_a_backup_waits_for_the_host_lock_then_refuses(host, clean):
    lock = dict(owner='20261201T000000Z-update-elsewhere', purpose='update to 1.10.0-1',
                acquired_at='2026-12-01T00:00:00Z')
    host.check_output("printf '%%s' '%s' > %s" % (json.dumps(lock), LOCK))
    before = backup_ids(host)
    try:
        waited = run_playbook(host, 'backup.yml', micropvr_backup_lock_timeout=3)
        lock['step'] = dict(name='restore', backup_id='20261130T000000Z', pid=1, started_at='2026-12-01T00:00:05Z')
        host.check_output("printf '%%s' '%s' > %s" % (json.dumps(lock), LOCK))
        unfinished = run_playbook(host, 'backup.yml')
    finally:
        host.run('rm -f %s' % LOCK)
    assert waited.returncode != 0
    assert ('refusing to back up: the host is locked by run 20261201T000000Z-update-elsewhere (update to 1.10.0-1, '
            'since 2026-12-01T00:00:00Z) and it did not finish within 3 s') in waited.output, waited.output
    assert unfinished.returncode != 0
    assert 'left its restore step unfinished' in unfinished.output, unfinished.output
    assert backup_ids(host) == before
    after = run_playbook(host, 'backup.yml')
    assert after.returncode == 0, after.output
