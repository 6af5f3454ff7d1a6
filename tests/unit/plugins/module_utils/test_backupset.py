"""Unit tests for plugins/module_utils/backupset.py: ids, seal, manifest, verification, retention."""

import copy
import datetime
import hashlib
import json
import os
import random
import sqlite3
import stat
import tarfile

import pytest

from fake_module import FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils.backupset import (
    FORMAT_VERSION,
    INCOMPLETE_PREFIX,
    MANIFEST,
    STATUS_DAMAGED,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    BackupSetError,
    file_entry,
    list_set_dirs,
    list_sets,
    load_manifest,
    new_backup_id,
    seal,
    seal_matches,
    select_for_removal,
    set_path,
    set_size,
    sha256_file,
    summarize,
    utc_now_iso,
    validate_backup_id,
    verify_files,
    verify_set,
    write_manifest,
)

UTC = datetime.timezone.utc
DEFAULT_FILES = {
    'config.tar': (b'pretend tar archive\n' * 10, 'config'),
    'sqlite/records.db': (b'pretend sqlite database' * 3, 'sqlite'),
    'packages/micropvr_1.9.0-1_amd64.deb': (b'!<arch>\npretend deb\n', 'package'),
}


def make_set(root, backup_id, files=None, pinned=False, verified=True, reason='manual', manifest_id=None):
    """Write a complete backup set the way micropvr_backup does: files, then a sealed manifest."""
    directory = os.path.join(str(root), backup_id)
    os.makedirs(directory)
    entries = []
    for relpath, (content, kind) in sorted((files if files is not None else DEFAULT_FILES).items()):
        full = os.path.join(directory, relpath)
        if not os.path.isdir(os.path.dirname(full)):
            os.makedirs(os.path.dirname(full))
        with open(full, 'wb') as handle:
            handle.write(content)
        entries.append(file_entry(directory, relpath, kind))
    manifest = dict(
        format_version=FORMAT_VERSION,
        backup_id=manifest_id or backup_id,
        created_at='2026-11-26T22:15:00Z',
        host='pvr1.example.net',
        reason=reason,
        pinned=pinned,
        packages=dict(
            micropvr=dict(version='1.9.0-1', architecture='amd64',
                          file='packages/micropvr_1.9.0-1_amd64.deb', source='apt-cache'),
            micropvs=dict(version='1:2.0-1', architecture='amd64',
                          file='packages/micropvs_1%3a2.0-1_amd64.deb', source='dpkg-repack'),
        ),
        files=entries,
        verified_at='2026-11-26T22:15:07Z' if verified else None,
    )
    write_manifest(directory, manifest)
    return directory, manifest


def flip_byte(path, offset=0):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


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


def test_sha256_file_missing_raises(tmp_path):
    with pytest.raises(IOError):
        sha256_file(str(tmp_path / 'nope'))


def sample_manifest():
    return dict(
        format_version=1,
        backup_id='20261126T221500Z',
        created_at='2026-11-26T22:15:00Z',
        host='pvr1.example.net',
        reason='pre-update to 1.10.0-1',
        pinned=False,
        packages=dict(micropvr=dict(version='1.9.0-1', architecture='amd64',
                                    file='packages/micropvr_1.9.0-1_amd64.deb', source='apt-cache')),
        files=[dict(path='config.tar', kind='config', size=10240, sha256='a' * 64),
               dict(path='sqlite/records.db', kind='sqlite', size=8192, sha256='b' * 64)],
        verified_at=None,
    )


def test_seal_adds_sha256_and_matches():
    manifest = sample_manifest()
    assert seal(manifest) is manifest
    assert len(manifest['manifest_sha256']) == 64
    int(manifest['manifest_sha256'], 16)
    assert seal_matches(manifest)


def test_seal_is_over_canonical_json_without_the_seal_itself():
    manifest = sample_manifest()
    expected = hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(',', ':')).encode()).hexdigest()
    seal(manifest)
    assert manifest['manifest_sha256'] == expected
    # re-sealing a sealed manifest gives the same seal
    seal(manifest)
    assert manifest['manifest_sha256'] == expected


def test_seal_does_not_depend_on_key_order():
    manifest = seal(sample_manifest())
    reordered = dict(reversed(list(manifest.items())))
    assert list(reordered) != list(manifest)
    assert seal_matches(reordered)
    assert seal_matches(json.loads(json.dumps(manifest, indent=2)))


def test_unsealed_manifest_does_not_match():
    assert not seal_matches(sample_manifest())
    manifest = seal(sample_manifest())
    manifest['manifest_sha256'] = 'f' * 64
    assert not seal_matches(manifest)
    del manifest['manifest_sha256']
    assert not seal_matches(manifest)


EDITS = [
    ('file checksum', lambda m: m['files'][0].__setitem__('sha256', 'c' * 64)),
    ('file size', lambda m: m['files'][1].__setitem__('size', 8193)),
    ('file path', lambda m: m['files'][1].__setitem__('path', 'sqlite/tasks.db')),
    ('file kind', lambda m: m['files'][0].__setitem__('kind', 'sqlite')),
    ('file removed', lambda m: m['files'].pop()),
    ('package version', lambda m: m['packages']['micropvr'].__setitem__('version', '1.10.0-1')),
    ('package architecture', lambda m: m['packages']['micropvr'].__setitem__('architecture', 'arm64')),
    ('package added', lambda m: m['packages'].__setitem__('micropvs', dict(version='1'))),
    ('pinned', lambda m: m.__setitem__('pinned', True)),
    ('verified_at', lambda m: m.__setitem__('verified_at', '2026-11-26T22:16:00Z')),
    ('backup_id', lambda m: m.__setitem__('backup_id', '20261126T221501Z')),
    ('created_at', lambda m: m.__setitem__('created_at', '2026-11-26T22:15:01Z')),
    ('reason', lambda m: m.__setitem__('reason', 'manual')),
    ('host', lambda m: m.__setitem__('host', 'pvr2.example.net')),
    ('format_version', lambda m: m.__setitem__('format_version', 2)),
    ('new key', lambda m: m.__setitem__('extra', None)),
    ('key removed', lambda m: m.pop('reason')),
    ('int to string', lambda m: m['files'][0].__setitem__('size', '10240')),
]


@pytest.mark.parametrize('edit', [e[1] for e in EDITS], ids=[e[0] for e in EDITS])
def test_any_edit_breaks_the_seal_and_resealing_fixes_it(edit):
    manifest = seal(sample_manifest())
    edit(manifest)
    assert not seal_matches(manifest)
    seal(manifest)
    assert seal_matches(manifest)


# --- write / load ------------------------------------------------------------------------------

def test_write_manifest_round_trips_with_mode_0600(tmp_path):
    old_umask = os.umask(0o022)
    try:
        manifest = sample_manifest()
        path = write_manifest(str(tmp_path), manifest)
    finally:
        os.umask(old_umask)
    assert path == os.path.join(str(tmp_path), MANIFEST)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert 'manifest_sha256' in manifest  # sealed in place
    loaded = load_manifest(str(tmp_path))
    assert loaded == manifest
    assert seal_matches(loaded)
    assert sorted(os.listdir(str(tmp_path))) == [MANIFEST]  # no temp file left
    with open(path) as handle:
        text = handle.read()
    assert text.endswith('}\n')
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + '\n'


def test_write_manifest_is_0600_even_with_an_open_umask(tmp_path):
    old_umask = os.umask(0)
    try:
        path = write_manifest(str(tmp_path), sample_manifest())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_write_manifest_replaces_the_previous_manifest(tmp_path):
    first = sample_manifest()
    write_manifest(str(tmp_path), first)
    second = sample_manifest()
    second['verified_at'] = '2026-11-26T22:15:07Z'
    write_manifest(str(tmp_path), second)
    assert load_manifest(str(tmp_path))['verified_at'] == '2026-11-26T22:15:07Z'
    assert seal_matches(load_manifest(str(tmp_path)))


def test_write_manifest_failure_leaves_the_old_manifest_intact(tmp_path):
    write_manifest(str(tmp_path), sample_manifest())
    path = os.path.join(str(tmp_path), MANIFEST)
    with open(path, 'rb') as handle:
        before = handle.read()
    broken = sample_manifest()
    broken['reason'] = object()  # not JSON serialisable: fails half-way through the write
    with pytest.raises(TypeError):
        write_manifest(str(tmp_path), broken)
    with open(path, 'rb') as handle:
        assert handle.read() == before


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

def test_verify_files_intact_set(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    assert verify_files(directory, load_manifest(directory)) == []
    assert verify_files(directory, manifest) == []


def test_verify_files_flipped_byte_is_a_sha256_problem(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    flip_byte(os.path.join(directory, 'sqlite', 'records.db'), offset=7)
    assert verify_files(directory, load_manifest(directory)) == [
        'sqlite/records.db: sha256 does not match the manifest']


def test_verify_files_truncated_file_is_a_size_problem(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    path = os.path.join(directory, 'config.tar')
    size = os.path.getsize(path)
    with open(path, 'r+b') as handle:
        handle.truncate(size - 10)
    assert verify_files(directory, load_manifest(directory)) == [
        'config.tar: size %d, manifest says %d' % (size - 10, size)]


def test_verify_files_missing_file(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    os.unlink(os.path.join(directory, 'packages', 'micropvr_1.9.0-1_amd64.deb'))
    assert verify_files(directory, load_manifest(directory)) == [
        'packages/micropvr_1.9.0-1_amd64.deb: missing']


def test_verify_files_listed_path_that_is_a_directory_is_missing(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    os.unlink(os.path.join(directory, 'config.tar'))
    os.mkdir(os.path.join(directory, 'config.tar'))
    assert verify_files(directory, load_manifest(directory)) == ['config.tar: missing']


def test_verify_files_extra_unlisted_files(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    with open(os.path.join(directory, 'sqlite', 'records.db-journal'), 'wb') as handle:
        handle.write(b'x')
    with open(os.path.join(directory, 'stray.txt'), 'wb') as handle:
        handle.write(b'')
    os.makedirs(os.path.join(directory, 'sub', 'deeper'))
    with open(os.path.join(directory, 'sub', 'deeper', MANIFEST), 'wb') as handle:
        handle.write(b'{}')
    assert sorted(verify_files(directory, load_manifest(directory))) == [
        'sqlite/records.db-journal: not listed in the manifest',
        'stray.txt: not listed in the manifest',
        'sub/deeper/manifest.json: not listed in the manifest',
    ]


def test_verify_files_empty_directories_are_not_problems(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    os.mkdir(os.path.join(directory, 'databases'))
    assert verify_files(directory, manifest) == []


@pytest.mark.parametrize('bad_path', ['../outside', 'sqlite/../../outside', '/etc/hostname', '..'])
def test_verify_files_path_escaping_the_set(tmp_path, bad_path):
    directory, manifest = make_set(tmp_path / 'root', '20261126T221500Z')
    # A file that really exists outside the set, with the right size and checksum listed.
    outside = tmp_path / 'root' / 'outside'
    outside.write_bytes(b'secret outside the set')
    manifest['files'].append(dict(path=bad_path, kind='config', size=22,
                                  sha256=hashlib.sha256(b'secret outside the set').hexdigest()))
    seal(manifest)
    assert verify_files(directory, manifest) == ['%s: path escapes the backup set' % bad_path]


def test_verify_files_seal_mismatch(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    manifest = load_manifest(directory)
    manifest['packages']['micropvr']['version'] = '1.10.0-1'
    assert verify_files(directory, manifest) == [
        'manifest.json was changed after the backup was taken (seal mismatch)']


def test_verify_files_edited_checksum_on_disk_is_a_seal_mismatch(tmp_path):
    """Someone replaces a file and fixes its checksum in manifest.json: the seal catches it."""
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    path = os.path.join(directory, 'sqlite', 'records.db')
    flip_byte(path)
    with open(os.path.join(directory, MANIFEST)) as handle:
        on_disk = json.load(handle)
    for entry in on_disk['files']:
        if entry['path'] == 'sqlite/records.db':
            entry['sha256'] = sha256_file(path)
    with open(os.path.join(directory, MANIFEST), 'w') as handle:
        json.dump(on_disk, handle)
    assert verify_files(directory, load_manifest(directory)) == [
        'manifest.json was changed after the backup was taken (seal mismatch)']


@pytest.mark.parametrize('version', [2, 0, '1', None])
def test_verify_files_wrong_format_version(tmp_path, version):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    if version is None:
        del manifest['format_version']
    else:
        manifest['format_version'] = version
    seal(manifest)
    assert verify_files(directory, manifest) == ['manifest format_version %r is not 1' % (version,)]


def test_verify_files_reports_every_problem(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    flip_byte(os.path.join(directory, 'config.tar'))
    os.unlink(os.path.join(directory, 'sqlite', 'records.db'))
    with open(os.path.join(directory, 'extra'), 'wb') as handle:
        handle.write(b'x')
    manifest['format_version'] = 3
    assert sorted(verify_files(directory, manifest)) == sorted([
        'manifest.json was changed after the backup was taken (seal mismatch)',
        'manifest format_version 3 is not 1',
        'config.tar: sha256 does not match the manifest',
        'sqlite/records.db: missing',
        'extra: not listed in the manifest',
    ])


def test_verify_files_calls_checkers_per_kind(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    calls = []

    def recorder(kind, problem):
        def check(full, entry):
            calls.append((kind, full, entry['path']))
            return problem
        return check

    checkers = dict(sqlite=recorder('sqlite', 'integrity_check: page 2 is never used'),
                    package=recorder('package', None),
                    database=recorder('database', 'never called'))
    problems = verify_files(directory, manifest, checkers)
    assert problems == ['sqlite/records.db: integrity_check: page 2 is never used']
    assert sorted(calls) == [
        ('package', os.path.join(directory, 'packages/micropvr_1.9.0-1_amd64.deb'),
         'packages/micropvr_1.9.0-1_amd64.deb'),
        ('sqlite', os.path.join(directory, 'sqlite/records.db'), 'sqlite/records.db'),
    ]


def test_verify_files_does_not_call_checker_for_a_file_failing_its_checksum(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    flip_byte(os.path.join(directory, 'sqlite', 'records.db'))
    calls = []
    problems = verify_files(directory, manifest, dict(sqlite=lambda full, entry: calls.append(full) or 'bad'))
    assert problems == ['sqlite/records.db: sha256 does not match the manifest']
    assert calls == []


def test_verify_files_empty_string_problem_from_checker_is_no_problem(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    assert verify_files(directory, manifest, dict(config=lambda full, entry: '')) == []


def test_set_size(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    expected = sum(len(content) for content, kind in DEFAULT_FILES.values())
    expected += os.path.getsize(os.path.join(directory, MANIFEST))
    assert set_size(directory) == expected


# --- summarize / listing -----------------------------------------------------------------------

def test_summarize_verified(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z', pinned=True, reason='pre-update to 1.10.0-1')
    summary = summarize(directory, '20261126T221500Z')
    assert summary == dict(
        id='20261126T221500Z', path=directory, created_at='2026-11-26T22:15:00Z',
        reason='pre-update to 1.10.0-1', host='pvr1.example.net',
        packages=dict(micropvr='1.9.0-1', micropvs='1:2.0-1'), pinned=True,
        verified_at='2026-11-26T22:15:07Z', size=set_size(directory), status=STATUS_VERIFIED, problems=[])


def test_summarize_unverified(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z', verified=False)
    summary = summarize(directory, '20261126T221500Z')
    assert summary['status'] == STATUS_UNVERIFIED
    assert summary['problems'] == []
    assert summary['pinned'] is False
    assert summary['verified_at'] is None


def test_summarize_does_not_read_file_contents(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    flip_byte(os.path.join(directory, 'config.tar'))
    assert summarize(directory, '20261126T221500Z')['status'] == STATUS_VERIFIED


def test_summarize_manifest_naming_another_id_is_damaged(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z', manifest_id='20250101T000000Z')
    summary = summarize(directory, '20261126T221500Z')
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] == ["manifest names backup id '20250101T000000Z'"]
    # what the manifest says is still reported
    assert summary['packages'] == dict(micropvr='1.9.0-1', micropvs='1:2.0-1')


def test_summarize_seal_mismatch_is_damaged(tmp_path):
    directory, manifest = make_set(tmp_path, '20261126T221500Z')
    manifest = load_manifest(directory)
    manifest['pinned'] = True  # edited without resealing
    with open(os.path.join(directory, MANIFEST), 'w') as handle:
        json.dump(manifest, handle)
    summary = summarize(directory, '20261126T221500Z')
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] == ['manifest.json was changed after the backup was taken (seal mismatch)']


def test_summarize_without_manifest_is_damaged(tmp_path):
    directory = tmp_path / '20261126T221500Z'
    directory.mkdir()
    (directory / 'config.tar').write_bytes(b'12345')
    summary = summarize(str(directory), '20261126T221500Z')
    assert summary['status'] == STATUS_DAMAGED
    assert summary['problems'] == ['%s: No such file or directory' % os.path.join(str(directory), MANIFEST)]
    assert summary['size'] == 5
    assert summary['packages'] == {}
    assert summary['pinned'] is False


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


def test_list_sets_oldest_first_with_status(tmp_path):
    make_set(tmp_path, '20261126T221500Z')
    make_set(tmp_path, '20250101T000000Z', verified=False)
    make_set(tmp_path, '20261127T000000Z', manifest_id='20261126T221500Z')
    (tmp_path / (INCOMPLETE_PREFIX + '20261128T000000Z')).mkdir()
    (tmp_path / 'junk').mkdir()
    sets = list_sets(str(tmp_path))
    assert [(s['id'], s['status']) for s in sets] == [
        ('20250101T000000Z', STATUS_UNVERIFIED),
        ('20261126T221500Z', STATUS_VERIFIED),
        ('20261127T000000Z', STATUS_DAMAGED),
    ]
    assert [s['path'] for s in sets] == [os.path.join(str(tmp_path), s['id']) for s in sets]


def test_list_sets_missing_root(tmp_path):
    assert list_sets(str(tmp_path / 'nope')) == []


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


def test_retention_never_removes_pinned_sets():
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


def test_retention_without_any_verified_set():
    sets = [s(i, STATUS_UNVERIFIED) for i in IDS]
    assert select_for_removal(sets, 4) == [IDS[0]]


def test_retention_all_pinned_removes_nothing():
    assert select_for_removal([s(i, pinned=True) for i in IDS], 1) == []


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


def test_retention_on_real_sets_from_disk(tmp_path):
    make_set(tmp_path, IDS[0], pinned=True)
    make_set(tmp_path, IDS[1])
    make_set(tmp_path, IDS[2])
    make_set(tmp_path, IDS[3], verified=False)
    make_set(tmp_path, IDS[4], manifest_id=IDS[0])  # damaged
    assert select_for_removal(list_sets(str(tmp_path)), 2) == [IDS[1]]


def test_retention_does_not_modify_its_input():
    sets = [s(i) for i in reversed(IDS)]
    before = copy.deepcopy(sets)
    select_for_removal(sets, 2)
    assert sets == before


def test_utc_now_iso():
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    assert utc_now_iso(datetime.datetime(2026, 11, 27, 1, 15, 0, 5, tzinfo=moscow)) == '2026-11-26T22:15:00Z'
    now = utc_now_iso()
    assert len(now) == 20 and now.endswith('Z') and now[10] == 'T'


# --- verify_set with the real content checkers (fake module for dpkg-deb / pg_restore) ---------

class FakeModule(FakeModuleBase):
    def __init__(self, fields=None, bins=None):
        self.fields = fields or {}
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



def make_real_set(tmp_path, backup_id='20261126T221500Z'):
    """A set with a real SQLite database, a real tar, a .deb and a mysqldump file."""
    directory = str(tmp_path / backup_id)
    os.makedirs(os.path.join(directory, 'sqlite'))
    os.makedirs(os.path.join(directory, 'packages'))
    os.makedirs(os.path.join(directory, 'databases'))
    conn = sqlite3.connect(os.path.join(directory, 'sqlite', 'records.db'))
    conn.execute('CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT)')
    conn.executemany('INSERT INTO records (name) VALUES (?)', [('r%d' % i,) for i in range(50)])
    conn.commit()
    conn.close()
    source = tmp_path / 'micropvr.conf'
    source.write_text('{}\n')
    with tarfile.open(os.path.join(directory, 'config.tar'), 'w') as archive:
        archive.add(str(source), arcname='etc/micropvr/micropvr.conf')
    with open(os.path.join(directory, 'packages', 'micropvr_1.9.0-1_amd64.deb'), 'wb') as handle:
        handle.write(b'!<arch>\n')
    with open(os.path.join(directory, 'databases', 'mysql-mw.sql'), 'wb') as handle:
        handle.write(b'CREATE TABLE x (id int);\n-- Dump completed on 2026-11-26 22:15:03\n')
    files = [
        file_entry(directory, 'config.tar', 'config'),
        file_entry(directory, 'sqlite/records.db', 'sqlite', source='/etc/micropvr/records.db'),
        file_entry(directory, 'packages/micropvr_1.9.0-1_amd64.deb', 'package', package='micropvr',
                   version='1.9.0-1', architecture='amd64'),
        file_entry(directory, 'databases/mysql-mw.sql', 'database', format='sql'),
    ]
    manifest = dict(format_version=1, backup_id=backup_id, created_at='2026-11-26T22:15:00Z', host='h',
                    reason='manual', pinned=False, packages={}, files=files, verified_at=None)
    write_manifest(directory, manifest)
    return directory, manifest


GOOD_FIELDS = {'micropvr_1.9.0-1_amd64.deb': dict(Package='micropvr', Version='1.9.0-1', Architecture='amd64')}


def test_verify_set_intact(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    module = FakeModule(GOOD_FIELDS)
    loaded, problems = verify_set(module, directory, '20261126T221500Z')
    assert problems == []
    assert loaded == manifest
    assert [c[0] for c in module.commands] == ['/usr/bin/dpkg-deb']


def test_verify_set_wrong_id(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    loaded, problems = verify_set(FakeModule(GOOD_FIELDS), directory, '20261126T221500Z-2')
    assert problems == ["manifest names backup id '20261126T221500Z', not '20261126T221500Z-2'"]


def test_verify_set_without_manifest(tmp_path):
    directory = tmp_path / '20261126T221500Z'
    directory.mkdir()
    loaded, problems = verify_set(FakeModule(), str(directory), '20261126T221500Z')
    assert loaded is None
    assert problems == ['%s: No such file or directory' % os.path.join(str(directory), MANIFEST)]


def test_verify_set_package_control_fields_differ(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    fields = {'micropvr_1.9.0-1_amd64.deb': dict(Package='micropvr', Version='1.10.0-1', Architecture='amd64')}
    loaded, problems = verify_set(FakeModule(fields), directory, '20261126T221500Z')
    assert len(problems) == 1
    assert problems[0].startswith('packages/micropvr_1.9.0-1_amd64.deb: control fields ')
    assert "'Version': '1.10.0-1'" in problems[0]
    assert "manifest says {'Package': 'micropvr', 'Version': '1.9.0-1', 'Architecture': 'amd64'}" in problems[0]


def test_verify_set_unreadable_package(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    loaded, problems = verify_set(FakeModule({}), directory, '20261126T221500Z')
    assert problems == ["packages/micropvr_1.9.0-1_amd64.deb: control fields None, manifest says "
                        "{'Package': 'micropvr', 'Version': '1.9.0-1', 'Architecture': 'amd64'}"]


def rewrite_and_reseal(directory, relpath, content):
    """Replace a file and fix its manifest entry, as if it had been backed up that way."""
    with open(os.path.join(directory, relpath), 'wb') as handle:
        handle.write(content)
    manifest = load_manifest(directory)
    for entry in manifest['files']:
        if entry['path'] == relpath:
            entry.update(size=len(content), sha256=hashlib.sha256(content).hexdigest())
    write_manifest(directory, manifest)


def test_verify_set_sqlite_file_that_is_not_a_database(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    rewrite_and_reseal(directory, 'sqlite/records.db', b'this is not a database at all' * 100)
    loaded, problems = verify_set(FakeModule(GOOD_FIELDS), directory, '20261126T221500Z')
    assert problems == ['sqlite/records.db: not a usable SQLite database: file is not a database']


def test_verify_set_incomplete_mysql_dump(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    rewrite_and_reseal(directory, 'databases/mysql-mw.sql', b'CREATE TABLE x (id int);\n')
    loaded, problems = verify_set(FakeModule(GOOD_FIELDS), directory, '20261126T221500Z')
    assert problems == ['databases/mysql-mw.sql: dump is incomplete (no "-- Dump completed" trailer)']


def test_verify_set_unreadable_config_archive(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    rewrite_and_reseal(directory, 'config.tar', b'\x00garbage' * 3)
    loaded, problems = verify_set(FakeModule(GOOD_FIELDS), directory, '20261126T221500Z')
    assert len(problems) == 1
    assert problems[0].startswith('config.tar: not a readable tar archive: ')


def test_verify_set_custom_dump_without_pg_restore(tmp_path):
    directory, manifest = make_real_set(tmp_path)
    manifest = load_manifest(directory)
    manifest['files'][3]['format'] = 'custom'
    write_manifest(directory, manifest)
    loaded, problems = verify_set(FakeModule(GOOD_FIELDS), directory, '20261126T221500Z')
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
