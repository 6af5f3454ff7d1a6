"""Refusals that leave nothing behind: too little space; check mode."""

import re

from micropvr_testlib import BACKUP_ROOT, backup_ids, run_playbook

TINY = '/var/backups/tiny'


def test_too_small_filesystem_is_refused_with_both_numbers(host):
    result = run_playbook(host, 'backup.yml', micropvr_backup_root=TINY)
    assert result.returncode != 0
    match = re.search(r'not enough free space for a backup set in %s: need about ([\d.]+) MiB '
                      r'\(estimated set size ([\d.]+) MiB \+ margin 64 MiB\), only ([\d.]+) MiB free' % TINY,
                      result.output)
    assert match, result.output
    need, estimate, free = (float(g) for g in match.groups())
    assert free < need and estimate > 0
    assert host.check_output('ls -A %s' % TINY) == ''


def test_check_mode_writes_nothing(host):
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml', '--check')
    assert result.returncode == 0, result.output
    assert 'Check mode: would back up micropvr 1.9.0-1, micropvs 1.9.0-1' in result.output
    assert backup_ids(host) == before
    assert host.check_output('ls -A %s' % BACKUP_ROOT).count('.incomplete') == 0
