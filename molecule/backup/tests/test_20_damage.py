"""backup_verify reports a set with one flipped byte as damaged, never as good."""

import pytest

from micropvr_testlib import BACKUP_ROOT, backup_ids, flip_byte, run_playbook


@pytest.fixture(scope='module')
def sets(host):
    before = set(backup_ids(host))
    for reason in ('to damage a database copy', 'to damage a package'):
        result = run_playbook(host, 'backup.yml', micropvr_backup_reason=reason)
        assert result.returncode == 0, result.output
    return sorted(set(backup_ids(host)) - before)


def test_intact_set_verifies(host, sets):
    result = run_playbook(host, 'backup_verify.yml', micropvr_backup_id=sets[0])
    assert result.returncode == 0, result.output
    assert '%s: VERIFIED' % sets[0] in result.output


@pytest.mark.parametrize('index, relpath', [(0, 'sqlite/tasks.db'), (1, 'packages/micropvs_1.9.0-1_amd64.deb')])
def test_flipped_byte_is_reported_damaged(host, sets, index, relpath):
    flip_byte(host, '%s/%s/%s' % (BACKUP_ROOT, sets[index], relpath), 3000)
    result = run_playbook(host, 'backup_verify.yml', micropvr_backup_id=sets[index])
    assert result.returncode != 0
    assert '%s: DAMAGED' % sets[index] in result.output
    assert '%s: sha256 does not match the manifest' % relpath in result.output
    assert 'Damaged backup set(s)' in result.output


def test_verify_all_fails_while_one_set_is_damaged(host, sets):
    result = run_playbook(host, 'backup_verify.yml')
    assert result.returncode != 0
    assert '%s: DAMAGED' % sets[0] in result.output
    host.check_output('rm -rf %s/%s %s/%s' % (BACKUP_ROOT, sets[0], BACKUP_ROOT, sets[1]))
    result = run_playbook(host, 'backup_verify.yml')
    assert result.returncode == 0, result.output
