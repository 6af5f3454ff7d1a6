"""Unit tests for plugins/module_utils/backupset.py: ids, keyed seal, seal keys, manifest, verification,
listing and retention.

Every set is a real one on disk (backup_sets.make_set: a real config.tar, SQLite copy, .deb files
and dump, sealed with a test key), so that what passes here is what micropvr_backup writes.
"""

import copy
import datetime
import hashlib
import hmac
import io
import json
import os
import random
import stat
import tarfile

import pytest

from backup_sets import (
    count_calls,
    DEB_FIELDS,
    DUMP_FILE,
    KEYS,
    OTHER_KEY,
    OTHER_KEY_HEX,
    OTHER_KEYS,
    PACKAGES,
    SQLITE_FILE,
    TEST_KEY,
    TEST_KEY_HEX,
    make_set,
    reseal,
    reseal_unkeyed,
    unkeyed_seal,
    write_raw,
)
from fake_module import FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils.backupset import (
    FORMAT_VERSION,
    INCOMPLETE_PREFIX,
    MANIFEST,
    SEAL_KEY_FILE,
    STATUS_DAMAGED,
    STATUS_TAMPERED,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    BackupSetError,
    SealKeys,
    file_entry,
    key_id,
    list_set_dirs,
    list_sets,
    load_manifest,
    new_backup_id,
    parse_key,
    read_key_file,
    seal_keys,
    select_for_removal,
    set_path,
    set_size,
    sha256_file,
    status_of,
    summarize,
    utc_now_iso,
    validate_backup_id,
    verify_files,
    verify_set,
    write_manifest,
)

UTC = datetime.timezone.utc
ID = '20261126T221500Z'
CHANGED = 'manifest.json was changed after the backup was taken (its seal does not verify)'
FORMAT_1 = ('manifest.json has only an unkeyed checksum (a set of format 1, from before keyed seals), so it '
            'cannot be authenticated')


def flip_byte(path, offset=0):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def files_of(directory):
    """Relative paths of every file in ``directory``."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(str(directory)):
        found.extend(os.path.relpath(os.path.join(dirpath, name), str(directory)) for name in filenames)
    return sorted(found)


def expected_hmac(manifest, key=TEST_KEY):
    body = dict((k, v) for k, v in manifest.items() if k not in ('seal', 'manifest_sha256'))
    return hmac.new(key, json.dumps(body, sort_keys=True, separators=(',', ':')).encode('utf-8'),
                    hashlib.sha256).hexdigest()


class DebModule(FakeModuleBase):
    """dpkg-deb --field answers from {basename: fields}; nothing else runs."""

    def __init__(self, fields=None, bins=None):
        self.fields = DEB_FIELDS if fields is None else fields
        self.bins = bins if bins is not None else {'dpkg-deb': '/usr/bin/dpkg-deb'}
        self.commands = []

    def run_command(self, args, **kwargs):
        self.commands.append(list(args))
        if args[0] == '/usr/bin/dpkg-deb':
            fields = self.fields.get(os.path.basename(args[2]))
            if fields is None:
                return 2, '', 'dpkg-deb: error: not a Debian format archive\n'
            return 0, ''.join('%s: %s\n' % item for item in fields.items()), ''
        return 127, '', 'unexpected command'


def test_sample_set_is_a_sound_format_2_set(tmp_path):
    """The helper every test uses writes what micropvr_backup writes: it passes every check."""
    directory, manifest = make_set(tmp_path, ID)
    assert manifest['format_version'] == FORMAT_VERSION == 2
    assert confine.manifest_problems(manifest) == []
    assert confine.archive_problems(manifest, os.path.join(directory, 'config.tar')) == []
    assert [e['type'] for e in manifest['config']['entries']] == ['directory', 'directory', 'file', 'symlink',
                                                                  'file']
    assert files_of(directory) == sorted(['config.tar', SQLITE_FILE, DUMP_FILE, MANIFEST] +
                                         [path for version, path in PACKAGES.values()])
    assert verify_set(DebModule(), directory, ID, KEYS) == (load_manifest(directory), [], STATUS_VERIFIED)


# --- ids ---------------------------------------------------------------------------------------

def test_new_backup_id_format_is_utc_second():
    now = datetime.datetime(2026, 11, 26, 22, 15, 0, 987654, tzinfo=UTC)
    assert new_backup_id(now, set()) == '20261126T221500Z'


def test_new_backup_id_converts_other_timezones_to_utc():
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    now = datetime.datetime(2026, 11, 27, 1, 15, 0, tzinfo=moscow)
    assert new_backup_id(now, set()) == '20261126T221500Z'


def test_new_backup_id_collisions_in_the_same_second_get_a_counter():
    now = datetime.datetime(2026, 11, 26, 22, 15, 0, tzinfo=UTC)
    assert new_backup_id(now, {'20261126T221500Z'}) == '20261126T221500Z-2'
    assert new_backup_id(now, {'20261126T221500Z', '20261126T221500Z-2'}) == '20261126T221500Z-3'
    # Sets of other seconds do not matter; a free base id is used even if a counter id exists.
    assert new_backup_id(now, {'20261126T221459Z', '20261126T221500Z-2'}) == '20261126T221500Z'


def test_new_backup_id_results_are_valid_and_distinct():
    now = datetime.datetime(2026, 11, 26, 22, 15, 0, tzinfo=UTC)
    existing = set()
    for dummy in range(20):
        backup_id = new_backup_id(now, existing)
        assert validate_backup_id(backup_id) == backup_id
        assert backup_id not in existing
        existing.add(backup_id)
    assert len(existing) == 20


def test_new_backup_id_never_returns_an_id_that_does_not_validate():
    now = datetime.datetime(2026, 11, 26, 22, 15, 0, tzinfo=UTC)
    existing = {'20261126T221500Z'} | {'20261126T221500Z-%d' % n for n in range(2, 1000)}
    validate_backup_id(new_backup_id(now, existing))


@pytest.mark.parametrize('value', ['20261126T221500Z', '20261126T221500Z-2', '20261126T221500Z-999',
                                   '19991231T235959Z'])
def test_validate_backup_id_accepts(value):
    assert validate_backup_id(value) == value


@pytest.mark.parametrize('value', [None, '', 20261126, b'20261126T221500Z'])
def test_validate_backup_id_refuses_non_strings_and_empty(value):
    with pytest.raises(BackupSetError) as excinfo:
        validate_backup_id(value)
    assert str(excinfo.value) == 'backup id must be a non-empty string'


@pytest.mark.parametrize('value', ['../x', 'a/b', '..', '.', '/etc', 'a\\b', '20261126T221500Z/..',
                                   '..20261126T221500Z'])
def test_validate_backup_id_refuses_paths(value):
    with pytest.raises(BackupSetError) as excinfo:
        validate_backup_id(value)
    assert str(excinfo.value) == "backup id %r must be a plain name, not a path (no '/' or '..')" % value


@pytest.mark.parametrize('value', ['2026-11-26', '20261126T221500', '20261126t221500z', '20261126T221500Z-',
                                   '20261126T221500Z-01', '20261126T221500Z-0', '20261126T221500Z-a', 'x20261126T221500Z',
                                   ' 20261126T221500Z', '2026112T221500Z', 'latest'])
def test_validate_backup_id_refuses_malformed(value):
    with pytest.raises(BackupSetError) as excinfo:
        validate_backup_id(value)
    assert str(excinfo.value) == ('backup id %r is not of the form YYYYMMDDTHHMMSSZ (UTC time, e.g. '
                                  '20261126T221500Z)' % value)


def test_validate_backup_id_refuses_trailing_newline():
    with pytest.raises(BackupSetError):
        validate_backup_id('20261126T221500Z\n')


def test_set_path_joins_a_valid_id(tmp_path):
    root = str(tmp_path)
    assert set_path(root, '20261126T221500Z-2') == os.path.join(root, '20261126T221500Z-2')
    assert os.path.dirname(set_path(root, '20261126T221500Z')) == root


@pytest.mark.parametrize('value', ['../x', '..', '/etc', 'a/../../b', '', None, '20261126T221500Z/../..'])
def test_set_path_cannot_escape_root(tmp_path, value):
    with pytest.raises(BackupSetError):
        set_path(str(tmp_path), value)


# --- checksums and seal ------------------------------------------------------------------------

def test_sha256_file_empty_and_small(tmp_path):
    empty = tmp_path / 'empty'
    empty.write_bytes(b'')
    assert sha256_file(str(empty)) == 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    small = tmp_path / 'small'
    small.write_bytes(b'abc')
    assert sha256_file(str(small)) == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'


def test_sha256_file_reads_files_larger_than_one_chunk(tmp_path):
    data = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB, not a multiple of the 1 MiB chunk
    path = tmp_path / 'big'
    path.write_bytes(data)
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def _sparse_file(path, parts, size):
    """A file of ``size`` bytes with ``parts`` ({offset: bytes}) written and holes elsewhere."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for offset, data in parts.items():
            os.pwrite(fd, data, offset)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return path.read_bytes()


@pytest.mark.parametrize('layout', ['hole first', 'hole in the middle', 'hole at the end', 'only a hole',
                                    'holes between many parts'])
def test_sha256_file_of_a_sparse_file_hashes_its_holes_as_zeros(tmp_path, layout, monkeypatch):
    mib = 1024 * 1024
    data = os.urandom(3 * mib + 11)
    parts = {
        'hole first': {2 * mib: data},
        'hole in the middle': {0: data[:mib], 3 * mib: data[mib:]},
        'hole at the end': {0: data},
        'only a hole': {},
        'holes between many parts': dict((i * 256 * 1024, data[i * 1000:(i + 1) * 1000]) for i in range(0, 40, 3)),
    }[layout]
    path = tmp_path / 'sparse'
    content = _sparse_file(path, parts, 8 * mib + 5)
    reads = []
    real_pread = os.pread

    def pread(fd, count, offset):
        reads.append(real_pread(fd, count, offset))
        return reads[-1]

    monkeypatch.setattr(backupset.os, 'pread', pread)
    assert sha256_file(str(path)) == hashlib.sha256(content).hexdigest()
    # The holes were not read (where the filesystem reports them: ext4 and tmpfs do).
    with open(str(path), 'rb') as handle:
        if os.lseek(handle.fileno(), 0, os.SEEK_HOLE) < len(content):
            assert sum(len(chunk) for chunk in reads) < len(content) - 4 * mib


def test_sha256_file_where_the_filesystem_cannot_tell_holes(tmp_path, monkeypatch):
    data = os.urandom(3 * 1024 * 1024 + 1)
    path = tmp_path / 'plain'
    path.write_bytes(data)
    monkeypatch.delattr(backupset.os, 'SEEK_DATA', raising=False)
    monkeypatch.delattr(backupset.os, 'SEEK_HOLE', raising=False)
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_sha256_file_missing_raises(tmp_path):
    with pytest.raises(IOError):
        sha256_file(str(tmp_path / 'nope'))



# --- the keyed seal ----------------------------------------------------------------------------

@pytest.fixture
def sealed(tmp_path):
    """(directory, manifest) of a real set sealed with the test key."""
    return make_set(tmp_path, ID)


def test_sign_adds_a_keyed_seal_that_verifies(sealed):
    directory, manifest = sealed
    assert manifest['seal'] == dict(algorithm='hmac-sha256', key_id=key_id(TEST_KEY), hmac=expected_hmac(manifest))
    assert 'manifest_sha256' not in manifest
    assert KEYS.problem(manifest) is None
    assert KEYS.problem(load_manifest(directory)) is None


def test_seal_is_over_canonical_json_without_the_seal_itself(sealed):
    directory, manifest = sealed
    first = dict(manifest['seal'])
    assert KEYS.sign(manifest) is manifest
    assert manifest['seal'] == first  # re-sealing a sealed manifest gives the same seal
    assert KEYS.sign(dict((k, v) for k, v in manifest.items() if k != 'seal'))['seal'] == first


def test_seal_does_not_depend_on_key_order(sealed):
    directory, manifest = sealed
    reordered = dict(reversed(list(manifest.items())))
    assert list(reordered) != list(manifest)
    assert KEYS.problem(reordered) is None
    assert KEYS.problem(json.loads(json.dumps(manifest, indent=2))) is None


def test_sign_drops_the_unkeyed_checksum_of_format_1(sealed):
    directory, manifest = sealed
    unkeyed_seal(manifest)
    assert 'seal' not in manifest
    KEYS.sign(manifest)
    assert 'manifest_sha256' not in manifest
    assert KEYS.problem(manifest) is None


@pytest.mark.parametrize('seal_value, problem', [
    (None, 'manifest.json has no seal'),
    ('f' * 64, 'manifest.json has no seal'),
    (dict(algorithm='sha256', key_id='x', hmac='f' * 64), "manifest.json has a seal of unknown kind 'sha256'"),
    (dict(algorithm='hmac-sha256', key_id=key_id(TEST_KEY), hmac=5), "manifest.json has a seal of unknown kind "
                                                                     "'hmac-sha256'"),
    (dict(algorithm='hmac-sha256', key_id=key_id(TEST_KEY), hmac='f' * 64), CHANGED),
    (dict(algorithm='hmac-sha256', key_id=key_id(TEST_KEY)), "manifest.json has a seal of unknown kind "
                                                             "'hmac-sha256'"),
])
def test_a_missing_or_broken_seal_does_not_verify(sealed, seal_value, problem):
    directory, manifest = sealed
    if seal_value is None:
        del manifest['seal']
    else:
        manifest['seal'] = seal_value
    assert KEYS.problem(manifest) == problem


def test_the_key_id_in_the_seal_is_only_a_hint(sealed):
    """Which key sealed a set is named for the operator; the HMAC alone decides."""
    directory, manifest = sealed
    manifest['seal']['key_id'] = key_id(OTHER_KEY)
    assert KEYS.problem(manifest) is None
    assert OTHER_KEYS.problem(manifest) == CHANGED


def _first(m, kind):
    return [e for e in m['files'] if e['kind'] == kind][0]


EDITS = [
    ('file checksum', lambda m: m['files'][0].__setitem__('sha256', 'c' * 64)),
    ('file size', lambda m: m['files'][1].__setitem__('size', 8193)),
    ('file path', lambda m: m['files'][1].__setitem__('path', 'sqlite/tasks.db')),
    ('file kind', lambda m: m['files'][0].__setitem__('kind', 'sqlite')),
    ('file removed', lambda m: m['files'].pop()),
    ('package version', lambda m: m['packages']['micropvr'].__setitem__('version', '1.10.0-1')),
    ('package architecture', lambda m: m['packages']['micropvr'].__setitem__('architecture', 'arm64')),
    ('package file', lambda m: m['packages']['micropvr'].__setitem__('file', '/tmp/anything.deb')),
    ('package added', lambda m: m['packages'].__setitem__('micropvr-control', dict(version='1'))),
    ('config entry checksum', lambda m: m['config']['entries'][2].__setitem__('sha256', 'd' * 64)),
    ('config entry mode', lambda m: m['config']['entries'][2].__setitem__('mode', '4755')),
    ('config entry owner', lambda m: m['config']['entries'][2].__setitem__('uid', 1234)),
    ('config entry link target', lambda m: m['config']['entries'][3].__setitem__('target', '/root/.ssh')),
    ('config entry added', lambda m: m['config']['entries'].append(dict(m['config']['entries'][2], path='/x'))),
    ('config path', lambda m: m['config']['paths'].append('/etc/cron.d')),
    ('config archive', lambda m: m['config'].__setitem__('archive', 'other.tar')),
    ('sqlite source', lambda m: m['sqlite'][0].__setitem__('source', '/etc/shadow')),
    ('sqlite file', lambda m: m['sqlite'][0].__setitem__('file', 'config.tar')),
    ('sqlite owner', lambda m: m['sqlite'][0].__setitem__('uid', 1234)),
    ('database name', lambda m: m['databases'][0].__setitem__('database', 'mysql')),
    ('database removed', lambda m: m['databases'].pop()),
    ('service state', lambda m: m['services'].__setitem__('micropvr', 'stopped')),
    ('pinned', lambda m: m.__setitem__('pinned', True)),
    ('verified_at', lambda m: m.__setitem__('verified_at', '2026-11-26T22:16:00Z')),
    ('backup_id', lambda m: m.__setitem__('backup_id', '20261126T221501Z')),
    ('created_at', lambda m: m.__setitem__('created_at', '2026-11-26T22:15:01Z')),
    ('reason', lambda m: m.__setitem__('reason', 'pre-update to 1.10.0-1')),
    ('host', lambda m: m.__setitem__('host', 'pvr2.example.net')),
    ('format_version', lambda m: m.__setitem__('format_version', 1)),
    ('new key', lambda m: m.__setitem__('extra', None)),
    ('key removed', lambda m: m.pop('reason')),
    ('int to string', lambda m: m['files'][0].__setitem__('size', str(m['files'][0]['size']))),
    ('bool to int', lambda m: m.__setitem__('pinned', 0)),
]


@pytest.mark.parametrize('edit', [e[1] for e in EDITS], ids=[e[0] for e in EDITS])
def test_any_edit_breaks_the_seal_and_only_the_key_reseals_it(sealed, edit):
    directory, manifest = sealed
    edit(manifest)
    assert KEYS.problem(manifest) == CHANGED
    # Resealed the old way (anyone can compute a sha256): not authenticated.
    assert KEYS.problem(unkeyed_seal(copy.deepcopy(manifest))) == FORMAT_1
    # Resealed with another key: not this host's seal.
    other = OTHER_KEYS.sign(copy.deepcopy(manifest))
    assert KEYS.problem(other).startswith('manifest.json is sealed with key %s, which this host does not have'
                                          % key_id(OTHER_KEY))
    # Only the key itself makes it verify again.
    KEYS.sign(manifest)
    assert KEYS.problem(manifest) is None


# --- seal keys ---------------------------------------------------------------------------------

SECRET = 'c0ffee' * 10 + 'c0f'  # 63 hex digits: almost a key, and as secret as one


def test_key_id_is_short_stable_and_not_the_key():
    assert key_id(TEST_KEY) == key_id(bytes(TEST_KEY))
    assert len(key_id(TEST_KEY)) == 16
    int(key_id(TEST_KEY), 16)
    assert key_id(TEST_KEY) != key_id(OTHER_KEY)
    assert key_id(TEST_KEY) not in TEST_KEY_HEX


@pytest.mark.parametrize('text', [TEST_KEY_HEX, TEST_KEY_HEX.upper(), TEST_KEY_HEX + '\n', '  %s\n' % TEST_KEY_HEX])
def test_parse_key_accepts_64_hex_digits(text):
    assert parse_key(text, 'seal_key') == TEST_KEY


@pytest.mark.parametrize('text', [SECRET, SECRET + 'g', TEST_KEY_HEX + 'ab', TEST_KEY_HEX[:-2], 'secret-passphrase',
                                  '', 'zz' * 32, TEST_KEY_HEX[:31] + ' ' + TEST_KEY_HEX[32:]])
def test_parse_key_refuses_bad_text_without_repeating_it(text):
    with pytest.raises(BackupSetError) as excinfo:
        parse_key(text, 'seal_key')
    message = str(excinfo.value)
    assert message.startswith('seal_key: a seal key must be 64 hex digits')
    if text:
        assert text.strip() not in message
        assert text.strip()[:12] not in message


@pytest.mark.parametrize('value', [None, 12345, b'00' * 32, ['00' * 32]])
def test_parse_key_refuses_non_strings(value):
    with pytest.raises(BackupSetError) as excinfo:
        parse_key(value, 'trusted_seal_keys[0]')
    assert str(excinfo.value) == 'trusted_seal_keys[0]: a seal key must be a string of 64 hex digits'


def test_seal_keys_bad_seal_key_or_trusted_key_names_the_option_not_the_value(tmp_path):
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(str(tmp_path), seal_key=SECRET)
    assert str(excinfo.value).startswith('seal_key: ')
    assert SECRET not in str(excinfo.value)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(str(tmp_path), seal_key=TEST_KEY_HEX, trusted_keys=[OTHER_KEY_HEX, SECRET])
    assert str(excinfo.value).startswith('trusted_seal_keys[1]: ')
    assert SECRET not in str(excinfo.value)
    assert os.listdir(str(tmp_path)) == []


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / 'state'
    path.mkdir(mode=0o700)
    return str(path)


def test_the_key_file_is_created_0600_once(state_dir):
    old_umask = os.umask(0)
    try:
        first = seal_keys(state_dir, create=True)
    finally:
        os.umask(old_umask)
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert os.lstat(path).st_uid == os.geteuid()
    with open(path) as handle:
        text = handle.read()
    assert len(text) == 65 and text.endswith('\n')
    assert first.own == bytes.fromhex(text.strip())
    assert first.own not in (TEST_KEY, OTHER_KEY)
    assert os.listdir(state_dir) == [SEAL_KEY_FILE]  # no temporary file left
    # The second run uses the same key, whether it may create one or not.
    assert seal_keys(state_dir, create=True).own == first.own
    assert seal_keys(state_dir).own == first.own
    assert read_key_file(path) == first.own
    with open(path) as handle:
        assert handle.read() == text


def test_two_installations_get_different_keys(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    assert seal_keys(str(first), create=True).own != seal_keys(str(second), create=True).own


def test_without_a_key_file_nothing_is_created_and_nothing_verifies(state_dir, tmp_path):
    keys = seal_keys(state_dir)
    assert keys.own is None
    assert os.listdir(state_dir) == []
    directory, manifest = make_set(tmp_path / 'root', ID)
    problem = keys.problem(manifest)
    assert problem.startswith('this host has no seal key to check the seal with: ')
    assert 'does not exist yet' in problem
    with pytest.raises(BackupSetError) as excinfo:
        write_manifest(directory, dict(manifest, reason='x'), keys)
    assert str(excinfo.value).startswith('no seal key: %s does not exist yet' % os.path.join(state_dir, SEAL_KEY_FILE))
    assert load_manifest(directory) == manifest  # nothing written
    assert summarize(directory, ID, keys)['status'] == STATUS_TAMPERED


def test_seal_key_overrides_the_key_file(state_dir, tmp_path):
    from_file = seal_keys(state_dir, create=True)
    keys = seal_keys(state_dir, seal_key=TEST_KEY_HEX)
    assert keys.own == TEST_KEY != from_file.own
    assert keys.trusted == []
    directory, manifest = make_set(tmp_path / 'root', ID, keys=from_file)
    assert summarize(directory, ID, from_file)['status'] == STATUS_VERIFIED
    assert summarize(directory, ID, keys)['status'] == STATUS_TAMPERED
    # The key file is left as it was.
    assert seal_keys(state_dir).own == from_file.own


def test_trusted_keys_accept_another_hosts_set_and_never_seal(state_dir, tmp_path):
    directory, manifest = make_set(tmp_path / 'root', ID, keys=OTHER_KEYS)
    own_only = seal_keys(state_dir, seal_key=TEST_KEY_HEX)
    summary = summarize(directory, ID, own_only)
    assert summary['status'] == STATUS_TAMPERED
    assert summary['problems'] == [
        "manifest.json is sealed with key %s, which this host does not have (its keys: %s); a set from another host "
        "needs that host's key in micropvr_seal_trusted_keys" % (key_id(OTHER_KEY), key_id(TEST_KEY))]
    assert verify_set(DebModule(), directory, ID, own_only)[2] == STATUS_TAMPERED

    keys = seal_keys(state_dir, seal_key=TEST_KEY_HEX, trusted_keys=[OTHER_KEY_HEX])
    assert summarize(directory, ID, keys)['status'] == STATUS_VERIFIED
    assert verify_set(DebModule(), directory, ID, keys) == (manifest, [], STATUS_VERIFIED)
    # It trusts the other key, it does not seal with it.
    assert keys.sign(dict(manifest))['seal']['key_id'] == key_id(TEST_KEY)
    # Trusted keys work with the key file too.
    from_file = seal_keys(state_dir, trusted_keys=[OTHER_KEY_HEX], create=True)
    assert from_file.own not in (None, OTHER_KEY)
    assert summarize(directory, ID, from_file)['status'] == STATUS_VERIFIED


def test_the_own_key_among_the_trusted_keys_is_counted_once():
    keys = SealKeys(TEST_KEY, [TEST_KEY, OTHER_KEY])
    assert keys.trusted == [OTHER_KEY]


def _valid_key_file(path, mode=0o600):
    with open(path, 'w') as handle:
        handle.write(TEST_KEY_HEX + '\n')
    os.chmod(path, mode)


def test_a_symlinked_key_file_is_refused(state_dir, tmp_path):
    elsewhere = str(tmp_path / 'elsewhere.key')
    _valid_key_file(elsewhere)
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    os.symlink(elsewhere, path)
    for create in (False, True):
        with pytest.raises(BackupSetError) as excinfo:
            seal_keys(state_dir, create=create)
        assert str(excinfo.value) == 'seal key %s is a symlink; refusing to use it' % path
    assert os.path.islink(path)


def test_a_dangling_symlinked_key_file_is_refused_and_nothing_created_behind_it(state_dir, tmp_path):
    target = tmp_path / 'planted.key'
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    os.symlink(str(target), path)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(state_dir, create=True)
    assert 'symlink' in str(excinfo.value)
    assert not target.exists()
    assert os.listdir(state_dir) == [SEAL_KEY_FILE]


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_open_to_others_is_refused(state_dir, mode):
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    _valid_key_file(path, mode)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(state_dir, create=True)
    assert str(excinfo.value) == (
        'seal key %s must be a regular file owned by uid %d with mode 0600 (it is uid %d, mode %04o); refusing '
        'to use it' % (path, os.geteuid(), os.geteuid(), mode))
    assert stat.S_IMODE(os.stat(path).st_mode) == mode  # not "fixed" behind the operator's back


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to give the file away')
def test_a_key_file_of_another_owner_is_refused(state_dir):
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    _valid_key_file(path)
    os.chown(path, 1234, 1234)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(state_dir, create=True)
    assert 'it is uid 1234, mode 0600' in str(excinfo.value)
    assert TEST_KEY_HEX not in str(excinfo.value)


def test_a_key_file_that_is_a_directory_is_refused(state_dir):
    os.mkdir(os.path.join(state_dir, SEAL_KEY_FILE), 0o700)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(state_dir, create=True)
    assert 'must be a regular file' in str(excinfo.value)


def test_a_key_file_with_bad_content_does_not_show_it(state_dir):
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    with open(path, 'w') as handle:
        handle.write(SECRET + '\n')
    os.chmod(path, 0o600)
    with pytest.raises(BackupSetError) as excinfo:
        seal_keys(state_dir, create=True)
    assert str(excinfo.value).startswith('seal key %s: a seal key must be 64 hex digits' % path)
    assert SECRET not in str(excinfo.value)
    with open(path) as handle:
        assert handle.read() == SECRET + '\n'  # never replaced by a fresh key


# --- write / load ------------------------------------------------------------------------------

def test_write_manifest_round_trips_with_mode_0600(sealed, tmp_path):
    directory, manifest = sealed
    copy_dir = tmp_path / 'copy'
    copy_dir.mkdir()
    manifest = copy.deepcopy(manifest)
    del manifest['seal']
    old_umask = os.umask(0o022)
    try:
        path = write_manifest(str(copy_dir), manifest, KEYS)
    finally:
        os.umask(old_umask)
    assert path == os.path.join(str(copy_dir), MANIFEST)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert manifest['seal']['hmac'] == expected_hmac(manifest)  # sealed in place
    loaded = load_manifest(str(copy_dir))
    assert loaded == manifest
    assert KEYS.problem(loaded) is None
    assert sorted(os.listdir(str(copy_dir))) == [MANIFEST]  # no temp file left
    with open(path) as handle:
        text = handle.read()
    assert text.endswith('}\n')
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + '\n'


def test_write_manifest_is_0600_even_with_an_open_umask(sealed, tmp_path):
    directory, manifest = sealed
    old_umask = os.umask(0)
    try:
        path = write_manifest(str(tmp_path), manifest, KEYS)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_write_manifest_replaces_the_previous_manifest(sealed):
    directory, manifest = sealed
    manifest['verified_at'] = '2026-11-26T22:15:08Z'
    write_manifest(directory, manifest, KEYS)
    assert load_manifest(directory)['verified_at'] == '2026-11-26T22:15:08Z'
    assert KEYS.problem(load_manifest(directory)) is None


def test_write_manifest_failure_leaves_the_old_manifest_intact(sealed):
    directory, manifest = sealed
    path = os.path.join(directory, MANIFEST)
    with open(path, 'rb') as handle:
        before = handle.read()
    broken = dict(manifest, reason=object())  # not JSON serialisable: fails before or half-way through the write
    with pytest.raises(TypeError):
        write_manifest(directory, broken, KEYS)
    with open(path, 'rb') as handle:
        assert handle.read() == before


def test_write_manifest_does_not_write_through_a_planted_symlink(sealed, tmp_path):
    directory, manifest = sealed
    victim = tmp_path / 'victim'
    victim.write_text('untouched\n')
    os.symlink(str(victim), os.path.join(directory, MANIFEST + '.tmp'))
    with pytest.raises(OSError):
        write_manifest(directory, manifest, KEYS)
    assert victim.read_text() == 'untouched\n'


def test_load_manifest_does_not_follow_a_symlink(sealed, tmp_path):
    """A manifest.json that is a symbolic link (to a sealed manifest elsewhere) is not read."""
    directory, manifest = sealed
    elsewhere = tmp_path / 'elsewhere.json'
    os.rename(os.path.join(directory, MANIFEST), str(elsewhere))
    os.symlink(str(elsewhere), os.path.join(directory, MANIFEST))
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(directory)
    assert str(excinfo.value) == '%s: Too many levels of symbolic links' % os.path.join(directory, MANIFEST)
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_DAMAGED
    assert verify_set(DebModule(), directory, ID, KEYS)[1:] == ([str(excinfo.value)], STATUS_DAMAGED)


def test_load_manifest_missing_names_the_file(tmp_path):
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(str(tmp_path))
    assert str(excinfo.value) == '%s: No such file or directory' % os.path.join(str(tmp_path), MANIFEST)


def test_load_manifest_invalid_json_names_the_file(tmp_path):
    (tmp_path / MANIFEST).write_text('{"format_version": 1,')
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(str(tmp_path))
    message = str(excinfo.value)
    assert message.startswith('%s: not valid JSON (' % os.path.join(str(tmp_path), MANIFEST))


def test_load_manifest_undecodable_bytes_are_invalid_json(tmp_path):
    (tmp_path / MANIFEST).write_bytes(b'\xff\xfe\x00garbage')
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(str(tmp_path))
    assert str(excinfo.value).startswith('%s: not valid JSON' % os.path.join(str(tmp_path), MANIFEST))


@pytest.mark.parametrize('content', ['[1, 2]', '"text"', '42', 'null'])
def test_load_manifest_not_an_object_names_the_file(tmp_path, content):
    (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(str(tmp_path))
    assert str(excinfo.value) == '%s: not a JSON object' % os.path.join(str(tmp_path), MANIFEST)


def test_load_manifest_that_is_a_directory(tmp_path):
    (tmp_path / MANIFEST).mkdir()
    with pytest.raises(BackupSetError) as excinfo:
        load_manifest(str(tmp_path))
    assert str(excinfo.value) == '%s: Is a directory' % os.path.join(str(tmp_path), MANIFEST)


def test_file_entry(tmp_path):
    (tmp_path / 'sqlite').mkdir()
    (tmp_path / 'sqlite' / 'records.db').write_bytes(b'12345')
    entry = file_entry(str(tmp_path), 'sqlite/records.db', 'sqlite', source='/etc/micropvr/records.db')
    assert entry == dict(path='sqlite/records.db', kind='sqlite', size=5,
                         sha256=hashlib.sha256(b'12345').hexdigest(), source='/etc/micropvr/records.db')



# --- verify_files ------------------------------------------------------------------------------

def test_verify_files_intact_set(sealed):
    directory, manifest = sealed
    assert verify_files(directory, load_manifest(directory), KEYS) == []
    assert verify_files(directory, manifest, KEYS) == []


def test_verify_files_flipped_byte_is_a_sha256_problem(sealed):
    directory, manifest = sealed
    flip_byte(os.path.join(directory, SQLITE_FILE), offset=7)
    assert verify_files(directory, load_manifest(directory), KEYS) == [
        'sqlite/records.db: sha256 does not match the manifest']


def test_hash_with_identity_of_an_unchanged_file(sealed):
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    digest, identity = backupset.hash_with_identity(path)
    assert digest == hashlib.sha256(open(path, 'rb').read()).hexdigest()
    assert identity == backupset.file_identity(path)


def test_hash_with_identity_of_a_file_written_while_it_is_read_has_none(sealed, monkeypatch):
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    real = backupset.sha256_file

    def written_meanwhile(target):
        digest = real(target)
        with open(target, 'ab') as handle:
            handle.write(b'x')
        return digest

    monkeypatch.setattr(backupset, 'sha256_file', written_meanwhile)
    digest, identity = backupset.hash_with_identity(path)
    assert identity is None


def test_verify_files_does_not_read_again_a_file_hashed_unchanged(sealed, monkeypatch):
    directory, manifest = sealed
    hashed = dict((entry['path'], backupset.hash_with_identity(os.path.join(directory, entry['path'])))
                  for entry in manifest['files'] if entry['path'] == SQLITE_FILE)
    reads = count_calls(monkeypatch, backupset, 'sha256_file')
    assert verify_files(directory, load_manifest(directory), KEYS, hashed=hashed) == []
    assert os.path.join(directory, SQLITE_FILE) not in reads
    assert len(reads) == len(manifest['files']) - 1


def test_verify_files_reads_a_hashed_file_that_changed_since(sealed, monkeypatch):
    """Same size, new content after it was hashed: its identity (ctime, mtime) changed, so it is
    read again and the flipped byte is caught."""
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    hashed = {SQLITE_FILE: backupset.hash_with_identity(path)}
    flip_byte(path, offset=7)
    assert verify_files(directory, load_manifest(directory), KEYS, hashed=hashed) == [
        'sqlite/records.db: sha256 does not match the manifest']


def test_verify_files_reads_a_hashed_file_whose_manifest_names_another_digest(sealed, monkeypatch):
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    digest, identity = backupset.hash_with_identity(path)
    hashed = {SQLITE_FILE: ('0' * 64, identity)}
    reads = count_calls(monkeypatch, backupset, 'sha256_file')
    assert verify_files(directory, load_manifest(directory), KEYS, hashed=hashed) == []
    assert len(reads) == len(manifest['files'])


def test_verify_files_truncated_file_is_a_size_problem(sealed):
    directory, manifest = sealed
    path = os.path.join(directory, 'config.tar')
    size = os.path.getsize(path)
    with open(path, 'r+b') as handle:
        handle.truncate(size - 10)
    assert verify_files(directory, load_manifest(directory), KEYS) == [
        'config.tar: size %d, manifest says %d' % (size - 10, size)]


def test_verify_files_missing_file(sealed):
    directory, manifest = sealed
    os.unlink(os.path.join(directory, 'packages', 'micropvr_1.9.0-1_amd64.deb'))
    assert verify_files(directory, load_manifest(directory), KEYS) == [
        'packages/micropvr_1.9.0-1_amd64.deb: missing']


def test_verify_files_listed_path_that_is_a_directory_is_missing(sealed):
    directory, manifest = sealed
    os.unlink(os.path.join(directory, 'config.tar'))
    os.mkdir(os.path.join(directory, 'config.tar'))
    assert verify_files(directory, load_manifest(directory), KEYS) == ['config.tar: missing']


def test_verify_files_does_not_read_a_listed_file_through_a_symlink(sealed, tmp_path):
    """A listed file replaced by a link to a copy elsewhere (right size and checksum) is refused."""
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    elsewhere = str(tmp_path / 'records.db')
    os.rename(path, elsewhere)
    os.symlink(elsewhere, path)
    assert verify_files(directory, manifest, KEYS) == ['sqlite/records.db: not a regular file']


def test_verify_files_a_symlinked_directory_in_the_set_is_not_listed(sealed, tmp_path):
    directory, manifest = sealed
    (tmp_path / 'outside').mkdir()
    os.symlink(str(tmp_path / 'outside'), os.path.join(directory, 'extra'))
    assert verify_files(directory, manifest, KEYS) == ['extra: not listed in the manifest']


def test_verify_files_extra_unlisted_files(sealed):
    directory, manifest = sealed
    with open(os.path.join(directory, 'sqlite', 'records.db-journal'), 'wb') as handle:
        handle.write(b'x')
    with open(os.path.join(directory, 'stray.txt'), 'wb') as handle:
        handle.write(b'')
    os.makedirs(os.path.join(directory, 'sub', 'deeper'))
    with open(os.path.join(directory, 'sub', 'deeper', MANIFEST), 'wb') as handle:
        handle.write(b'{}')
    assert sorted(verify_files(directory, load_manifest(directory), KEYS)) == [
        'sqlite/records.db-journal: not listed in the manifest',
        'stray.txt: not listed in the manifest',
        'sub/deeper/manifest.json: not listed in the manifest',
    ]


def test_verify_files_empty_directories_are_not_problems(sealed):
    directory, manifest = sealed
    os.mkdir(os.path.join(directory, 'empty'))
    assert verify_files(directory, manifest, KEYS) == []


@pytest.mark.parametrize('bad_path, reason', [
    ('../outside', "has a '..' component; it must stay inside the backup set"),
    ('sqlite/../../outside', "has a '..' component; it must stay inside the backup set"),
    ('..', "has a '..' component; it must stay inside the backup set"),
    ('ABSOLUTE', 'is an absolute path; it must be relative to the backup set'),
    ('./outside', "has a '.' component"),
    ('sqlite//records.db', 'has an empty component'),
])
def test_verify_files_path_escaping_the_set(tmp_path, bad_path, reason):
    directory, manifest = make_set(tmp_path / 'root', ID)
    # A file that really exists outside the set, with the right size and checksum listed.
    outside = tmp_path / 'root' / 'outside'
    outside.write_bytes(b'secret outside the set')
    if bad_path == 'ABSOLUTE':
        bad_path = str(outside)
    index = len(manifest['files'])
    manifest['files'].append(dict(path=bad_path, kind='config', size=22,
                                  sha256=hashlib.sha256(b'secret outside the set').hexdigest()))
    KEYS.sign(manifest)
    assert verify_files(directory, manifest, KEYS) == ['files[%d]: %s %s' % (index, bad_path, reason)]


def test_verify_files_edit_without_the_key_is_a_seal_problem(sealed):
    directory, manifest = sealed
    manifest = load_manifest(directory)
    manifest['reason'] = 'pre-update to 1.10.0-1'
    assert verify_files(directory, manifest, KEYS) == [CHANGED]


def test_verify_files_edited_checksum_on_disk_is_a_seal_problem(sealed):
    """Someone replaces a file and fixes its checksum in manifest.json: the seal catches it."""
    directory, manifest = sealed
    path = os.path.join(directory, SQLITE_FILE)
    flip_byte(path)
    on_disk = load_manifest(directory)
    for entry in on_disk['files']:
        if entry['path'] == SQLITE_FILE:
            entry['sha256'] = sha256_file(path)
    write_raw(directory, on_disk)
    assert verify_files(directory, load_manifest(directory), KEYS) == [CHANGED]
    # ... and so does resealing it without the key, the way format 1 sealed it.
    reseal_unkeyed(directory, lambda m: None)
    assert verify_files(directory, load_manifest(directory), KEYS) == [FORMAT_1]


@pytest.mark.parametrize('version', [1, 3, 0])
def test_verify_files_wrong_format_version(sealed, version):
    directory, manifest = sealed
    manifest['format_version'] = version
    KEYS.sign(manifest)
    assert verify_files(directory, manifest, KEYS) == ['manifest format_version %r is not 2' % (version,)]


def test_verify_files_reports_every_problem(sealed):
    directory, manifest = sealed
    flip_byte(os.path.join(directory, 'config.tar'))
    os.unlink(os.path.join(directory, SQLITE_FILE))
    with open(os.path.join(directory, 'extra'), 'wb') as handle:
        handle.write(b'x')
    manifest['format_version'] = 3
    assert sorted(verify_files(directory, manifest, KEYS)) == sorted([
        CHANGED,
        'manifest format_version 3 is not 2',
        'config.tar: sha256 does not match the manifest',
        'sqlite/records.db: missing',
        'extra: not listed in the manifest',
    ])


def test_verify_files_calls_checkers_per_kind(sealed):
    directory, manifest = sealed
    calls = []

    def recorder(kind, problem):
        def check(full, entry):
            calls.append((kind, full, entry['path']))
            return problem
        return check

    checkers = dict(sqlite=recorder('sqlite', 'integrity_check: page 2 is never used'),
                    package=recorder('package', None),
                    config=recorder('config', None))
    problems = verify_files(directory, manifest, KEYS, checkers)
    assert problems == ['sqlite/records.db: integrity_check: page 2 is never used']
    assert sorted(calls) == sorted(
        [('config', os.path.join(directory, 'config.tar'), 'config.tar'),
         ('sqlite', os.path.join(directory, SQLITE_FILE), SQLITE_FILE)] +
        [('package', os.path.join(directory, path), path) for version, path in PACKAGES.values()])


def test_verify_files_does_not_call_checker_for_a_file_failing_its_checksum(sealed):
    directory, manifest = sealed
    flip_byte(os.path.join(directory, SQLITE_FILE))
    calls = []
    problems = verify_files(directory, manifest, KEYS, dict(sqlite=lambda full, entry: calls.append(full) or 'bad'))
    assert problems == ['sqlite/records.db: sha256 does not match the manifest']
    assert calls == []


def test_verify_files_does_not_call_checkers_on_a_manifest_of_the_wrong_shape(sealed):
    directory, manifest = sealed
    manifest['files'][0]['size'] = str(manifest['files'][0]['size'])
    KEYS.sign(manifest)
    calls = []
    problems = verify_files(directory, manifest, KEYS, dict(config=lambda full, entry: calls.append(full)))
    assert problems == ['files[0].size: str where int was expected']
    assert calls == []


def test_verify_files_empty_string_problem_from_checker_is_no_problem(sealed):
    directory, manifest = sealed
    assert verify_files(directory, manifest, KEYS, dict(config=lambda full, entry: '')) == []


def test_set_size(sealed):
    directory, manifest = sealed
    expected = sum(os.path.getsize(os.path.join(directory, path)) for path in files_of(directory))
    assert set_size(directory) == expected
    assert expected > os.path.getsize(os.path.join(directory, 'config.tar'))


def test_status_of():
    assert status_of(None, ['x: missing'], KEYS) == STATUS_DAMAGED


def test_status_of_a_sealed_manifest(sealed):
    directory, manifest = sealed
    assert status_of(manifest, [], KEYS) == STATUS_VERIFIED
    assert status_of(manifest, ['config.tar: missing'], KEYS) == STATUS_DAMAGED
    assert status_of(manifest, [], OTHER_KEYS) == STATUS_TAMPERED
    manifest['verified_at'] = None
    KEYS.sign(manifest)
    assert status_of(manifest, [], KEYS) == STATUS_UNVERIFIED
    manifest['verified_at'] = '2026-11-26T22:15:07Z'
    assert status_of(manifest, [], KEYS) == STATUS_TAMPERED


# --- summarize / listing -----------------------------------------------------------------------

def test_summarize_verified(tmp_path):
    directory, manifest = make_set(tmp_path, ID, pinned=True, reason='pre-update to 1.10.0-1')
    summary = summarize(directory, ID, KEYS)
    assert summary == dict(
        id=ID, path=directory, created_at='2026-11-26T22:15:00Z',
        reason='pre-update to 1.10.0-1', host='pvr1.example.net',
        packages=dict(micropvr='1.9.0-1', micropvs='1:2.0-1'), pinned=True,
        verified_at='2026-11-26T22:15:07Z', size=set_size(directory), status=STATUS_VERIFIED, problems=[])


def test_summarize_unverified(tmp_path):
    directory, manifest = make_set(tmp_path, ID, verified=False)
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_UNVERIFIED
    assert summary['problems'] == []
    assert summary['pinned'] is False
    assert summary['verified_at'] is None


def test_summarize_does_not_read_file_contents(sealed):
    directory, manifest = sealed
    flip_byte(os.path.join(directory, 'config.tar'))
    assert summarize(directory, ID, KEYS)['status'] == STATUS_VERIFIED


def test_summarize_manifest_naming_another_id_is_damaged(tmp_path):
    directory, manifest = make_set(tmp_path, ID, manifest_id='20250101T000000Z')
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] == ["manifest names backup id '20250101T000000Z'"]
    # what the manifest says is still reported
    assert summary['packages'] == dict(micropvr='1.9.0-1', micropvs='1:2.0-1')


def test_summarize_edit_without_reseal_is_tampered(sealed):
    directory, manifest = sealed
    manifest = load_manifest(directory)
    manifest['pinned'] = True  # edited without resealing
    write_raw(directory, manifest)
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_TAMPERED
    assert summary['problems'] == [CHANGED]
    # What it claims is shown (it is what an operator needs to recognize the set), never as good.
    assert summary['pinned'] is True


def test_summarize_without_manifest_is_damaged(tmp_path):
    directory = tmp_path / ID
    directory.mkdir()
    (directory / 'config.tar').write_bytes(b'12345')
    summary = summarize(str(directory), ID, KEYS)
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] == ['%s: No such file or directory' % os.path.join(str(directory), MANIFEST)]
    assert summary['size'] == 5
    assert summary['packages'] == {}
    assert summary['pinned'] is False


# --- tampered sets (issue 13: a seal anyone can recompute authenticates nothing) ---------------

def downgrade(m):
    m['packages']['micropvr']['version'] = '1.8.0-1'


def test_a_manifest_resealed_with_the_old_unkeyed_sha256_is_tampered(sealed):
    directory, manifest = sealed
    reseal_unkeyed(directory, downgrade)
    on_disk = load_manifest(directory)
    assert 'seal' not in on_disk and len(on_disk['manifest_sha256']) == 64
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_TAMPERED
    assert summary['problems'] == [FORMAT_1]
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_TAMPERED
    assert problems[0] == FORMAT_1


def test_a_manifest_resealed_with_another_key_is_tampered(sealed):
    directory, manifest = sealed
    reseal(directory, downgrade, keys=OTHER_KEYS)
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_TAMPERED
    assert summary['problems'][0].startswith('manifest.json is sealed with key %s, which this host does not have'
                                             % key_id(OTHER_KEY))
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_TAMPERED
    assert problems[0] == summary['problems'][0]


def test_a_manifest_edited_keeping_the_old_seal_is_tampered(sealed):
    directory, manifest = sealed
    manifest = load_manifest(directory)
    downgrade(manifest)
    write_raw(directory, manifest)
    assert summarize(directory, ID, KEYS)['status'] == STATUS_TAMPERED
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_TAMPERED
    # The version no longer matches the .deb listed for it either.
    assert problems == [CHANGED, 'packages.micropvr: the file packages/micropvr_1.9.0-1_amd64.deb is listed as '
                                 'micropvr 1.9.0-1']


def _set_file_entry(m, kind, **changes):
    [e for e in m['files'] if e['kind'] == kind][0].update(changes)


# (name, edit(manifest, outside), expected problem): OUTSIDE stands for the absolute path of a file
# outside the set (inside tmp_path) with the content of the .deb it replaces.
TRICKS = [
    ('package file absolute',
     lambda m, o: m['packages']['micropvr'].__setitem__('file', o),
     'packages.micropvr.file: OUTSIDE is an absolute path; it must be relative to the backup set'),
    ('package file absolute and listed',
     lambda m, o: (m['packages']['micropvr'].__setitem__('file', o),
                   _set_file_entry(m, 'package', path=o)),
     'files[2]: OUTSIDE is an absolute path; it must be relative to the backup set'),
    ('package file escaping',
     lambda m, o: m['packages']['micropvr'].__setitem__('file', 'packages/../../anything.deb'),
     "packages.micropvr.file: packages/../../anything.deb has a '..' component; it must stay inside the backup set"),
    ('package file not listed',
     lambda m, o: m['packages']['micropvr'].__setitem__('file', 'packages/anything.deb'),
     "packages.micropvr.file: packages/anything.deb is not listed in the manifest's files"),
    ('package file of another kind',
     lambda m, o: m['packages']['micropvr'].__setitem__('file', SQLITE_FILE),
     'packages.micropvr.file: sqlite/records.db is listed as a sqlite file, not package'),
    ('sqlite file absolute',
     lambda m, o: m['sqlite'][0].__setitem__('file', o),
     'sqlite[0].file: OUTSIDE is an absolute path; it must be relative to the backup set'),
    ('sqlite source relative',
     lambda m, o: m['sqlite'][0].__setitem__('source', 'etc/shadow'),
     "sqlite[0].source: 'etc/shadow' is not an absolute, normalized path"),
    ('sqlite source not normalized',
     lambda m, o: m['sqlite'][0].__setitem__('source', m['sqlite'][0]['source'] + '/../../../../shadow'),
     'is not an absolute, normalized path'),
    ('database file escaping',
     lambda m, o: m['databases'][0].__setitem__('file', '../../dump.sql'),
     "databases[0].file: ../../dump.sql has a '..' component; it must stay inside the backup set"),
    ('config archive absolute',
     lambda m, o: m['config'].__setitem__('archive', o),
     'config.archive: OUTSIDE is an absolute path; it must be relative to the backup set'),
    ('config entry outside the paths',
     lambda m, o: m['config']['entries'].append(dict(m['config']['entries'][2], path=o)),
     "is not under the set's configuration paths"),
    ('config link leading outside',
     lambda m, o: m['config']['entries'][3].__setitem__('target', '../../../../../../../../root/.ssh/authorized_keys'),
     'add the directory it points to to micropvr_config_paths'),
    ('config path /',
     lambda m, o: m['config']['paths'].__setitem__(0, '/'),
     "config.paths[0]: '/' is not an absolute, normalized path below /"),
    ('file listed under the manifest name',
     lambda m, o: _set_file_entry(m, 'database', path=MANIFEST),
     'files[4]: manifest.json is listed twice'),
]


@pytest.mark.parametrize('edit, expected', [t[1:] for t in TRICKS], ids=[t[0] for t in TRICKS])
def test_path_tricks_resealed_with_the_right_key_are_refused_by_verify(tmp_path, edit, expected):
    directory, manifest = make_set(tmp_path / 'root', ID)
    outside = str(tmp_path / 'anything.deb')
    with open(os.path.join(directory, 'packages', 'micropvr_1.9.0-1_amd64.deb'), 'rb') as source:
        with open(outside, 'wb') as handle:
            handle.write(source.read())
    reseal(directory, lambda m: edit(m, outside))
    expected = expected.replace('OUTSIDE', outside)
    module = DebModule()
    loaded, problems, status = verify_set(module, directory, ID, KEYS)
    assert status == STATUS_DAMAGED
    assert any(expected in problem for problem in problems), problems
    # Nothing looked at the planted file: a manifest of unsound paths says nothing about the files.
    assert module.commands == []


def test_an_absolute_sqlite_source_outside_the_config_is_refused_by_the_restore_checks(sealed, tmp_path):
    """verify cannot know the host's databases; confine.host_problems (restore) refuses the source."""
    directory, manifest = sealed
    shadow = str(tmp_path / 'etc' / 'shadow')
    own_source = manifest['sqlite'][0]['source']
    manifest = reseal(directory, lambda m: m['sqlite'][0].__setitem__('source', shadow))
    assert verify_set(DebModule(), directory, ID, KEYS)[1:] == ([], STATUS_VERIFIED)
    problems = confine.host_problems(manifest, manifest['config']['paths'], [], [own_source],
                                     sorted(PACKAGES), [('mysql', 'mw')])
    assert len(problems) == 1 and shadow in problems[0]


# --- manifests of the wrong shape: damaged, never an exception ---------------------------------

def _replace(m, new):
    m.clear()
    m.update(new)


SHAPES = [
    ('only packages list', lambda m: _replace(m, {'packages': [1]})),
    ('packages list', lambda m: m.__setitem__('packages', [1])),
    ('package not an object', lambda m: m['packages'].__setitem__('micropvr', 'x')),
    ('package version number', lambda m: m['packages']['micropvr'].__setitem__('version', 1.9)),
    ('files string', lambda m: m.__setitem__('files', 'x')),
    ('files of numbers', lambda m: m.__setitem__('files', [1])),
    ('file size string', lambda m: m['files'][0].__setitem__('size', str(m['files'][0]['size']))),
    ('file size bool', lambda m: m['files'][0].__setitem__('size', True)),
    ('config entries only', lambda m: m.__setitem__('config', {'entries': [1]})),
    ('config entries numbers', lambda m: m['config'].__setitem__('entries', [1])),
    ('config entry uid string', lambda m: m['config']['entries'][0].__setitem__('uid', '0')),
    ('config entry file without sha256', lambda m: m['config']['entries'][2].pop('sha256')),
    ('config paths string', lambda m: m['config'].__setitem__('paths', m['config']['paths'][0])),
    ('config paths numbers', lambda m: m['config'].__setitem__('paths', [1])),
    ('config list', lambda m: m.__setitem__('config', [])),
    ('sqlite object', lambda m: m.__setitem__('sqlite', {})),
    ('sqlite entry null', lambda m: m['sqlite'].__setitem__(0, None)),
    ('sqlite user_version bool', lambda m: m['sqlite'][0].__setitem__('user_version', True)),
    ('databases of null', lambda m: m.__setitem__('databases', [None])),
    ('database file number', lambda m: m['databases'][0].__setitem__('file', 3)),
    ('format_version string', lambda m: m.__setitem__('format_version', '2')),
    ('format_version bool', lambda m: m.__setitem__('format_version', True)),
    ('format_version missing', lambda m: m.pop('format_version')),
    ('pinned int', lambda m: m.__setitem__('pinned', 1)),
    ('verified_at number', lambda m: m.__setitem__('verified_at', 5)),
    ('created_at number', lambda m: m.__setitem__('created_at', 20261126)),
    ('backup_id list', lambda m: m.__setitem__('backup_id', [ID])),
]


@pytest.mark.parametrize('edit', [s[1] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_a_manifest_of_the_wrong_shape_is_damaged_everywhere(tmp_path, edit):
    root = tmp_path / 'root'
    make_set(root, '20261125T000000Z')
    directory, manifest = make_set(root, ID, pinned=True)
    reseal(directory, edit)  # sealed with the right key: only its shape is wrong
    summary = summarize(directory, ID, KEYS)
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] and all(p.startswith('manifest.json: ') for p in summary['problems'])
    assert summary['pinned'] is False  # a pin of a manifest that cannot be read protects nothing
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_DAMAGED
    assert problems
    sets = list_sets(str(root), KEYS)
    assert [(s['id'], s['status']) for s in sets] == [('20261125T000000Z', STATUS_VERIFIED), (ID, STATUS_DAMAGED)]
    # The older verified set is kept (the newest verified one); the damaged one may go.
    assert select_for_removal(sets, 1) == []
    assert select_for_removal(sets, 1, keep_pinned=5, protect=()) == []
    make_set(root, '20261127T000000Z')
    assert select_for_removal(list_sets(str(root), KEYS), 1) == [ID, '20261125T000000Z']


@pytest.mark.parametrize('edit', [s[1] for s in SHAPES[:6]], ids=[s[0] for s in SHAPES[:6]])
def test_an_unsealed_manifest_of_the_wrong_shape_does_not_raise(sealed, edit):
    directory, manifest = sealed
    manifest = load_manifest(directory)
    edit(manifest)
    write_raw(directory, manifest)
    assert summarize(directory, ID, KEYS)['status'] in (STATUS_DAMAGED, STATUS_TAMPERED)
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_TAMPERED
    assert problems


def test_list_set_dirs(tmp_path):
    for name in ('20261126T221500Z-2', '20261126T221500Z', '20250101T000000Z', '.incomplete-20261127T000000Z',
                 '.incomplete-x', 'backup', '2026-11-26', 'lost+found', '20261126T221500Z-10',
                 '20261126T221500Z-02', '20261126T221500Z-0', '20261126T221500\n', '20261126T221500'):
        (tmp_path / name).mkdir()
    (tmp_path / '20261201T000000Z').write_text('a file, not a set')
    (tmp_path / '.incomplete-20261202T000000Z').write_text('a file')
    (tmp_path / '.lock').write_text('123\n')
    ids, incomplete = list_set_dirs(str(tmp_path))
    # Chronological: the same-second counter compares as a number (-10 after -2).
    assert ids == ['20250101T000000Z', '20261126T221500Z', '20261126T221500Z-2', '20261126T221500Z-10']
    assert incomplete == ['.incomplete-20261127T000000Z', '.incomplete-x']


def test_list_set_dirs_missing_root(tmp_path):
    assert list_set_dirs(str(tmp_path / 'nope')) == ([], [])


def test_list_set_dirs_empty_root(tmp_path):
    assert list_set_dirs(str(tmp_path)) == ([], [])



def test_list_set_dirs_skips_a_symlink_named_like_a_set(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    elsewhere = tmp_path / 'elsewhere'
    make_set(elsewhere, '20200101T000000Z')
    os.symlink(str(elsewhere / '20200101T000000Z'), str(root / '20200101T000000Z'))
    os.symlink(str(elsewhere), str(root / (INCOMPLETE_PREFIX + '20200101T000000Z')))
    make_set(root, ID)
    assert list_set_dirs(str(root)) == ([ID], [])
    assert [s['id'] for s in list_sets(str(root), KEYS)] == [ID]


def test_list_sets_oldest_first_with_status(tmp_path):
    make_set(tmp_path, ID)
    make_set(tmp_path, '20250101T000000Z', verified=False)
    make_set(tmp_path, '20261127T000000Z', manifest_id=ID)
    make_set(tmp_path, '20261127T000000Z-2', keys=OTHER_KEYS)
    (tmp_path / (INCOMPLETE_PREFIX + '20261128T000000Z')).mkdir()
    (tmp_path / 'junk').mkdir()
    sets = list_sets(str(tmp_path), KEYS)
    assert [(s['id'], s['status']) for s in sets] == [
        ('20250101T000000Z', STATUS_UNVERIFIED),
        (ID, STATUS_VERIFIED),
        ('20261127T000000Z', STATUS_DAMAGED),
        ('20261127T000000Z-2', STATUS_TAMPERED),
    ]
    assert [s['path'] for s in sets] == [os.path.join(str(tmp_path), s['id']) for s in sets]


def test_list_sets_missing_root(tmp_path):
    assert list_sets(str(tmp_path / 'nope'), KEYS) == []


# --- retention ---------------------------------------------------------------------------------

def s(backup_id, status=STATUS_VERIFIED, pinned=False):
    return dict(id=backup_id, status=status, pinned=pinned)


IDS = ['20261101T000000Z', '20261102T000000Z', '20261103T000000Z', '20261104T000000Z', '20261105T000000Z']


def test_retention_keeps_the_newest_keep():
    sets = [s(i) for i in IDS]
    assert select_for_removal(sets, 2) == ['20261103T000000Z', '20261102T000000Z', '20261101T000000Z']
    assert select_for_removal(sets, 1) == ['20261104T000000Z', '20261103T000000Z', '20261102T000000Z',
                                           '20261101T000000Z']
    assert select_for_removal(sets, 5) == []
    assert select_for_removal(sets, 50) == []


def test_retention_does_not_depend_on_input_order():
    sets = [s(i) for i in IDS]
    expected = select_for_removal(sets, 3)
    rng = random.Random(7)
    for dummy in range(10):
        shuffled = list(sets)
        rng.shuffle(shuffled)
        assert select_for_removal(shuffled, 3) == expected == ['20261102T000000Z', '20261101T000000Z']


def test_retention_orders_same_second_counters_after_the_base_id():
    sets = [s('20261126T221500Z'), s('20261126T221500Z-2'), s('20261126T221500Z-3'), s('20261126T221459Z')]
    assert select_for_removal(sets, 1) == ['20261126T221500Z-2', '20261126T221500Z', '20261126T221459Z']


def test_retention_orders_counters_numerically():
    ids = ['20261126T221500Z'] + ['20261126T221500Z-%d' % n for n in range(2, 11)]
    assert select_for_removal([s(i) for i in ids], 1) == [i for i in reversed(ids) if i != '20261126T221500Z-10']


def test_retention_keeps_the_newest_two_pinned_sets_by_default():
    sets = [s(IDS[0], pinned=True), s(IDS[1]), s(IDS[2], pinned=True), s(IDS[3]), s(IDS[4])]
    assert select_for_removal(sets, 1) == [IDS[3], IDS[1]]


def test_retention_pinned_sets_still_count_towards_keep():
    sets = [s(IDS[0]), s(IDS[1]), s(IDS[2], pinned=True)]
    assert select_for_removal(sets, 1) == [IDS[1], IDS[0]]


def test_retention_keeps_newest_verified_behind_newer_unverified_and_damaged():
    sets = [s(IDS[0]), s(IDS[1]), s(IDS[2], STATUS_UNVERIFIED), s(IDS[3], STATUS_DAMAGED),
            s(IDS[4], STATUS_UNVERIFIED)]
    # keep=2 keeps IDS[4], IDS[3]; IDS[1] is the newest verified set and stays too.
    assert select_for_removal(sets, 2) == [IDS[2], IDS[0]]
    assert select_for_removal(sets, 1) == [IDS[3], IDS[2], IDS[0]]


def test_retention_protects_only_the_newest_verified_set():
    sets = [s(IDS[0]), s(IDS[1]), s(IDS[2]), s(IDS[3], STATUS_DAMAGED), s(IDS[4], STATUS_DAMAGED)]
    assert select_for_removal(sets, 2) == [IDS[1], IDS[0]]


def test_retention_a_tampered_set_is_never_the_protected_verified_one():
    sets = [s(IDS[0]), s(IDS[1], STATUS_TAMPERED), s(IDS[2], STATUS_DAMAGED)]
    assert select_for_removal(sets, 1) == [IDS[1]]


def test_retention_without_any_verified_set():
    sets = [s(i, STATUS_UNVERIFIED) for i in IDS]
    assert select_for_removal(sets, 4) == [IDS[0]]


def test_retention_pinned_sets_never_unpinned_no_longer_fill_the_root():
    """Every update pins its pre-update set: only the newest keep_pinned of them stay protected."""
    sets = [s(i, pinned=True) for i in IDS]
    assert select_for_removal(sets, 1) == [IDS[2], IDS[1], IDS[0]]
    assert select_for_removal(sets, 1, keep_pinned=2) == [IDS[2], IDS[1], IDS[0]]
    assert select_for_removal(sets, 1, keep_pinned=3) == [IDS[1], IDS[0]]
    assert select_for_removal(sets, 1, keep_pinned=5) == []
    assert select_for_removal(sets, 1, keep_pinned=50) == []
    assert select_for_removal(sets, 1, keep_pinned=0) == [IDS[3], IDS[2], IDS[1], IDS[0]]


def test_retention_keep_pinned_counts_the_newest_pinned_sets_not_the_newest_sets():
    sets = [s(IDS[0], pinned=True), s(IDS[1], pinned=True), s(IDS[2]), s(IDS[3], pinned=True), s(IDS[4])]
    # keep=1 keeps IDS[4]; the newest pinned are IDS[3] and IDS[1]; IDS[0] is an old pin.
    assert select_for_removal(sets, 1, keep_pinned=2) == [IDS[2], IDS[0]]
    assert select_for_removal(sets, 1, keep_pinned=1) == [IDS[2], IDS[1], IDS[0]]


def test_retention_a_tampered_pin_protects_nothing():
    sets = [s(IDS[0], STATUS_TAMPERED, pinned=True), s(IDS[1]), s(IDS[2])]
    assert select_for_removal(sets, 1, keep_pinned=2) == [IDS[1], IDS[0]]
    # ... nor does it take the place of a real pin.
    sets = [s(IDS[0], pinned=True), s(IDS[1], STATUS_TAMPERED, pinned=True), s(IDS[2]), s(IDS[3])]
    assert select_for_removal(sets, 1, keep_pinned=1) == [IDS[2], IDS[1]]


@pytest.mark.parametrize('keep_pinned', [-1, -5])
def test_retention_negative_keep_pinned_raises(keep_pinned):
    with pytest.raises(BackupSetError) as excinfo:
        select_for_removal([s(i) for i in IDS], 1, keep_pinned)
    assert str(excinfo.value) == 'keep_pinned must not be negative, got %r' % keep_pinned


def test_retention_never_removes_a_protected_set_after_the_clock_was_stepped_back():
    """The set just taken has an older id than the sets taken before the clock went back."""
    new = '20261001T000000Z'
    sets = [s(i) for i in IDS] + [s(new)]
    assert new in select_for_removal(sets, 2)  # by id alone it is the oldest
    removed = select_for_removal(sets, 2, protect=[new])
    assert new not in removed
    assert removed == [IDS[2], IDS[1], IDS[0]]
    assert select_for_removal(sets, 1, protect=[new, IDS[0]]) == [IDS[3], IDS[2], IDS[1]]


def test_retention_protect_of_an_unknown_id_changes_nothing():
    sets = [s(i) for i in IDS]
    assert select_for_removal(sets, 2, protect=['20200101T000000Z']) == select_for_removal(sets, 2)


@pytest.mark.parametrize('keep', [0, -1, -100])
def test_retention_keep_below_one_raises(keep):
    with pytest.raises(BackupSetError) as excinfo:
        select_for_removal([s(i) for i in IDS], keep)
    assert str(excinfo.value) == 'keep must be at least 1, got %r' % keep


def test_retention_keep_below_one_raises_even_without_sets():
    with pytest.raises(BackupSetError):
        select_for_removal([], 0)


def test_retention_empty_input():
    assert select_for_removal([], 1) == []
    assert select_for_removal([], 10) == []
    assert select_for_removal([], 1, keep_pinned=0, protect=[IDS[0]]) == []


def test_retention_on_real_sets_from_disk(tmp_path):
    make_set(tmp_path, IDS[0], pinned=True)
    make_set(tmp_path, IDS[1])
    make_set(tmp_path, IDS[2])
    make_set(tmp_path, IDS[3], verified=False)
    make_set(tmp_path, IDS[4], manifest_id=IDS[0])  # damaged
    assert select_for_removal(list_sets(str(tmp_path), KEYS), 2) == [IDS[1]]


def test_retention_on_real_sets_a_pin_edited_in_without_the_key_protects_nothing(tmp_path):
    make_set(tmp_path, IDS[0])
    make_set(tmp_path, IDS[1])
    make_set(tmp_path, IDS[2])
    make_set(tmp_path, IDS[3])
    reseal_unkeyed(os.path.join(str(tmp_path), IDS[1]), lambda m: m.__setitem__('pinned', True))
    sets = list_sets(str(tmp_path), KEYS)
    assert [x['status'] for x in sets] == [STATUS_VERIFIED, STATUS_TAMPERED, STATUS_VERIFIED, STATUS_VERIFIED]
    assert select_for_removal(sets, 1) == [IDS[2], IDS[1], IDS[0]]


def test_retention_does_not_modify_its_input():
    sets = [s(i) for i in reversed(IDS)]
    before = copy.deepcopy(sets)
    select_for_removal(sets, 2, keep_pinned=1, protect=[IDS[0]])
    assert sets == before


def test_utc_now_iso():
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    assert utc_now_iso(datetime.datetime(2026, 11, 27, 1, 15, 0, 5, tzinfo=moscow)) == '2026-11-26T22:15:00Z'
    now = utc_now_iso()
    assert len(now) == 20 and now.endswith('Z') and now[10] == 'T'


# --- verify_set with the real content checkers (fake module for dpkg-deb / pg_restore) ---------

def test_verify_set_intact(sealed):
    directory, manifest = sealed
    module = DebModule()
    loaded, problems, status = verify_set(module, directory, ID, KEYS)
    assert problems == []
    assert status == STATUS_VERIFIED
    assert loaded == manifest
    assert sorted(c[2] for c in module.commands) == sorted(
        os.path.join(directory, path) for version, path in PACKAGES.values())
    assert [c[0] for c in module.commands] == ['/usr/bin/dpkg-deb'] * 2


def test_verify_set_of_an_unverified_set(tmp_path):
    directory, manifest = make_set(tmp_path, ID, verified=False)
    assert verify_set(DebModule(), directory, ID, KEYS)[1:] == ([], STATUS_UNVERIFIED)


def test_verify_set_wrong_id(sealed):
    directory, manifest = sealed
    loaded, problems, status = verify_set(DebModule(), directory, '20261126T221500Z-2', KEYS)
    assert problems == ["manifest names backup id '20261126T221500Z', not '20261126T221500Z-2'"]
    assert status == STATUS_DAMAGED


def test_verify_set_without_manifest(tmp_path):
    directory = tmp_path / ID
    directory.mkdir()
    loaded, problems, status = verify_set(DebModule(), str(directory), ID, KEYS)
    assert loaded is None
    assert problems == ['%s: No such file or directory' % os.path.join(str(directory), MANIFEST)]
    assert status == STATUS_DAMAGED


def test_verify_set_package_control_fields_differ(sealed):
    directory, manifest = sealed
    fields = dict(DEB_FIELDS)
    fields['micropvr_1.9.0-1_amd64.deb'] = dict(Package='micropvr', Version='1.10.0-1', Architecture='amd64')
    loaded, problems, status = verify_set(DebModule(fields), directory, ID, KEYS)
    assert len(problems) == 1
    assert problems[0].startswith('packages/micropvr_1.9.0-1_amd64.deb: control fields ')
    assert "'Version': '1.10.0-1'" in problems[0]
    assert "manifest says {'Package': 'micropvr', 'Version': '1.9.0-1', 'Architecture': 'amd64'}" in problems[0]
    assert status == STATUS_DAMAGED


def test_verify_set_unreadable_package(sealed):
    directory, manifest = sealed
    loaded, problems, status = verify_set(DebModule({}), directory, ID, KEYS)
    assert problems == [
        "packages/micropvr_1.9.0-1_amd64.deb: control fields None, manifest says "
        "{'Package': 'micropvr', 'Version': '1.9.0-1', 'Architecture': 'amd64'}",
        "packages/micropvs_1%3a2.0-1_amd64.deb: control fields None, manifest says "
        "{'Package': 'micropvs', 'Version': '1:2.0-1', 'Architecture': 'amd64'}"]


def rewrite_and_reseal(directory, relpath, content):
    """Replace a file and fix its manifest entry with the key, as if it had been backed up that way."""
    with open(os.path.join(directory, relpath), 'wb') as handle:
        handle.write(content)

    def fix(manifest):
        for entry in manifest['files']:
            if entry['path'] == relpath:
                entry.update(size=len(content), sha256=hashlib.sha256(content).hexdigest())
    reseal(directory, fix)


def test_verify_set_sqlite_file_that_is_not_a_database(sealed):
    directory, manifest = sealed
    rewrite_and_reseal(directory, SQLITE_FILE, b'this is not a database at all' * 100)
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert problems == ['sqlite/records.db: not a usable SQLite database: file is not a database']
    assert status == STATUS_DAMAGED


def test_verify_set_incomplete_mysql_dump(sealed):
    directory, manifest = sealed
    rewrite_and_reseal(directory, DUMP_FILE, b'CREATE TABLE x (id int);\n')
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert problems == ['databases/mysql-mw.sql: dump is incomplete (no "-- Dump completed" trailer)']


def test_verify_set_unreadable_config_archive(sealed):
    directory, manifest = sealed
    rewrite_and_reseal(directory, 'config.tar', b'\x00garbage' * 3)
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert len(problems) == 1
    assert problems[0].startswith('config.tar: not a readable tar archive: ')
    assert status == STATUS_DAMAGED


def _archive_with(directory, manifest, extra):
    """config.tar as it is plus ``extra(archive)`` at the end, as bytes."""
    path = os.path.join(directory, 'config.tar')
    rebuilt = path + '.new'
    with tarfile.open(path) as source, tarfile.open(rebuilt, 'w', format=tarfile.PAX_FORMAT) as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        extra(target)
    with open(rebuilt, 'rb') as handle:
        data = handle.read()
    os.unlink(rebuilt)
    return data


@pytest.mark.parametrize('name, reason', [
    ('/zz-extra.conf', 'is not in the manifest'),
    ('/../../cron.d/evil', "has a '..' component"),
])
def test_verify_set_config_archive_with_a_member_not_in_the_manifest(sealed, name, reason):
    """config.tar is checked member by member against config.entries, not only by its checksum."""
    directory, manifest = sealed
    name = manifest['config']['paths'][0].lstrip('/') + name

    def extra(archive):
        info = tarfile.TarInfo(name)
        info.size = 4
        archive.addfile(info, io.BytesIO(b'evil'))
    rewrite_and_reseal(directory, 'config.tar', _archive_with(directory, manifest, extra))
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert status == STATUS_DAMAGED
    assert len(problems) == 1
    assert problems[0].startswith('config.tar: config.tar member')
    assert name in problems[0] and reason in problems[0]


def test_verify_set_config_archive_with_a_member_of_another_type(sealed):
    directory, manifest = sealed
    entry = manifest['config']['entries'][4]  # micropvr.conf, a file
    path = os.path.join(directory, 'config.tar')
    with tarfile.open(path) as source:
        members = source.getmembers()
        contents = dict((m.name, source.extractfile(m).read()) for m in members if m.isfile())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as target:
        for member in members:
            if '/' + member.name == entry['path']:
                member.type, member.linkname, member.size = tarfile.SYMTYPE, '/root/.ssh/authorized_keys', 0
                target.addfile(member)
            else:
                target.addfile(member, io.BytesIO(contents[member.name]) if member.isfile() else None)
    rewrite_and_reseal(directory, 'config.tar', buffer.getvalue())
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert problems == ['config.tar: config.tar member %s is a symlink, the manifest says file'
                        % entry['path'].lstrip('/')]
    assert status == STATUS_DAMAGED


def test_verify_set_custom_dump_without_pg_restore(sealed):
    directory, manifest = sealed

    def custom(m):
        [e for e in m['files'] if e['kind'] == 'database'][0]['format'] = 'custom'
    reseal(directory, custom)
    loaded, problems, status = verify_set(DebModule(), directory, ID, KEYS)
    assert problems == ['databases/mysql-mw.sql: pg_restore not found (install postgresql-client)']


# --- unique_names (SQLite copies and dump files of one set) ----------------------------------------

@pytest.mark.parametrize('names, expected', [
    ([], []),
    (['records.db'], ['records.db']),
    (['records.db', 'tasks.db'], ['records.db', 'tasks.db']),
    (['a.db', 'a.db'], ['0-a.db', '1-a.db']),
    (['a.db', 'b.db', 'a.db'], ['0-a.db', '1-b.db', '2-a.db']),
])
def test_unique_names(names, expected):
    assert backupset.unique_names(names) == expected


def test_unique_names_are_unique_even_when_a_name_looks_prefixed():
    names = backupset.unique_names(['x.db', 'x.db', '1-x.db'])
    assert len(set(names)) == 3


# --- how far the SQLite copies are checked -------------------------------------------------------

@pytest.mark.parametrize('level, called', [('full', ['full']), ('quick', ['quick']), ('checksum', [])])
def test_verify_set_checks_the_sqlite_copies_at_the_level_asked(sealed, monkeypatch, level, called):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import sqlite_snapshot
    seen = []
    monkeypatch.setattr(sqlite_snapshot, 'integrity_check', lambda path, lvl='full': seen.append(lvl))
    directory, dummy = sealed
    assert verify_set(DebModule(), directory, ID, KEYS, sqlite_check=level)[1:] == ([], STATUS_VERIFIED)
    assert seen == called


def test_checksum_level_still_catches_a_flipped_byte_in_a_sqlite_copy(sealed):
    directory, dummy = sealed
    flip_byte(os.path.join(directory, SQLITE_FILE), 100)
    manifest, problems, status = verify_set(DebModule(), directory, ID, KEYS, sqlite_check='checksum')
    assert (problems, status) == (['%s: sha256 does not match the manifest' % SQLITE_FILE], STATUS_DAMAGED)


def test_an_unknown_sqlite_check_level_is_refused_naming_it(sealed):
    directory, dummy = sealed
    with pytest.raises(BackupSetError, match="sqlite_check must be one of full, quick, checksum, not 'thorough'"):
        verify_set(DebModule(), directory, ID, KEYS, sqlite_check='thorough')


# --- trusting a verification of the same run -----------------------------------------------------

RUN = 'update-20261126T221500Z-4242'


@pytest.fixture
def marked(sealed):
    """A set sealed as verified just now by RUN, with the identities of its files."""
    directory, manifest = sealed
    backupset.mark_verified(directory, manifest, KEYS, RUN)
    return directory, load_manifest(directory)


def fresh(directory, run_id=RUN, keys=KEYS):
    return backupset.fresh_verification_problem(directory, load_manifest(directory), ID, keys, run_id)


def test_mark_verified_records_the_run_and_every_files_identity_under_the_seal(marked):
    directory, manifest = marked
    assert manifest['verified_by'] == RUN and manifest['verified_at']
    assert sorted(manifest['verified_files']) == sorted(entry['path'] for entry in manifest['files'])
    st = os.lstat(os.path.join(directory, SQLITE_FILE))
    assert manifest['verified_files'][SQLITE_FILE] == [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    assert KEYS.problem(manifest) is None and confine.manifest_problems(manifest) == []
    assert verify_set(DebModule(), directory, ID, KEYS)[1:] == ([], STATUS_VERIFIED)


def test_the_same_run_trusts_an_unchanged_set(marked):
    assert fresh(marked[0]) is None


@pytest.mark.parametrize('run_id, reason', [(None, 'no run to trust'), ('', 'no run to trust'),
                                            ('another-run', 'not verified by this run')])
def test_another_run_or_none_does_not_trust_it(marked, run_id, reason):
    assert fresh(marked[0], run_id) == reason


def test_a_set_marked_without_a_run_is_never_trusted(sealed):
    directory, manifest = sealed
    backupset.mark_verified(directory, manifest, KEYS, None)
    assert fresh(directory) == 'not verified by this run'


def test_a_flipped_byte_is_seen_without_reading_the_file(marked):
    directory, dummy = marked
    flip_byte(os.path.join(directory, SQLITE_FILE), 100)
    assert fresh(directory) == '%s changed since it was verified' % SQLITE_FILE


def test_a_rewrite_with_the_old_times_put_back_is_still_seen(marked):
    directory, manifest = marked
    path = os.path.join(directory, 'config.tar')
    st = os.stat(path)
    with open(path, 'r+b') as handle:
        data = handle.read()
        handle.seek(0)
        handle.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Same bytes, same mtime: only the ctime moved, and that is enough not to trust it.
    assert fresh(directory) == 'config.tar changed since it was verified'


def test_a_replaced_file_is_seen(marked):
    directory, dummy = marked
    path = os.path.join(directory, SQLITE_FILE)
    with open(path, 'rb') as handle:
        data = handle.read()
    os.unlink(path)
    with open(path, 'wb') as handle:
        handle.write(data)
    assert fresh(directory) == '%s changed since it was verified' % SQLITE_FILE


def test_a_missing_file_is_seen(marked):
    directory, dummy = marked
    os.unlink(os.path.join(directory, SQLITE_FILE))
    assert fresh(directory) == '%s: missing' % SQLITE_FILE


def test_a_file_replaced_by_a_symlink_is_seen(marked, tmp_path):
    directory, dummy = marked
    path = os.path.join(directory, 'config.tar')
    os.rename(path, str(tmp_path / 'elsewhere.tar'))
    os.symlink(str(tmp_path / 'elsewhere.tar'), path)
    assert fresh(directory) == 'config.tar changed since it was verified'


def test_an_added_file_or_symlinked_directory_is_seen(marked, tmp_path):
    directory, dummy = marked
    with open(os.path.join(directory, 'extra'), 'w') as handle:
        handle.write('x')
    assert fresh(directory) == 'extra is not listed in the manifest'
    os.unlink(os.path.join(directory, 'extra'))
    os.symlink(str(tmp_path), os.path.join(directory, 'linked'))
    assert fresh(directory) == 'linked is a symbolic link'


def test_forged_identities_need_the_key(marked):
    directory, manifest = marked
    flip_byte(os.path.join(directory, SQLITE_FILE), 100)
    manifest['verified_files'][SQLITE_FILE] = backupset.file_identity(os.path.join(directory, SQLITE_FILE))
    write_raw(directory, manifest)
    assert fresh(directory) == CHANGED
    reseal(directory, lambda m: None, OTHER_KEYS)
    assert 'which this host does not have' in fresh(directory)


@pytest.mark.parametrize('identities, reason', [
    (None, 'the manifest is not sound'), ([], 'the manifest is not sound'), ('x', 'the manifest is not sound'),
    ({}, 'config.tar changed since it was verified'),
    ({'config.tar': 'x'}, 'config.tar changed since it was verified'),
])
def test_identities_of_the_wrong_shape_are_not_trusted(marked, identities, reason):
    directory, manifest = marked
    reseal(directory, lambda m: m.update(verified_files=identities))
    assert fresh(directory) == reason


def test_a_manifest_naming_another_set_is_not_trusted(marked):
    directory, manifest = marked
    reseal(directory, lambda m: m.update(backup_id='20261126T221501Z'))
    assert fresh(directory) == 'the manifest is not of this format or names another set'


@pytest.mark.parametrize('edit, reason', [
    (lambda m: m.update(backup_id='20200101T000000Z'), 'names another set'),
    (lambda m: m.update(files='nope'), 'not sound'),
])
def test_unchanged_problem_names_a_manifest_it_cannot_trust(sealed, edit, reason):
    directory, manifest = sealed
    identities = backupset.file_identities(directory, manifest)
    assert backupset.unchanged_problem(directory, manifest, ID, KEYS, identities) is None
    edited = reseal(directory, edit)
    assert reason in backupset.unchanged_problem(directory, edited, ID, KEYS, identities)


# --- the set a rollback restores when none is named ------------------------------------------


def test_newest_pre_update_set_skips_newer_sets_of_other_reasons_and_unverified_ones(tmp_path):
    root = str(tmp_path)
    make_set(root, '20261120T030000Z', reason='pre-update to 1.9.0-1', packages=False, databases=False)
    make_set(root, '20261126T221500Z', reason='pre-update to 1.10.0-1', packages=False, databases=False)
    make_set(root, '20261127T080000Z', reason='pre-rollback to 20261126T221500Z', packages=False, databases=False)
    make_set(root, '20261128T030000Z', reason='pre-update to 1.11.0-1', verified=False, packages=False, databases=False)
    assert backupset.newest_pre_update_set(root, KEYS) == '20261126T221500Z'


def test_newest_pre_update_set_skips_tampered_and_damaged_sets(tmp_path):
    root = str(tmp_path)
    make_set(root, '20261120T030000Z', reason='pre-update to 1.9.0-1', packages=False, databases=False)
    newer, dummy = make_set(root, '20261126T221500Z', reason='pre-update to 1.10.0-1', packages=False, databases=False)
    reseal(newer, lambda m: m.update(pinned=True), OTHER_KEYS)  # sealed with a key this host does not trust
    newest, dummy = make_set(root, '20261127T080000Z', reason='pre-update to 1.11.0-1', packages=False, databases=False)
    with open(os.path.join(newest, 'manifest.json'), 'w') as handle:
        handle.write('{not json')
    assert backupset.newest_pre_update_set(root, KEYS) == '20261120T030000Z'


@pytest.mark.parametrize('reason', [None, 'manual pre-update', '', 'Pre-update to 1.10.0-1'])
def test_newest_pre_update_set_is_none_without_one(tmp_path, reason):
    root = str(tmp_path)
    make_set(root, '20261126T221500Z', reason=reason, packages=False, databases=False)
    assert backupset.newest_pre_update_set(root, KEYS) is None
    assert backupset.newest_pre_update_set(str(tmp_path / 'missing'), KEYS) is None
