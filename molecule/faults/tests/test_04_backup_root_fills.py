"""Fault 4: the backup filesystem fills up while the pre-update backup is written (another
writer takes the space while pg_dump runs). The backup fails with the space message, no partial
set remains, and the update does not start."""

import pytest

from faultlib import (
    assert_data_as_before, assert_healthy_on, backup_ids, baseline, blocker_report, reset, run_blocker, run_playbook,
    target)

TINY = '/var/backups/tiny'
REPORT = '/root/fill-report'


@pytest.fixture(scope='module')
def update(host):
    reset(host)
    host.run('rm -rf %s/* %s/.[!.]*' % (TINY, TINY))
    run_blocker(host, REPORT, engines='postgresql', fill=TINY)
    try:
        result = run_playbook(host, 'update.yml', micropvr_version=target(host), micropvr_backup_root=TINY,
                              micropvr_backup_space_margin_mb=1)
        result.report = blocker_report(host, REPORT)
        result.left = host.check_output('ls -A %s' % TINY).split()
        yield result
    finally:
        host.run('rm -f %s/filler' % TINY)


def test_the_space_ran_out_in_the_middle_of_the_backup(update):
    assert update.report['filled'] is True and update.report['seen'] == {'postgresql': True}


def test_the_backup_fails_with_the_space_message(update):
    assert update.returncode != 0
    assert 'the backup root %s ran out of space while the set was written' % TINY in update.output, update.output
    assert 'postgresql database middleware' in update.output  # the part that did not fit
    assert 'the partial set was removed. Free space there, or set micropvr_backup_root' in update.output


def test_no_partial_set_remains(host, update):
    assert backup_ids(host, TINY) == []
    assert sorted(update.left) == ['.lock', 'filler']


def test_the_update_did_not_start(host, update):
    assert 'TASK [microimpuls.micropvr.update : Install the target version behind the backup gate]' not in update.output
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)
