"""Faults before the recovery, on the fresh host B: a wrong password and a damaged pack each end
with a clear message, no MicroPVR on B and no set left in its backup root."""

import pytest

from disasterlib import (
    B, DAMAGED, DAMAGED_DIR, PASSWORD_FILE, REPOSITORY_DIR, backup_root_entries, load_state, micropvr_installed,
    offsite_module, restic, run, snapshots, vault_password, write_password_file)
from micropvr_testlib import flip_byte


@pytest.fixture(scope='module')
def lost():
    return load_state()


def assert_b_untouched(host_b):
    assert micropvr_installed(host_b) == []
    assert backup_root_entries(host_b) == [], 'a set or a staging directory was left in the backup root'


def test_wrong_password_is_refused_clearly(host_b, lost):
    result = run(B, 'restore_host.yml', micropvr_recover_host=lost['fqdn'],
                 micropvr_offsite_password='not-the-repository-password')
    assert result.returncode != 0, result.output
    assert 'wrong restic password for repository' in result.output
    assert 'not-the-repository-password' not in result.output
    assert_b_untouched(host_b)


@pytest.fixture(scope='module')
def damaged(host_b, repo, lost):
    """A copy of the repository with one pack that the newest set needs flipped in its middle."""
    repo.check_output('rm -rf %s && cp -a %s %s' % (DAMAGED_DIR, REPOSITORY_DIR, DAMAGED_DIR))
    write_password_file(host_b, vault_password(host_b))
    (snapshot,) = [s for s in snapshots(host_b, DAMAGED) if s['tag_values']['set'] == lost['backup_id']]
    packs = repo.check_output('find %s/data -type f -printf "%%s %%f\\n" | sort -rn' % DAMAGED_DIR).splitlines()
    # The biggest pack that holds a file of the newest set (restic find --pack names them).
    for line in packs:
        size, pack = line.split()
        found = restic(host_b, DAMAGED, 'find', '--pack', pack, '--snapshot', snapshot['id'])
        assert found.rc == 0, found.stderr
        if '/%s/' % lost['backup_id'] in found.stdout:
            break
    else:
        raise AssertionError('no pack of the repository holds a file of set %s' % lost['backup_id'])
    path = repo.check_output('find %s/data -type f -name %s' % (DAMAGED_DIR, pack))
    # Flipped, not deleted: restic retries a missing pack for a long time before it gives up.
    for offset in range(int(size) // 2, int(size) // 2 + 64):
        flip_byte(repo, path, offset)
    return dict(snapshot=snapshot, pack=pack)


def test_restic_check_reports_the_damaged_pack(host_b, lost, damaged):
    out = restic(host_b, DAMAGED, 'check', '--read-data')
    assert out.rc != 0
    assert damaged['pack'] in out.stdout + out.stderr


def test_offsite_verify_says_damaged(host_b, lost, damaged):
    rc, result = offsite_module(host_b, state='verified', backup_id=lost['backup_id'],
                                host=lost['fqdn'], repository=DAMAGED, password_file=PASSWORD_FILE,
                                read_data_subset='100%')
    assert rc == 0, result
    assert result['offsite_status'] == 'damaged', result
    assert [p for p in result['problems'] if damaged['pack'][:8] in p], result['problems']


def test_recovery_refuses_a_snapshot_it_cannot_read(host_b, lost, damaged):
    result = run(B, 'restore_host.yml', micropvr_recover_host=lost['fqdn'], micropvr_offsite_repository=DAMAGED)
    assert result.returncode != 0, result.output
    assert 'could not read' in result.output and 'of the snapshot' in result.output, result.output
    assert_b_untouched(host_b)
