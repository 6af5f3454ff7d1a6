"""Unit tests for plugins/modules/micropvr_offsite.py, run through main() against the real restic
binary (Debian package restic) and local-path repositories in temporary directories."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from ansible.module_utils import basic

from backup_sets import KEYS, OTHER_KEY_HEX, OTHER_KEYS, TEST_KEY_HEX, make_set
from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, restic
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_offsite

pytestmark = pytest.mark.skipif(shutil.which('restic') is None,
                                reason='restic is not installed (Debian package restic; tests/testbed/host-setup.sh)')

PASSWORD = 'offsite test password 7f3a'
SETS = SET1, SET2, SET3, SET4 = '20261101T000000Z', '20261102T000000Z', '20261103T000000Z', '20261104T000000Z'
REASON1 = 'pre-update to 1.10.0-1, forced'
HOST = 'pvr1.example.net'  # what backup_sets.make_set writes in the manifest


@pytest.fixture
def calls(monkeypatch):
    """Every command the module runs: (argv, environment update)."""
    recorded = []
    original = basic.AnsibleModule.run_command

    def recording(self, args, *rest, **kwargs):
        recorded.append((list(args), dict(kwargs.get('environ_update') or {})))
        return original(self, args, *rest, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', recording)
    return recorded


@pytest.fixture
def run(capsys, calls):
    """Run the module; (rc, result), and the raw output must never hold the password."""
    def call(**args):
        rc, result = run_main(micropvr_offsite.main, capsys, **args)
        assert PASSWORD not in json.dumps(result)
        return rc, result
    return call


def private_dir(path):
    path.mkdir(mode=0o700)
    return str(path)


@pytest.fixture
def host_a(tmp_path):
    """The sending host: a backup root with one set, its state directory, and a repository path (not made)."""
    root = private_dir(tmp_path / 'a-backups')
    make_set(root, SET1, packages=False, reason=REASON1)
    return dict(backup_root=root, state_dir=str(tmp_path / 'a-state'), repository=str(tmp_path / 'repo'),
                password=PASSWORD, seal_key=TEST_KEY_HEX)


def _run_command(argv, env, cwd):
    process = subprocess.run(argv, env=dict(os.environ, **env), cwd=cwd, capture_output=True, text=True, check=False)
    return process.returncode, process.stdout, process.stderr


@pytest.fixture(scope='module')
def seeded(tmp_path_factory):
    """A backup root with SET1..SET4 of HOST and a repository holding all four, made once (every
    command that opens a repository costs restic's key derivation, about half a second)."""
    base = tmp_path_factory.mktemp('offsite-seed')
    root = private_dir(base / 'backups')
    work = private_dir(base / 'work')
    repo = restic.Restic(_run_command, shutil.which('restic'), str(base / 'repo'), work, password=PASSWORD)
    repo.init()
    for backup_id in SETS:
        make_set(root, backup_id, packages=False, reason=REASON1 if backup_id == SET1 else 'manual')
        manifest = backupset.load_manifest(os.path.join(root, backup_id))
        repo.backup(root, backup_id, HOST, restic.set_tags(HOST, backup_id, manifest['reason'], {}))
    return base


@pytest.fixture
def seeded_a(tmp_path, seeded):
    """A copy of the seeded host and repository for one test to use and damage."""
    root = str(tmp_path / 'a-backups')
    shutil.copytree(str(seeded / 'backups'), root, symlinks=True)
    shutil.copytree(str(seeded / 'repo'), str(tmp_path / 'repo'))
    return dict(backup_root=root, state_dir=str(tmp_path / 'a-state'), repository=str(tmp_path / 'repo'),
                password=PASSWORD, seal_key=TEST_KEY_HEX)


def args_of(base, **extra):
    values = dict(base)
    values.update(extra)
    return values


def send(run, host, backup_id=SET1, **extra):
    rc, result = run(**args_of(host, state='sent', backup_id=backup_id, init=True, **extra))
    assert rc == 0, result
    return result


def packs(repository):
    found = []
    for dirpath, dummy, filenames in os.walk(os.path.join(repository, 'data')):
        found.extend(os.path.join(dirpath, name) for name in filenames)
    return sorted(found, key=os.path.getsize)


def damage(repository, how):
    """Delete or corrupt the largest pack (the data of the set's files)."""
    pack = packs(repository)[-1]
    if how == 'delete':
        os.unlink(pack)
        return
    os.chmod(pack, 0o600)
    with open(pack, 'r+b') as handle:
        handle.seek(os.path.getsize(pack) // 2)
        handle.write(b'\xff' * 64)


def test_send_twice_the_second_run_changes_nothing_and_the_tags_say_what_the_set_is(host_a, run, calls):
    result = send(run, host_a)
    assert result['changed'] is True and result['initialized'] is True
    snapshot = result['snapshot']
    assert snapshot['backup_id'] == SET1 and snapshot['host'] == HOST and snapshot['hostname'] == HOST
    assert snapshot['reason'] == REASON1
    assert snapshot['tags'][:3] == ['micropvr', 'host=' + HOST, 'set=' + SET1]
    assert 'reason=pre-update%20to%201.10.0-1%2C%20forced' in snapshot['tags']
    again = send(run, host_a)
    assert again['changed'] is False and again['initialized'] is False
    assert again['snapshot']['id'] == snapshot['id']
    rc, listed = run(**args_of(host_a, state='listed', host=HOST))
    assert rc == 0 and [s['id'] for s in listed['snapshots']] == [snapshot['id']]
    # No secret on any command line; the password only ever in a file restic is pointed to.
    assert calls and not any(PASSWORD in word for argv, env in calls for word in argv)
    assert all(env.get('RESTIC_PASSWORD_FILE') for argv, env in calls if argv[0].endswith('restic'))
    assert not os.listdir(os.path.join(host_a['state_dir'], 'work'))


def test_check_mode_sends_nothing(host_a, run):
    send(run, host_a)
    make_set(host_a['backup_root'], SET2, packages=False)
    rc, result = run(**args_of(host_a, state='sent', backup_id=SET2, _ansible_check_mode=True))
    assert rc == 0 and result['changed'] is True and 'snapshot' not in result
    rc, listed = run(**args_of(host_a, state='listed', host=HOST))
    assert [s['backup_id'] for s in listed['snapshots']] == [SET1]


def test_the_wrong_password_is_named_and_never_shown(seeded_a, run):
    rc, result = run(**args_of(seeded_a, state='sent', backup_id=SET1, password='not the password'))
    assert rc == 1 and result['failed'] is True
    assert result['msg'] == 'wrong restic password for repository %s' % seeded_a['repository']
    assert result['error'] == 'password' and 'not the password' not in json.dumps(result)


def test_a_missing_repository_is_not_created_unless_asked(host_a, run):
    rc, result = run(**args_of(host_a, state='sent', backup_id=SET1))
    assert rc == 1 and result['msg'].startswith('there is no restic repository at %s' % host_a['repository'])
    assert not os.path.exists(host_a['repository'])


def test_a_password_in_a_rest_url_is_masked_everywhere(host_a, run):
    rc, result = run(**args_of(host_a, state='listed', repository='rest:http://micropvr:urlpass99@127.0.0.1:9/'))
    assert rc == 1 and result['error'] == 'unreachable'
    assert 'urlpass99' not in json.dumps(result)
    assert result['msg'].startswith('restic repository rest:http://micropvr:***@127.0.0.1:9/ is unreachable')


def test_a_set_that_does_not_verify_is_not_sent(host_a, run):
    with open(os.path.join(host_a['backup_root'], SET1, 'sqlite', 'records.db'), 'ab') as handle:
        handle.write(b'x')
    rc, result = run(**args_of(host_a, state='sent', backup_id=SET1, init=True))
    assert rc == 1 and 'is damaged, so it is not sent' in result['msg']


def test_verified_matches_and_notices_a_different_local_manifest(seeded_a, run):
    rc, result = run(**args_of(seeded_a, state='verified', backup_id=SET1, read_data_subset='100%'))
    assert rc == 0 and result['changed'] is False
    assert (result['offsite_status'], result['problems']) == ('verified', [])
    assert result['snapshot']['backup_id'] == SET1
    manifest = os.path.join(seeded_a['backup_root'], SET2, backupset.MANIFEST)
    with open(manifest, 'a') as handle:
        handle.write('\n')
    rc, result = run(**args_of(seeded_a, state='verified', backup_id=SET2))
    assert result['offsite_status'] == 'differs'
    rc, result = run(**args_of(seeded_a, state='verified', backup_id='20261105T000000Z'))
    assert rc == 0 and result['offsite_status'] == 'missing'


# A corrupted pack, not a deleted one: restic retries a missing file of a local repository with
# backoff for about 45 s per command, which is right for a network backend and too slow here.
@pytest.mark.parametrize('how', ['corrupt'])
def test_a_damaged_repository_is_reported_and_nothing_is_fetched_from_it(tmp_path, seeded_a, run, how):
    damage(seeded_a['repository'], how)
    rc, result = run(**args_of(seeded_a, state='verified', backup_id=SET1, read_data_subset='100%'))
    assert rc == 0 and result['offsite_status'] == 'damaged' and result['problems'], result
    host_b = dict(seeded_a, backup_root=private_dir(tmp_path / 'b-backups'), state_dir=str(tmp_path / 'b-state'))
    # SET1 went in first: the largest pack holds its files' data (the later sets share most of it).
    rc, result = run(**args_of(host_b, state='fetched', host=HOST, backup_id=SET1))
    assert rc == 1 and result['changed'] is False
    assert result['msg'].startswith('set %s of host %s was not fetched: restic restore could not read' % (SET1, HOST))
    assert os.listdir(host_b['backup_root']) == []


def test_fetched_onto_a_new_host_verifies_and_a_second_run_changes_nothing(tmp_path, seeded_a, run):
    host_b = dict(seeded_a, backup_root=private_dir(tmp_path / 'b-backups'), state_dir=str(tmp_path / 'b-state'))
    rc, result = run(**args_of(host_b, state='fetched', host=HOST, _ansible_check_mode=True))
    assert rc == 0 and result['changed'] is True and result['backup_id'] == SET4
    assert os.listdir(host_b['backup_root']) == []
    rc, result = run(**args_of(host_b, state='fetched', host=HOST))
    assert rc == 0 and result['changed'] is True and result['backup_id'] == SET4  # the newest set
    assert result['path'] == os.path.join(host_b['backup_root'], SET4)
    rc, result = run(**args_of(host_b, state='fetched', host=HOST, backup_id=SET1))
    assert rc == 0 and result['changed'] is True and result['snapshot']['reason'] == REASON1
    assert sorted(os.listdir(host_b['backup_root'])) == [SET1, SET4]
    for backup_id in (SET1, SET4):
        directory = os.path.join(host_b['backup_root'], backup_id)
        assert backupset.verify_files(directory, backupset.load_manifest(directory), KEYS) == []
    rc, result = run(**args_of(host_b, state='fetched', host=HOST, backup_id=SET1))
    assert rc == 0 and result['changed'] is False
    rc, result = run(**args_of(host_b, state='fetched', host='pvr9.example.net'))
    assert rc == 1 and result['msg'] == 'no set of host pvr9.example.net in repository %s (sets of it there: none)' % (
        seeded_a['repository'])


def test_a_set_of_another_host_is_fetched_only_with_its_key(tmp_path, run):
    root = private_dir(tmp_path / 'other-backups')
    make_set(root, SET3, packages=False, keys=OTHER_KEYS)
    other = dict(backup_root=root, state_dir=str(tmp_path / 'other-state'), repository=str(tmp_path / 'repo'),
                 password=PASSWORD, seal_key=OTHER_KEY_HEX)
    send(run, other, SET3)
    host_b = dict(other, backup_root=private_dir(tmp_path / 'b-backups'), state_dir=str(tmp_path / 'b-state'),
                  seal_key=TEST_KEY_HEX)
    rc, result = run(**args_of(host_b, state='fetched', host=HOST))
    assert rc == 1 and 'is tampered, so it was not kept' in result['msg'] and 'micropvr_seal_trusted_keys' in result['msg']
    assert os.listdir(host_b['backup_root']) == []
    rc, result = run(**args_of(host_b, state='fetched', host=HOST, trusted_seal_keys=[OTHER_KEY_HEX]))
    assert rc == 0 and result['changed'] is True and os.listdir(host_b['backup_root']) == [SET3]


def test_pruned_keeps_the_protected_set(seeded_a, run):
    policy = dict(state='pruned', host=HOST, backup_id=SET1, keep_last=1, keep_monthly=0)
    rc, result = run(**args_of(seeded_a, _ansible_check_mode=True, **policy))
    assert rc == 0 and result['changed'] is True
    assert sorted(s['backup_id'] for s in result['removed']) == [SET2, SET3]
    rc, result = run(**args_of(seeded_a, **policy))
    assert rc == 0 and result['changed'] is True
    assert sorted(s['backup_id'] for s in result['removed']) == [SET2, SET3]
    assert sorted(s['backup_id'] for s in result['kept']) == [SET1, SET4]
    rc, listed = run(**args_of(seeded_a, state='listed'))
    assert [s['backup_id'] for s in listed['snapshots']] == [SET4, SET1]
    rc, result = run(**args_of(seeded_a, **policy))
    assert rc == 0 and result['changed'] is False and result['removed'] == []
    rc, result = run(**args_of(seeded_a, state='pruned', host=HOST, backup_id=SET2))
    assert rc == 1 and 'no snapshot of set %s' % SET2 in result['msg']



def test_pruned_keeps_the_set_of_this_hosts_last_successful_update(seeded_a, run, monkeypatch):
    # The seeded sets are HOST's; this host is HOST, and its history says which update last succeeded.
    monkeypatch.setattr(micropvr_offsite.socket, 'getfqdn', lambda: HOST)
    state_dir = private_dir(pathlib.Path(seeded_a['state_dir']))
    hoststate.append_history(state_dir, dict(event='update', outcome='updated', backup_id=SET2))
    # A later update that failed and was rolled back does not move the protection.
    hoststate.append_history(state_dir, dict(event='update', outcome='rolled back', backup_id=SET3))
    rc, result = run(**args_of(seeded_a, state='pruned', keep_last=1, keep_monthly=0))
    assert rc == 0 and result['changed'] is True, result
    assert result['protected'] == [SET2]
    assert sorted(s['backup_id'] for s in result['removed']) == [SET1, SET3]
    assert sorted(s['backup_id'] for s in result['kept']) == [SET2, SET4]
    # Another host's sets: this host's history says nothing about them.
    rc, result = run(**args_of(seeded_a, state='pruned', host='pvr2.example.net', keep_last=1))
    assert rc == 0 and result['protected'] == [] and result['removed'] == [], result['msg']

def test_bad_options_are_refused_before_restic_runs(host_a, run, calls):
    for extra, words in ((dict(repository='relative/repo'), 'not an absolute local path'),
                         (dict(read_data_subset='lots'), 'read_data_subset'),
                         (dict(backend_env={'RESTIC_PASSWORD': 'x'}), 'set by the collection'),
                         (dict(backup_id='../etc'), 'backup_id')):
        rc, result = run(**args_of(host_a, **dict(dict(state='verified', backup_id=SET1), **extra)))
        assert rc == 1 and words in result['msg'], result
    assert not [argv for argv, env in calls if 'init' in argv or 'backup' in argv]
