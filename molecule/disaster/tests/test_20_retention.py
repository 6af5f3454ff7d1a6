"""Retention in the repository: with keep_last=1 the newest set stays, and so does the set of
A's last successful update, however many sets come after it."""

import pytest

from disasterlib import A, backup_ids, manifest, run, snapshots
from gatelib import history


@pytest.fixture(scope='module')
def retention(host_a):
    before = snapshots(host_a)
    update = run(A, 'update.yml', micropvr_version='1.10.0-1')
    assert update.returncode == 0, update.output
    backups = [run(A, 'backup.yml', micropvr_backup_reason='disaster retention %d' % n, micropvr_offsite_keep_last=1)
               for n in range(2)]
    for result in backups:
        assert result.returncode == 0, result.output
    updates = [e for e in history(host_a) if e['event'] == 'update' and e['outcome'] == 'updated']
    return dict(before=before, update=update, pre_update=updates[-1]['backup_id'], after=snapshots(host_a))


def test_update_sends_its_pre_update_set(host_a, retention):
    assert 'off-host copy: verified (snapshot ' in retention['update'].output
    assert manifest(host_a, retention['pre_update'])['reason'] == 'pre-update to 1.10.0-1'
    update = [e for e in history(host_a) if e['event'] == 'update' and e['outcome'] == 'updated'][-1]
    assert update['offsite_status'] == 'verified'


def test_repository_keeps_newest_and_pre_update_sets(host_a, retention):
    in_repository = sorted(s['tag_values']['set'] for s in retention['after'])
    assert in_repository == sorted([retention['pre_update'], backup_ids(host_a)[-1]])
    # The sets of test_10 were there and are pruned.
    assert len(retention['before']) >= 2
    assert not set(s['tag_values']['set'] for s in retention['before']) & set(in_repository)
