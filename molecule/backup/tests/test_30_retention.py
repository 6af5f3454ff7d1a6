"""Retention keeps the newest micropvr_backup_keep sets and every pinned one."""

from micropvr_testlib import BACKUP_ROOT, backup_ids, manifest, run_playbook


def test_retention_keeps_newest_and_pinned(host):
    host.check_output('rm -rf %s/2*' % BACKUP_ROOT)
    pinned = run_playbook(host, 'backup.yml', micropvr_backup_pin=True, micropvr_backup_reason='pinned')
    assert pinned.returncode == 0, pinned.output
    pinned_id = backup_ids(host)[0]
    assert manifest(host, pinned_id)['pinned'] is True
    taken = []
    for _run in range(4):
        result = run_playbook(host, 'backup.yml', micropvr_backup_keep=2)
        assert result.returncode == 0, result.output
        taken.append(backup_ids(host)[-1])  # ids sort by creation time
    assert backup_ids(host) == sorted([pinned_id] + taken[-2:])
    # The last run reports what retention removed.
    assert 'Retention removed: %s' % taken[-3] in result.output
