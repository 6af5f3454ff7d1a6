"""Host A backed up while its daemon writes: the set goes off-host as one tagged snapshot, is
verified there, a second set adds little to the repository, backup_verify.yml checks the copy."""

import time

import pytest

from disasterlib import (
    A, REPOSITORY, backup_ids, manifest, repository_size, run, snapshots, vault_password, write_password_file)

WRITER_LOG = '/run/standin-writer.log'
STOP_FILE = '/run/standin-writer.stop'
REASON = 'disaster under writes'


def _writes(host):
    return [(float(line.split()[0]), line.split()[1]) for line in host.file(WRITER_LOG).content_string.splitlines()]


@pytest.fixture(scope='module')
def first(host_a, repo):
    write_password_file(host_a, vault_password(host_a))
    host_a.run('rm -f %s %s' % (WRITER_LOG, STOP_FILE))
    host_a.check_output('setsid nohup /usr/local/bin/standin-writer --log %s --stop-file %s '
                        '>/dev/null 2>&1 < /dev/null &' % (WRITER_LOG, STOP_FILE))
    deadline = time.time() + 30
    while time.time() < deadline and (not host_a.file(WRITER_LOG).exists or len(_writes(host_a)) < 50):
        time.sleep(0.5)
    before = set(backup_ids(host_a))
    size_before = repository_size(repo)
    started = float(host_a.check_output('date +%s.%N'))
    result = run(A, 'backup.yml', micropvr_backup_reason=REASON)
    finished = float(host_a.check_output('date +%s.%N'))
    host_a.check_output('touch %s' % STOP_FILE)
    time.sleep(1)
    new = sorted(set(backup_ids(host_a)) - before)
    return dict(result=result, new=new, started=started, finished=finished, writes=_writes(host_a),
                size=repository_size(repo) - size_before)


@pytest.fixture(scope='module')
def second(host_a, repo, first):
    before = set(backup_ids(host_a))
    size_before = repository_size(repo)
    result = run(A, 'backup.yml', micropvr_backup_reason='disaster second set')
    return dict(result=result, new=sorted(set(backup_ids(host_a)) - before), size=repository_size(repo) - size_before)


def test_backup_sends_a_verified_copy(first):
    assert first['result'].returncode == 0, first['result'].output
    assert len(first['new']) == 1
    offsite = first['result'].stats['micropvr_backup_sets'][A]['offsite']
    assert offsite['status'] == 'verified', offsite
    assert offsite['repository'] == REPOSITORY
    assert 'Off-host copy of %s verified' % first['new'][0] in first['result'].output


def test_daemon_kept_writing_during_the_backup(first):
    assert not [w for w in first['writes'] if w[1] != 'ok'], 'the writer saw errors'
    during = [t for t, status in first['writes'] if first['started'] < t < first['finished']]
    assert len(during) >= 5


def test_set_is_one_tagged_snapshot(host_a, first):
    backup_id = first['new'][0]
    data = manifest(host_a, backup_id)
    mine = [s for s in snapshots(host_a) if s['tag_values'].get('set') == backup_id]
    assert len(mine) == 1, mine
    tags = mine[0]['tag_values']
    assert tags['host'] == data['host'] == mine[0]['hostname']
    assert tags['reason'] == REASON
    assert tags['versions'] == ';'.join('%s=%s' % (name, info['version'])
                                        for name, info in sorted(data['packages'].items()))
    assert mine[0]['short_id'] == first['result'].stats['micropvr_backup_sets'][A]['offsite']['snapshot']


def test_second_set_adds_little(first, second):
    assert second['result'].returncode == 0, second['result'].output
    assert second['result'].stats['micropvr_backup_sets'][A]['offsite']['status'] == 'verified'
    # Deduplicated: the nearly identical set costs a small part of the first one.
    assert first['size'] > 0
    assert second['size'] < first['size'] / 4, (first['size'], second['size'])


def test_backup_verify_checks_the_off_host_copy(host_a, second):
    (backup_id,) = second['new']
    result = run(A, 'backup_verify.yml', micropvr_backup_id=backup_id)
    assert result.returncode == 0, result.output
    assert 'Off-host copy of %s: VERIFIED' % backup_id in result.output
