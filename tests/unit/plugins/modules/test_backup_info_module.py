"""Unit tests for plugins/modules/micropvr_backup_info.py, run through main() on real sets."""

import json
import os
import stat

import pytest
import yaml

from backup_sets import (
    OTHER_KEY_HEX,
    OTHER_KEYS,
    TEST_KEY_HEX,
    make_set,
    reseal,
    reseal_unkeyed,
    write_raw,
)
from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import backup_root as backup_root_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import seal as seal_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import state_dir as state_dir_fragment
from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils.backupset import (
    STATUS_DAMAGED,
    STATUS_TAMPERED,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    load_manifest,
)
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_backup_info

GOOD, UNVERIFIED, EDITED, OLD_SEAL, OTHER_HOST, SHAPE, UNSEALED_SHAPE, NO_MANIFEST = (
    '20261101T000000Z', '20261102T000000Z', '20261103T000000Z', '20261104T000000Z', '20261105T000000Z',
    '20261106T000000Z', '20261107T000000Z', '20261108T000000Z')


@pytest.fixture
def run(capsys):
    def call(**args):
        return run_main(micropvr_backup_info.main, capsys, **args)
    return call


@pytest.fixture
def root(tmp_path):
    """A backup root with a set of every kind (no packages: nothing needs dpkg-deb)."""
    path = tmp_path / 'backups'
    path.mkdir(mode=0o700)
    make_set(path, GOOD, packages=False)
    make_set(path, UNVERIFIED, packages=False, verified=False)
    directory, manifest = make_set(path, EDITED, packages=False)
    manifest = load_manifest(directory)
    manifest['pinned'] = True
    write_raw(directory, manifest)
    directory, manifest = make_set(path, OLD_SEAL, packages=False)
    reseal_unkeyed(directory, lambda m: m['sqlite'][0].__setitem__('source', str(tmp_path / 'shadow')))
    make_set(path, OTHER_HOST, packages=False, keys=OTHER_KEYS)
    directory, manifest = make_set(path, SHAPE, packages=False)
    reseal(directory, lambda m: m.__setitem__('packages', [1]))
    directory, manifest = make_set(path, UNSEALED_SHAPE, packages=False)
    manifest = load_manifest(directory)
    manifest['config'] = {'entries': [1]}
    write_raw(directory, manifest)
    (path / NO_MANIFEST).mkdir()
    return str(path)


def args(tmp_path, root, **extra):
    values = dict(backup_root=root, state_dir=str(tmp_path / 'state'), seal_key=TEST_KEY_HEX)
    values.update(extra)
    return values


def statuses(result):
    return dict((s['id'], s['status']) for s in result['sets'])


def test_listing_reports_tampered_and_damaged_sets_without_an_exception(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root))
    assert rc == 0, result
    assert result['changed'] is False
    assert [s['id'] for s in result['sets']] == [NO_MANIFEST, UNSEALED_SHAPE, SHAPE, OTHER_HOST, OLD_SEAL, EDITED,
                                                 UNVERIFIED, GOOD]
    assert statuses(result) == {
        GOOD: STATUS_VERIFIED, UNVERIFIED: STATUS_UNVERIFIED, EDITED: STATUS_TAMPERED, OLD_SEAL: STATUS_TAMPERED,
        OTHER_HOST: STATUS_TAMPERED, SHAPE: STATUS_DAMAGED, UNSEALED_SHAPE: STATUS_DAMAGED,
        NO_MANIFEST: STATUS_DAMAGED}
    assert result['tampered'] == [OTHER_HOST, OLD_SEAL, EDITED]
    assert result['damaged'] == [NO_MANIFEST, UNSEALED_SHAPE, SHAPE]
    by_id = dict((s['id'], s) for s in result['sets'])
    assert by_id[SHAPE]['problems'] == ['manifest.json: packages: list where dict was expected']
    assert all(s['verified'] is False for s in result['sets'])
    assert TEST_KEY_HEX not in json.dumps(result)


def test_verify_reports_tampered_and_damaged_sets_without_an_exception(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root, verify=True))
    assert rc == 0, result
    assert statuses(result) == {
        GOOD: STATUS_VERIFIED, UNVERIFIED: STATUS_UNVERIFIED, EDITED: STATUS_TAMPERED, OLD_SEAL: STATUS_TAMPERED,
        OTHER_HOST: STATUS_TAMPERED, SHAPE: STATUS_DAMAGED, UNSEALED_SHAPE: STATUS_TAMPERED,
        NO_MANIFEST: STATUS_DAMAGED}
    by_id = dict((s['id'], s) for s in result['sets'])
    assert all(s['verified'] is True for s in result['sets'])
    assert by_id[GOOD]['problems'] == [] and by_id[UNVERIFIED]['problems'] == []
    assert by_id[OLD_SEAL]['problems'][0].startswith('manifest.json has only an unkeyed checksum')
    assert by_id[SHAPE]['problems'] == ['packages: list where dict was expected']
    assert set(result['tampered']) == {OTHER_HOST, OLD_SEAL, EDITED, UNSEALED_SHAPE}


def test_one_set_by_id(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root, backup_id=SHAPE, verify=True))
    assert rc == 0, result
    assert [(s['id'], s['status']) for s in result['sets']] == [(SHAPE, STATUS_DAMAGED)]
    assert result['damaged'] == [SHAPE] and result['tampered'] == []


def test_trusted_keys_accept_the_set_of_another_host(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root, backup_id=OTHER_HOST, verify=True, trusted_seal_keys=[OTHER_KEY_HEX]))
    assert rc == 0, result
    assert result['sets'][0]['status'] == STATUS_VERIFIED
    assert OTHER_KEY_HEX not in json.dumps(result)


def test_the_host_key_file_is_used_and_never_created(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root, seal_key=None, backup_id=GOOD))
    assert rc == 0, result
    assert result['sets'][0]['status'] == STATUS_TAMPERED
    assert 'this host has no seal key' in result['sets'][0]['problems'][0]
    assert not os.path.exists(str(tmp_path / 'state'))
    # With the key in the key file the set verifies.
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    key_file = state_dir / backupset.SEAL_KEY_FILE
    key_file.write_text(TEST_KEY_HEX + '\n')
    os.chmod(str(key_file), 0o600)
    rc, result = run(**args(tmp_path, root, seal_key=None, backup_id=GOOD, verify=True))
    assert rc == 0, result
    assert result['sets'][0]['status'] == STATUS_VERIFIED


def test_a_key_file_open_to_others_fails_the_module(tmp_path, root, run):
    state_dir = tmp_path / 'state'
    state_dir.mkdir(mode=0o700)
    key_file = state_dir / backupset.SEAL_KEY_FILE
    key_file.write_text(TEST_KEY_HEX + '\n')
    os.chmod(str(key_file), 0o644)
    rc, result = run(**args(tmp_path, root, seal_key=None))
    assert rc == 1
    assert 'must be a regular file owned by uid' in result['msg']
    assert TEST_KEY_HEX not in json.dumps(result)


def test_a_bad_seal_key_fails_without_showing_it(tmp_path, root, run):
    rc, result = run(**args(tmp_path, root, seal_key='my-passphrase-is-not-a-key'))
    assert rc == 1
    assert result['msg'].startswith('seal_key: ')
    assert 'my-passphrase-is-not-a-key' not in json.dumps(result)


def test_a_symlink_named_like_a_set_is_not_listed(tmp_path, root, run):
    elsewhere = tmp_path / 'elsewhere'
    make_set(elsewhere, '20261231T000000Z', packages=False)
    os.symlink(str(elsewhere / '20261231T000000Z'), os.path.join(root, '20261231T000000Z'))
    rc, result = run(**args(tmp_path, root))
    assert rc == 0, result
    assert '20261231T000000Z' not in statuses(result)


@pytest.mark.parametrize('option, value', [
    ('backup_root', '/tmp'), ('backup_root', '/'), ('backup_root', ''), ('backup_root', 'relative/backups'),
    ('backup_root', 'GROUP_WRITABLE'), ('state_dir', '/tmp'), ('state_dir', 'GROUP_WRITABLE'),
])
def test_an_unsafe_root_or_state_dir_is_refused(tmp_path, root, run, option, value):
    if value == 'GROUP_WRITABLE':
        value = str(tmp_path / 'open')
        os.mkdir(value)
        os.chmod(value, 0o775)
    tmp_mode = stat.S_IMODE(os.stat('/tmp').st_mode)
    rc, result = run(**args(tmp_path, root, **{option: value}))
    assert rc == 1
    assert option in result['msg'], result['msg']
    assert stat.S_IMODE(os.stat('/tmp').st_mode) == tmp_mode


def test_documentation_matches_argument_spec():
    documentation = yaml.safe_load(micropvr_backup_info.DOCUMENTATION)
    assert 'microimpuls.micropvr.seal' in documentation['extends_documentation_fragment']
    assert 'microimpuls.micropvr.backup_root' in documentation['extends_documentation_fragment']
    doc = documentation['options']
    doc.update(yaml.safe_load(backup_root_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    doc.update(yaml.safe_load(seal_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    doc.update(yaml.safe_load(state_dir_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    assert sorted(doc) == ['backup_id', 'backup_root', 'seal_key', 'sqlite_check', 'state_dir', 'trusted_seal_keys',
                           'verify']
    assert doc['sqlite_check']['default'] == 'full'
    assert doc['state_dir']['default'] == '/var/lib/microimpuls-micropvr'
    returned = yaml.safe_load(micropvr_backup_info.RETURN)
    assert 'tampered' in returned and 'tampered' in returned['sets']['contains']['status']['description']
