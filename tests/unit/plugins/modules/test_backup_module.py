"""Unit tests for the helpers of plugins/modules/micropvr_backup.py (and one run on a real tree)."""

import datetime
import hashlib
import io
import json
import os
import sqlite3
import stat
import tarfile
import time

import pytest
import yaml

from backup_sets import KEYS, OTHER_KEYS, TEST_KEY_HEX, count_calls, make_set, reseal
from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import belongs_to_database

from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import databases as databases_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import backup_root as backup_root_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import seal as seal_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import state_dir as state_dir_fragment

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_backup
from ansible_collections.microimpuls.micropvr.plugins.module_utils import takeset
from ansible_collections.microimpuls.micropvr.plugins.module_utils.takeset import (
    RootLock,
    _restrict,
    _tar_entries,
    _walk_files,
    _write_config_archive,
    argument_spec,
    check_roots,
    public_manifest,
)


# --- belongs_to_database (sqlite_snapshot) ---------------------------------------------------------------------------------

DBS = ['/etc/micropvr/records.db', '/etc/micropvr/tasks.db']


@pytest.mark.parametrize('path', [
    '/etc/micropvr/records.db',
    '/etc/micropvr/records.db-journal',
    '/etc/micropvr/records.db-wal',
    '/etc/micropvr/records.db-shm',
    '/etc/micropvr/tasks.db',
    '/etc/micropvr/tasks.db-wal',
    # super-journal of a transaction over attached databases (seen in the backup scenario)
    '/etc/micropvr/tasks.db-mjA7DFDE9CC',
    '/etc/micropvr/records.db-mj0000009FF',
])
def test_excluded_database_and_side_files(path):
    assert belongs_to_database(path, DBS) is True


@pytest.mark.parametrize('path', [
    '/etc/micropvr/micropvr.conf',
    '/etc/micropvr/records.db.bak',
    '/etc/micropvr/records.db-old',
    '/etc/micropvr/records.db-journal.1',
    '/etc/micropvr/records.db-mj',
    '/etc/micropvr/records.db-mjA7DFDE8CC',
    '/etc/micropvr/records.db-mjA7DFDE9CCX',
    '/etc/micropvr/records.db-mja7dfde9cc',
    '/etc/micropvr/other.db-mjA7DFDE9CC',
    '/etc/micropvr/records',
    '/etc/micropvr/other.db',
    '/etc/micropvr/other.db-wal',
    '/srv/records.db',
    '/etc/micropvr/records.db/',
    'etc/micropvr/records.db',
])
def test_notbelongs_to_database(path):
    assert belongs_to_database(path, DBS) is False


def test_nothing_excluded_without_databases():
    assert belongs_to_database('/etc/micropvr/records.db', []) is False


# --- _walk_files -------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    top = tmp_path / 'conf'
    (top / 'b' / 'deep').mkdir(parents=True)
    (top / 'a').mkdir()
    (top / 'empty').mkdir()
    for rel in ('z.conf', 'c.conf', 'b/y', 'b/x', 'b/deep/file', 'a/1'):
        (top / rel).write_text(rel)
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_text('not part of the tree')
    return top, outside


def test_walk_files_sorted_and_recursive(tree):
    top, outside = tree
    files = list(_walk_files(str(top)))
    rel = [os.path.relpath(f, str(top)) for f in files]
    assert rel == ['c.conf', 'z.conf', 'a/1', 'b/x', 'b/y', 'b/deep/file']
    assert all(os.path.isabs(f) for f in files)


def test_walk_files_of_a_file_is_the_file(tree):
    top, outside = tree
    assert list(_walk_files(str(top / 'c.conf'))) == [str(top / 'c.conf')]


def test_walk_files_of_a_missing_path_is_the_path(tmp_path):
    assert list(_walk_files(str(tmp_path / 'nope'))) == [str(tmp_path / 'nope')]


def test_walk_files_does_not_follow_a_symlinked_dir(tree):
    top, outside = tree
    os.symlink(str(outside), str(top / 'link'))
    files = list(_walk_files(str(top)))
    assert not any(f.startswith(str(top / 'link') + os.sep) for f in files)
    assert str(outside / 'secret') not in files
    assert not any('secret' in f for f in files)


def test_walk_files_of_a_symlinked_dir_is_the_link_itself(tree):
    top, outside = tree
    os.symlink(str(outside), str(top / 'link'))
    assert list(_walk_files(str(top / 'link'))) == [str(top / 'link')]


def test_walk_files_lists_symlinks_to_files_and_dangling_symlinks(tree):
    top, outside = tree
    os.symlink(str(outside / 'secret'), str(top / 'filelink'))
    os.symlink(str(top / 'gone'), str(top / 'dangling'))
    files = list(_walk_files(str(top)))
    assert str(top / 'filelink') in files
    assert str(top / 'dangling') in files


def test_walk_files_lists_a_symlink_to_a_directory_inside_the_tree(tree):
    top, outside = tree
    os.symlink(str(outside), str(top / 'link'))
    assert str(top / 'link') in list(_walk_files(str(top)))


# --- _tar_entries ------------------------------------------------------------------------------

def add_member(archive, name, kind, data=b'', mode=0o644, uid=0, gid=0, mtime=1764195300, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, mtime
    info.linkname = linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    else:
        archive.addfile(info)


def test_tar_entries(tmp_path):
    path = str(tmp_path / 'config.tar')
    big = os.urandom(3 * 1024 * 1024 + 5)  # more than one 1 MiB chunk
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as archive:
        add_member(archive, 'etc/micropvr', tarfile.DIRTYPE, mode=0o755)
        add_member(archive, 'etc/micropvr/micropvr.conf', tarfile.REGTYPE, b'{"a": 1}\n', mode=0o640,
                   uid=1001, gid=1002, mtime=1764195300.75)
        add_member(archive, 'etc/micropvr/big.bin', tarfile.REGTYPE, big, mode=0o600)
        add_member(archive, 'etc/micropvr/empty', tarfile.REGTYPE, b'', mode=0o4755)
        add_member(archive, 'etc/micropvr/current', tarfile.SYMTYPE, linkname='micropvr.conf', mode=0o777)
        add_member(archive, 'etc/micropvr/hard', tarfile.LNKTYPE, linkname='etc/micropvr/micropvr.conf')
        add_member(archive, 'etc/micropvr/fifo', tarfile.FIFOTYPE)
    entries = _tar_entries(path)
    assert entries == [
        dict(path='/etc/micropvr', mode='0755', uid=0, gid=0, mtime=1764195300, type='directory'),
        dict(path='/etc/micropvr/micropvr.conf', mode='0640', uid=1001, gid=1002, mtime=1764195300, type='file',
             size=9, sha256=hashlib.sha256(b'{"a": 1}\n').hexdigest()),
        dict(path='/etc/micropvr/big.bin', mode='0600', uid=0, gid=0, mtime=1764195300, type='file',
             size=len(big), sha256=hashlib.sha256(big).hexdigest()),
        dict(path='/etc/micropvr/empty', mode='4755', uid=0, gid=0, mtime=1764195300, type='file', size=0,
             sha256=hashlib.sha256(b'').hexdigest()),
        dict(path='/etc/micropvr/current', mode='0777', uid=0, gid=0, mtime=1764195300, type='symlink',
             target='micropvr.conf'),
        dict(path='/etc/micropvr/hard', mode='0644', uid=0, gid=0, mtime=1764195300, type='hardlink',
             target='/etc/micropvr/micropvr.conf'),
        dict(path='/etc/micropvr/fifo', mode='0644', uid=0, gid=0, mtime=1764195300, type='other'),
    ]


def test_tar_entries_of_an_empty_archive(tmp_path):
    path = str(tmp_path / 'config.tar')
    with tarfile.open(path, 'w'):
        pass
    assert _tar_entries(path) == []


def test_write_config_archive_leaves_out_sqlite_files(tmp_path):
    conf = tmp_path / 'etc' / 'micropvr'
    (conf / 'sub').mkdir(parents=True)
    (conf / 'micropvr.conf').write_text('{}\n')
    (conf / 'sub' / 'keep.txt').write_text('keep')
    os.chmod(str(conf / 'micropvr.conf'), 0o640)
    for name in ('records.db', 'records.db-journal', 'records.db-wal', 'records.db-shm', 'tasks.db'):
        (conf / name).write_bytes(b'sqlite stuff')
    (conf / 'records.db.bak').write_bytes(b'an old copy, kept')
    os.symlink('micropvr.conf', str(conf / 'current.conf'))
    init = tmp_path / 'init.d'
    init.mkdir()
    (init / 'micropvr').write_text('#!/bin/sh\n')
    os.chmod(str(init / 'micropvr'), 0o755)
    work = tmp_path / 'work'
    work.mkdir()
    plan = dict(config_paths=[str(conf), str(init / 'micropvr')],
                sqlite_databases=[str(conf / 'records.db'), str(conf / 'tasks.db')])
    assert _write_config_archive(str(work), plan) == 'config.tar'
    archive_path = str(work / 'config.tar')
    assert stat.S_IMODE(os.stat(archive_path).st_mode) == 0o600
    entries = dict((e['path'], e) for e in _tar_entries(archive_path))
    assert sorted(entries) == sorted([
        str(conf), str(conf / 'micropvr.conf'), str(conf / 'sub'), str(conf / 'sub' / 'keep.txt'),
        str(conf / 'records.db.bak'), str(conf / 'current.conf'), str(init / 'micropvr')])
    assert entries[str(conf / 'micropvr.conf')]['mode'] == '0640'
    assert entries[str(conf / 'micropvr.conf')]['sha256'] == hashlib.sha256(b'{}\n').hexdigest()
    assert entries[str(init / 'micropvr')]['mode'] == '0755'
    assert entries[str(conf / 'current.conf')] == dict(
        path=str(conf / 'current.conf'), mode='0777', uid=os.getuid(), gid=os.getgid(),
        mtime=int(os.lstat(str(conf / 'current.conf')).st_mtime), type='symlink', target='micropvr.conf')
    assert entries[str(conf / 'sub' / 'keep.txt')]['uid'] == os.getuid()
    # the archive is never overwritten
    with pytest.raises(OSError):
        _write_config_archive(str(work), plan)


def test_write_config_archive_survives_a_journal_that_vanishes_while_the_tree_is_listed(tmp_path, monkeypatch):
    """MicroPVR creates and deletes records.db-journal while it writes: a journal listed by
    listdir may be gone before it is stat'ed. It is never stat'ed (tarfile's recursive add
    failed with ENOENT here)."""
    conf = tmp_path / 'etc' / 'micropvr'
    conf.mkdir(parents=True)
    (conf / 'micropvr.conf').write_text('{}\n')
    (conf / 'records.db').write_bytes(b'sqlite stuff')
    real_listdir = os.listdir

    def listdir_with_a_vanished_journal(path):
        names = real_listdir(path)
        return names + ['records.db-journal'] if str(path) == str(conf) else names

    monkeypatch.setattr(os, 'listdir', listdir_with_a_vanished_journal)
    work = tmp_path / 'work'
    work.mkdir()
    plan = dict(config_paths=[str(conf)], sqlite_databases=[str(conf / 'records.db')])
    assert _write_config_archive(str(work), plan) == 'config.tar'
    archived = sorted(e['path'] for e in _tar_entries(str(work / 'config.tar')))
    assert archived == [str(conf), str(conf / 'micropvr.conf')]


def test_write_config_archive_leaves_out_a_super_journal_and_entries_that_vanish(tmp_path, monkeypatch):
    """A commit over attached databases creates <db>-mjXXXXXXXXX for a moment (the backup
    scenario failed with ENOENT on one); a temporary file renamed into place vanishes the same
    way. Neither is archived, and neither fails the backup."""
    conf = tmp_path / 'etc' / 'micropvr'
    (conf / 'sub').mkdir(parents=True)
    (conf / 'micropvr.conf').write_text('{}\n')
    (conf / 'tasks.db').write_bytes(b'sqlite stuff')
    (conf / 'tasks.db-mjA7DFDE9CC').write_bytes(b'a super-journal still there')
    real_listdir = os.listdir

    def listdir_with_ghosts(path):
        names = real_listdir(path)
        if str(path) == str(conf):
            return names + ['micropvr.conf.tmp', 'gone-dir', 'records.db-mj0123459AB']
        return names

    monkeypatch.setattr(os, 'listdir', listdir_with_ghosts)
    work = tmp_path / 'work'
    work.mkdir()
    plan = dict(config_paths=[str(conf)], sqlite_databases=[str(conf / 'tasks.db'), str(conf / 'records.db')])
    assert _write_config_archive(str(work), plan) == 'config.tar'
    archived = sorted(e['path'] for e in _tar_entries(str(work / 'config.tar')))
    assert archived == [str(conf), str(conf / 'micropvr.conf'), str(conf / 'sub')]


def test_write_config_archive_fails_when_a_configured_path_is_gone(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    plan = dict(config_paths=[str(tmp_path / 'etc' / 'micropvr')], sqlite_databases=[])
    with pytest.raises(FileNotFoundError):
        _write_config_archive(str(work), plan)


# --- argument spec -----------------------------------------------------------------------------

def test_argument_spec_hides_login_password():
    spec = argument_spec()
    databases = spec['databases']
    assert databases['type'] == 'list' and databases['elements'] == 'dict'
    assert databases['options']['login_password']['no_log'] is True
    assert not any(o.get('no_log') for k, o in databases['options'].items() if k != 'login_password')


def test_argument_spec_hides_the_seal_keys():
    spec = argument_spec()
    assert spec['seal_key'] == dict(type='str', no_log=True)
    assert spec['trusted_seal_keys'] == dict(type='list', elements='str', default=[], no_log=True)
    result = ArgumentSpecValidator(spec).validate(dict(seal_key=TEST_KEY_HEX, trusted_seal_keys=['ab' * 32]))
    assert result.errors.errors == []
    assert TEST_KEY_HEX in result._no_log_values and 'ab' * 32 in result._no_log_values


def test_argument_spec_validates_and_collects_the_password_as_no_log():
    result = ArgumentSpecValidator(argument_spec()).validate(dict(
        databases=[dict(engine='postgresql', name='mw', login_password='s3cret-value')], keep=3))
    assert result.errors.errors == []
    assert 's3cret-value' in result._no_log_values
    params = result.validated_parameters
    assert params['keep'] == 3
    assert params['keep_pinned'] == 2
    assert params['seal_key'] is None
    assert params['trusted_seal_keys'] == []
    assert params['pin'] is False
    assert params['reason'] == 'manual'
    assert params['space_margin_mb'] == 64
    assert params['lock_timeout'] == 600
    assert params['config_paths'] == ['/etc/micropvr', '/usr/local/nginx-micropvr/conf']
    assert params['backup_root'] == '/var/backups/micropvr'
    assert params['databases'][0]['login_password_file'] is None


def test_argument_spec_refuses_an_unknown_engine():
    result = ArgumentSpecValidator(argument_spec()).validate(dict(databases=[dict(engine='oracle', name='x')]))
    assert result.errors.errors


def test_argument_spec_defaults_are_fresh_lists():
    first, second = argument_spec(), argument_spec()
    first['config_paths']['default'].append('/tmp/x')
    assert '/tmp/x' not in second['config_paths']['default']


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(micropvr_backup.DOCUMENTATION)['options']
    fragments = yaml.safe_load(micropvr_backup.DOCUMENTATION)['extends_documentation_fragment']
    assert 'microimpuls.micropvr.databases' in fragments and 'microimpuls.micropvr.seal' in fragments
    assert 'microimpuls.micropvr.backup_root' in fragments
    doc.update(yaml.safe_load(backup_root_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    doc.update(yaml.safe_load(databases_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    doc.update(yaml.safe_load(seal_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    doc.update(yaml.safe_load(state_dir_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    spec = argument_spec()
    assert sorted(doc) == sorted(spec)
    for name, option in spec.items():
        assert doc[name].get('type') == option.get('type'), name
        assert doc[name].get('default') == option.get('default'), name
        assert doc[name].get('elements') == option.get('elements'), name
    sub_doc, sub_spec = doc['databases']['suboptions'], spec['databases']['options']
    assert sorted(sub_doc) == sorted(sub_spec)
    for name, option in sub_spec.items():
        assert sub_doc[name].get('type') == option.get('type'), name
        assert bool(sub_doc[name].get('required')) == bool(option.get('required')), name
        assert sub_doc[name].get('choices') == option.get('choices'), name


# --- small helpers -----------------------------------------------------------------------------

def test_restrict(tmp_path):
    top = tmp_path / 'set'
    (top / 'a' / 'b').mkdir(parents=True)
    (top / 'f').write_text('x')
    (top / 'a' / 'b' / 'g').write_text('y')
    os.chmod(str(top / 'f'), 0o644)
    os.chmod(str(top / 'a'), 0o755)
    _restrict(str(top))
    assert stat.S_IMODE(os.stat(str(top)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(top / 'a')).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(top / 'a' / 'b')).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(top / 'f')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(top / 'a' / 'b' / 'g')).st_mode) == 0o600


def test_restrict_leaves_a_private_file_untouched(tmp_path):
    """Even a chmod to the same mode changes ctime, which the set's verification compares
    before it trusts a digest taken by the backup (backupset.verify_files' hashed)."""
    top = tmp_path / 'set'
    top.mkdir(mode=0o700)
    (top / 'f').write_text('x')
    os.chmod(str(top / 'f'), 0o600)
    before = backupset.file_identity(str(top / 'f'))
    _restrict(str(top))
    assert backupset.file_identity(str(top / 'f')) == before


class FailJson(BaseException):
    """Like AnsibleModule.fail_json's SystemExit: not caught by ``except Exception``."""

    def __init__(self, kwargs):
        super(FailJson, self).__init__(kwargs.get('msg'))
        self.kwargs = kwargs


class FakeModule(object):
    def __init__(self, params=None):
        self.params = params or {}
        self.calls = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        if required:
            self.fail_json(msg='Failed to find required executable "%s" in paths' % name)
        return None

    def run_command(self, args, **kwargs):
        self.calls.append(list(args))
        return 127, '', 'not available in unit tests'

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)


def test_root_lock_excludes_a_second_run(tmp_path):
    root = str(tmp_path)
    with RootLock(FakeModule(), root, 0):
        with open(os.path.join(root, '.lock')) as handle:
            assert handle.read() == '%d\n' % os.getpid()
        assert stat.S_IMODE(os.stat(os.path.join(root, '.lock')).st_mode) == 0o600
        with pytest.raises(FailJson) as excinfo:
            with RootLock(FakeModule(), root, 0):
                pass
        assert excinfo.value.kwargs['msg'] == 'another backup is running on %s (pid %d); waited 0 s' % (
            root, os.getpid())
    # released: the next run gets it
    with RootLock(FakeModule(), root, 0):
        pass


# --- run_backup on a real tree (no packages, no external databases, no services) ----------------

def make_micropvr_tree(tmp_path):
    conf = tmp_path / 'etc' / 'micropvr'
    conf.mkdir(parents=True)
    (conf / 'micropvr.conf').write_text('{"records-db-path": "%s"}\n' % (conf / 'records.db'))
    for name, table in (('records.db', 'records'), ('tasks.db', 'tasks')):
        conn = sqlite3.connect(str(conf / name))
        conn.execute('CREATE TABLE %s (id INTEGER PRIMARY KEY, v TEXT)' % table)
        conn.executemany('INSERT INTO %s (v) VALUES (?)' % table, [('x%d' % i,) for i in range(30)])
        conn.commit()
        conn.close()
    return conf


def make_plan(conf):
    dbs = [str(conf / 'records.db'), str(conf / 'tasks.db')]
    return dict(config_paths=[str(conf)], sqlite_databases=dbs, sqlite_names=['records.db', 'tasks.db'],
                packages={}, databases=[], estimated_bytes=1, required_bytes=1, free_bytes=1)


def backup_params(root, **extra):
    params = dict(backup_root=root, lock_timeout=0, keep=None, keep_pinned=2, reason='unit test', pin=False,
                  databases=[], services=[], sqlite_check='quick', lock_owner=None)
    params.update(extra)
    return params


@pytest.fixture
def fixed_host(monkeypatch):
    monkeypatch.setattr(takeset.socket, 'getfqdn', lambda *args: 'pvr1.example.net')


def test_run_backup_writes_a_verified_set(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    leftover = os.path.join(root, backupset.INCOMPLETE_PREFIX + '20200101T000000Z')
    os.makedirs(leftover)
    result = takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    backup_id = result['backup_id']
    assert backupset.validate_backup_id(backup_id) == backup_id
    assert result['changed'] is True
    assert result['backup_path'] == os.path.join(root, backup_id)
    assert result['removed'] == []
    assert result['removed_incomplete'] == [os.path.basename(leftover)]
    assert not os.path.exists(leftover)
    assert backupset.list_set_dirs(root) == ([backup_id], [])
    directory = result['backup_path']
    manifest = backupset.load_manifest(directory)
    assert public_manifest(manifest) == result['manifest']
    assert KEYS.problem(manifest) is None
    assert OTHER_KEYS.problem(manifest) is not None
    assert manifest['verified_at'] is not None
    assert manifest['reason'] == 'unit test' and manifest['host'] == 'pvr1.example.net'
    assert sorted(f['path'] for f in manifest['files']) == ['config.tar', 'sqlite/records.db', 'sqlite/tasks.db']
    assert backupset.verify_files(directory, manifest, KEYS) == []
    assert [e['path'] for e in manifest['config']['entries']] == [str(conf), str(conf / 'micropvr.conf')]
    # The copies are not digested at backup time (a restore digests them when it must compare),
    # but they hold exactly what the live databases hold.
    assert [sorted(s) for s in manifest['sqlite']] == [['file', 'gid', 'journal_mode', 'mode', 'source', 'uid',
                                                        'user_version']] * 2
    assert [sqlite_tables(os.path.join(directory, s['file'])) for s in manifest['sqlite']] == [
        sqlite_tables(conf / 'records.db'), sqlite_tables(conf / 'tasks.db')]
    assert backupset.summarize(directory, backup_id, KEYS)['status'] == backupset.STATUS_VERIFIED
    assert result['size'] == backupset.set_size(directory)
    for dirpath, _dirnames, filenames in os.walk(directory):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
        for name in filenames:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600


def test_run_backup_reports_how_long_each_part_took(tmp_path, fixed_host, monkeypatch):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    real_verify = backupset.verify_set

    def slow_verify(*args, **kwargs):
        time.sleep(0.3)
        return real_verify(*args, **kwargs)
    monkeypatch.setattr(backupset, 'verify_set', slow_verify)
    result = takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    steps = result['step_seconds']
    # in the order they ran; the SQLite copies' lock and check are timed apart from their copy
    assert list(steps) == ['lock the backup root', 'archive the configuration', 'lock the SQLite databases',
                           'copy the SQLite databases',
                           'check and hash the SQLite copies', 'save the packages', 'write the manifest',
                           'verify the set', 'flush the set to disk', 'remove old sets']
    assert steps['verify the set'] >= 0.3
    assert all(seconds < 0.3 for part, seconds in steps.items() if part != 'verify the set'), steps


def test_run_backup_reads_each_sqlite_copy_once_for_its_checksum(tmp_path, fixed_host, monkeypatch):
    """A copy is hashed once, after it is finished (while it is checked); the set's verification
    trusts that digest while the file keeps its identity, and reads every other file."""
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    reads = count_calls(monkeypatch, backupset, 'sha256_file')
    result = takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    work = backupset.INCOMPLETE_PREFIX + result['backup_id']
    assert sorted(os.path.relpath(path, root) for path in reads) == sorted([
        os.path.join(work, 'config.tar'), os.path.join(work, 'config.tar'),
        os.path.join(work, 'sqlite', 'records.db'), os.path.join(work, 'sqlite', 'tasks.db')])
    directory = result['backup_path']
    manifest = backupset.load_manifest(directory)
    assert backupset.verify_files(directory, manifest, KEYS) == []
    for entry in manifest['sqlite']:
        assert stat.S_IMODE(os.stat(os.path.join(directory, entry['file'])).st_mode) == 0o600


def test_run_backup_still_catches_a_copy_changed_after_it_was_hashed(tmp_path, fixed_host, monkeypatch):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    real = backupset.hash_with_identity

    def hash_then_damage(path):
        digest, identity = real(path)
        if path.endswith('records.db'):
            # Past the kernel's coarse timestamp tick, so that the write shows in mtime/ctime.
            time.sleep(0.05)
            # The file's last byte is the text of the first row ('x0'): a changed value that
            # quick_check cannot see, only the checksum.
            with open(path, 'r+b') as handle:
                handle.seek(-1, os.SEEK_END)
                byte = handle.read(1)
                handle.seek(-1, os.SEEK_END)
                handle.write(bytes([byte[0] ^ 0x01]))
        return digest, identity

    monkeypatch.setattr(backupset, 'hash_with_identity', hash_then_damage)
    module = FakeModule(backup_params(root))
    with pytest.raises(FailJson) as failed:
        takeset.run_backup(module, make_plan(conf), {}, KEYS)
    assert 'the new backup set did not verify' in failed.value.kwargs['msg']
    assert 'sqlite/records.db: sha256 does not match the manifest' in failed.value.kwargs['msg']
    assert backupset.list_set_dirs(root) == ([], [])


@pytest.mark.parametrize('level', ['quick', 'full'])
def test_run_backup_checks_at_sqlite_check_and_records_it(tmp_path, fixed_host, monkeypatch, level):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import sqlite_snapshot
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    asked = []
    real = sqlite_snapshot.integrity_check
    monkeypatch.setattr(sqlite_snapshot, 'integrity_check',
                        lambda path, lvl='full': asked.append((os.path.basename(path), lvl)) or real(path, lvl))
    result = takeset.run_backup(FakeModule(backup_params(root, sqlite_check=level)), make_plan(conf), {}, KEYS)
    manifest = backupset.load_manifest(result['backup_path'])
    assert manifest['sqlite_check'] == level == result['manifest']['sqlite_check']
    assert [s.get('tables') for s in manifest['sqlite']] == [None, None]
    assert sorted(set(asked)) == [('records.db', level), ('tasks.db', level)]


def test_argument_spec_sqlite_check_defaults_to_quick():
    spec = micropvr_backup.argument_spec()['sqlite_check']
    assert spec == dict(type='str', default='quick', choices=['quick', 'full'])


def sqlite_tables(path):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import describe
    return describe(str(path))['tables']


def test_run_backup_retention_after_a_new_set(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    first = takeset.run_backup(FakeModule(backup_params(root, pin=True)), make_plan(conf), {}, KEYS)
    second = takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    third = takeset.run_backup(FakeModule(backup_params(root, keep=1)), make_plan(conf), {}, KEYS)
    assert len({first['backup_id'], second['backup_id'], third['backup_id']}) == 3
    assert third['removed'] == [second['backup_id']]  # the first one is pinned
    assert backupset.list_set_dirs(root)[0] == sorted([first['backup_id'], third['backup_id']])


def test_run_backup_failure_leaves_nothing_behind(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    plan = make_plan(conf)
    os.unlink(str(conf / 'tasks.db'))  # vanished between plan and run
    with pytest.raises(FailJson) as excinfo:
        takeset.run_backup(FakeModule(backup_params(root)), plan, {}, KEYS)
    assert excinfo.value.kwargs['msg'] == (
        'backup failed, the partial set was removed: ValueError: SQLite database %s does not exist'
        % (conf / 'tasks.db'))
    assert excinfo.value.kwargs['plan'] is plan
    assert sorted(os.listdir(root)) == ['.lock']


def test_new_backup_ids_are_utc(fixed_host, tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    conf = make_micropvr_tree(tmp_path)
    result = takeset.run_backup(FakeModule(backup_params(str(tmp_path / 'b'))), make_plan(conf), {}, KEYS)
    taken = datetime.datetime.strptime(result['backup_id'][:16], '%Y%m%dT%H%M%SZ').replace(
        tzinfo=datetime.timezone.utc)
    assert before <= taken <= datetime.datetime.now(datetime.timezone.utc)
    assert result['manifest']['created_at'] == taken.strftime('%Y-%m-%dT%H:%M:%SZ')


# --- refusals before anything is written --------------------------------------------------------

class InstalledPackages(FakeModule):
    """dpkg-query answers that micropvr is installed; everything else as FakeModule."""

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return '/usr/bin/' + name

    def run_command(self, args, **kwargs):
        if os.path.basename(args[0]) == 'dpkg-query':
            return 0, 'micropvr\t1.9.0-1\tamd64\t10\tinstall ok installed\n', ''
        return super(InstalledPackages, self).run_command(args, **kwargs)


def plan_params(tmp_path, conf, **extra):
    params = dict(keep=None, keep_pinned=2, space_margin_mb=0, packages=['micropvr'], config_paths=[str(conf.parent)],
                  services=[], config_file=str(conf), sqlite_databases=[], databases=[], tools=[],
                  backup_root=str(tmp_path / 'backups'))
    params.update(extra)
    return params


def test_an_invalid_config_refuses_the_backup_naming_file_and_line(tmp_path):
    conf = make_micropvr_tree(tmp_path) / 'micropvr.conf'
    # The vendor's own sample: a missing comma.
    conf.write_text('{\n  "records-db-path": "/srv/pvr/records.db"\n  "log-path": "/var/log/micropvr"\n}\n')
    with pytest.raises(FailJson) as excinfo:
        takeset.plan_backup(InstalledPackages(plan_params(tmp_path, conf)))
    msg = excinfo.value.kwargs['msg']
    assert msg.startswith('config_file: %s:3: Expecting \',\' delimiter (is a comma missing at the end of line 2?).'
                          % conf)
    assert 'micropvr_sqlite_databases' in msg and 'no backup was taken' in msg
    assert not os.path.exists(str(tmp_path / 'backups'))


def test_an_invalid_config_with_named_databases_is_backed_up(tmp_path):
    tree = make_micropvr_tree(tmp_path)
    conf = tree / 'micropvr.conf'
    conf.write_text('{\n  "a": 1\n  "b": 2\n}\n')
    plan, packages = takeset.plan_backup(InstalledPackages(plan_params(
        tmp_path, conf, sqlite_databases=[str(tree / 'records.db')])))
    assert plan['sqlite_databases'] == [str(tree / 'records.db')]


def test_backup_refuses_while_another_run_holds_the_host_lock(tmp_path):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
    state_dir = str(tmp_path / 'state')
    state.create_lock(state_dir, dict(owner='run-1', purpose='update to 1.10.0-1', acquired_at='2026-11-30T01:00:00Z'))
    module = FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=1))
    started = datetime.datetime.now()
    with pytest.raises(FailJson) as excinfo:
        takeset.wait_for_host_lock(module, poll=0.2)
    assert (datetime.datetime.now() - started).total_seconds() >= 1
    assert excinfo.value.kwargs['msg'].startswith(
        'refusing to back up: the host is locked by run run-1 (update to 1.10.0-1, since 2026-11-30T01:00:00Z) '
        'and it did not finish within 1 s (lock_timeout)')
    # the run that holds the lock backs up as one of its steps
    takeset.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner='run-1', lock_timeout=0)))
    # an unfinished step: refused at once, with the way out
    state.write_lock(state_dir, dict(state.read_lock(state_dir), step=dict(name='restore', backup_id='20261129T000000Z')))
    with pytest.raises(FailJson) as excinfo:
        takeset.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=600)))
    assert 'left its restore step unfinished' in excinfo.value.kwargs['msg']
    assert 'backup set 20261129T000000Z' in excinfo.value.kwargs['msg']
    state.remove_lock(state_dir)
    takeset.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=0)))


# --- the module end to end (main) on a host without packages or services -------------------------

@pytest.fixture
def run(capsys):
    """run(**args) -> (exit code, result) of micropvr_backup.main(); the umask it sets is undone."""
    def call(**args):
        umask = os.umask(0o022)
        try:
            return run_main(micropvr_backup.main, capsys, **args)
        finally:
            os.umask(umask)
    return call


def main_args(tmp_path, conf, **extra):
    args = dict(packages=[], services=[], config_paths=[str(conf)], config_file=str(conf / 'micropvr.conf'),
                sqlite_databases=[str(conf / 'records.db'), str(conf / 'tasks.db')],
                backup_root=str(tmp_path / 'backups'), state_dir=str(tmp_path / 'state'), lock_timeout=0,
                reason='unit test')
    args.update(extra)
    return args


def test_main_first_backup_creates_the_state_dir_and_the_seal_key(tmp_path, run, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf))
    assert rc == 0, result
    state_dir = str(tmp_path / 'state')
    key_file = os.path.join(state_dir, backupset.SEAL_KEY_FILE)
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(key_file).st_mode) == 0o600
    keys = backupset.seal_keys(state_dir)
    directory = result['backup_path']
    assert backupset.summarize(directory, result['backup_id'], keys)['status'] == backupset.STATUS_VERIFIED
    with open(key_file) as handle:
        key_text = handle.read()
    # The second backup seals with the same key.
    rc, second = run(**main_args(tmp_path, conf))
    assert rc == 0, second
    with open(key_file) as handle:
        assert handle.read() == key_text
    assert (backupset.load_manifest(second['backup_path'])['seal']['key_id']
            == backupset.load_manifest(directory)['seal']['key_id'] == backupset.key_id(keys.own))


def test_main_with_a_seal_key_creates_no_key_file_and_does_not_show_the_key(tmp_path, run, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf, seal_key=TEST_KEY_HEX))
    assert rc == 0, result
    assert not os.path.exists(str(tmp_path / 'state' / backupset.SEAL_KEY_FILE))
    assert KEYS.problem(backupset.load_manifest(result['backup_path'])) is None
    assert TEST_KEY_HEX not in json.dumps(result)


def test_main_with_a_bad_seal_key_fails_without_showing_it(tmp_path, run):
    conf = make_micropvr_tree(tmp_path)
    secret = 'not-a-key-but-a-passphrase-0123456789'
    rc, result = run(**main_args(tmp_path, conf, seal_key=secret))
    assert rc == 1
    assert result['msg'].startswith('seal_key: a seal key must be 64 hex digits')
    assert secret not in json.dumps(result)
    assert backupset.list_set_dirs(str(tmp_path / 'backups')) == ([], [])


def test_the_returned_manifest_has_no_checksum_of_every_config_file(tmp_path, run, fixed_host):
    """AWX keeps module results in its job events: the per-file sha256 list stays in manifest.json."""
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf, seal_key=TEST_KEY_HEX))
    assert rc == 0, result
    on_disk = backupset.load_manifest(result['backup_path'])
    entries = on_disk['config']['entries']
    assert len(entries) == 2
    assert 'entries' not in result['manifest']['config']
    assert result['manifest']['config'] == dict(archive='config.tar', paths=[str(conf)], entry_count=2)
    conf_sha256 = hashlib.sha256((conf / 'micropvr.conf').read_bytes()).hexdigest()
    assert [e.get('sha256') for e in entries] == [None, conf_sha256]
    assert conf_sha256 not in json.dumps(result)
    # Everything else is as in manifest.json, including the seal over the full manifest.
    assert dict(result['manifest'], config=on_disk['config']) == on_disk


# --- tools: checked by the module before it writes anything ------------------------------------

@pytest.fixture
def dpkg(monkeypatch):
    """dpkg-query lists these packages as installed (a dict you may change); every query is
    recorded; other commands run for real."""
    from ansible.module_utils import basic
    installed = dict(micropvr='1.9.0-1')
    queries = []
    real_run_command = basic.AnsibleModule.run_command

    def run_command(self, args, **kwargs):
        if os.path.basename(args[0]) == 'dpkg-query':
            names = args[args.index('--') + 1:]
            queries.append(names)
            listed = [name for name in names if name in installed]
            return (1 if len(listed) < len(names) else 0), ''.join(
                '%s\t%s\tamd64\t10\tinstall ok installed\n' % (name, installed[name]) for name in listed), ''
        return real_run_command(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    return dict(installed=installed, queries=queries)


def test_a_missing_tool_takes_no_backup_and_writes_nothing(tmp_path, run, fixed_host, dpkg):
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf, tools=['dpkg-repack', 'postgresql-client', 'micropvr']))
    assert rc == 0, result
    assert result['changed'] is False
    assert result['missing_tools'] == ['dpkg-repack', 'postgresql-client']
    assert 'backup_id' not in result
    # Nothing on the host: no backup root, no state dir (the seal key is created by a backup).
    assert not os.path.exists(str(tmp_path / 'backups'))
    assert not os.path.exists(str(tmp_path / 'state'))
    # The tools come with the packages' own query (a name in both is asked once).
    assert dpkg['queries'] == [['dpkg-repack', 'postgresql-client', 'micropvr']]


def test_with_the_tools_installed_the_backup_is_taken(tmp_path, run, fixed_host, dpkg):
    conf = make_micropvr_tree(tmp_path)
    dpkg['installed'].update({'dpkg-repack': '1.52', 'postgresql-client': '15+248'})
    rc, result = run(**main_args(tmp_path, conf, tools=['dpkg-repack', 'postgresql-client']))
    assert rc == 0, result
    assert result['changed'] is True
    assert result['missing_tools'] == [] and result['plan']['missing_tools'] == []
    assert os.path.isdir(result['backup_path'])


@pytest.mark.parametrize('tool', ['dpkg-repack=1.52', 'default-mysql-client'])
def test_a_name_only_apt_resolves_counts_as_missing_and_without_tools_the_backup_runs(tmp_path, run, fixed_host,
                                                                                         dpkg, tool):
    """name=version or a virtual package: dpkg-query never lists it, so the module reports it
    every time; the role runs the module a second time without tools, which backs up."""
    conf = make_micropvr_tree(tmp_path)
    dpkg['installed'].update({'dpkg-repack': '1.52', 'mariadb-client': '1:10.11.6-0+deb12u1'})
    rc, result = run(**main_args(tmp_path, conf, tools=[tool]))
    assert (rc, result['changed'], result['missing_tools']) == (0, False, [tool])
    rc, result = run(**main_args(tmp_path, conf, tools=[]))
    assert (rc, result['changed'], result['missing_tools']) == (0, True, [])
    # The second run asked dpkg nothing (no packages here, no tools).
    assert dpkg['queries'] == [[tool]]


def test_check_mode_plans_and_names_the_missing_tools(tmp_path, run, fixed_host, dpkg):
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(_ansible_check_mode=True, **main_args(tmp_path, conf, tools=['dpkg-repack']))
    assert rc == 0, result
    assert result['changed'] is True
    assert result['missing_tools'] == result['plan']['missing_tools'] == ['dpkg-repack']
    assert result['plan']['sqlite_names'] == ['records.db', 'tasks.db']
    assert not os.path.exists(str(tmp_path / 'backups'))


def test_a_missing_package_fails_before_the_tools_are_reported(tmp_path, run, dpkg):
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf, packages=['micropvr', 'micropvs'], tools=['dpkg-repack']))
    assert rc == 1
    assert result['msg'] == 'packages: not installed: micropvs (not-installed)'


def test_public_manifest_does_not_change_the_manifest():
    manifest = dict(backup_id='x', config=dict(archive='config.tar', paths=['/etc/micropvr'],
                                               entries=[dict(path='/etc/micropvr')]))
    public = public_manifest(manifest)
    assert public['config'] == dict(archive='config.tar', paths=['/etc/micropvr'], entry_count=1)
    assert manifest['config']['entries'] == [dict(path='/etc/micropvr')]


# --- safe roots: refused before anything is written, also in check mode --------------------------

def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode) if os.path.lexists(path) else None


def _unsafe_root(tmp_path, kind):
    """A backup root of the given kind (made under tmp_path when it is a directory of the test)."""
    if kind in ('/tmp', '/', ''):
        return kind
    if kind == 'relative':
        return 'var/backups/micropvr'
    if kind == 'tmp-dotdot':
        return '/tmp/../tmp'
    if kind in ('other-owner', 'below-other-owner') and os.geteuid() != 0:
        pytest.skip('needs root to give a directory away')
    path = tmp_path / kind
    if kind == 'group-writable':
        path.mkdir()
        os.chmod(str(path), 0o775)
    elif kind == 'world-writable':
        path.mkdir()
        os.chmod(str(path), 0o1777)
    elif kind == 'other-owner':
        path.mkdir(mode=0o700)
        os.chown(str(path), 1234, 1234)
    elif kind == 'below-other-owner':
        (tmp_path / 'theirs').mkdir(mode=0o755)
        os.chown(str(tmp_path / 'theirs'), 1234, 1234)
        path = tmp_path / 'theirs' / 'backups'
    elif kind == 'symlink':
        (tmp_path / 'real').mkdir(mode=0o700)
        os.symlink(str(tmp_path / 'real'), str(path))
    elif kind == 'file':
        path.write_text('not a directory')
    return str(path)


UNSAFE_ROOTS = ['/tmp', '/', '', 'relative', 'tmp-dotdot', 'group-writable', 'world-writable', 'other-owner',
                'below-other-owner', 'symlink', 'file']


@pytest.mark.parametrize('check_mode', [False, True], ids=['run', 'check'])
@pytest.mark.parametrize('kind', UNSAFE_ROOTS)
def test_an_unsafe_backup_root_is_refused_and_left_alone(tmp_path, run, kind, check_mode):
    root = _unsafe_root(tmp_path, kind)
    conf = make_micropvr_tree(tmp_path)
    watched = [p for p in (root, '/tmp', os.path.join(str(tmp_path), root)) if p.startswith('/')]
    before = dict((p, _mode(p)) for p in watched)
    # The entries of a directory of the test; /tmp and / change under other processes: only the lock there.
    mine = root.startswith(str(tmp_path)) and os.path.isdir(root)
    entries = sorted(os.listdir(root)) if mine else None
    lock = os.path.lexists(os.path.join(root, backupset.LOCK_FILE)) if root.startswith('/') else None
    # config_paths does not exist: whatever comes after the root check would fail differently.
    rc, result = run(**main_args(tmp_path, conf, backup_root=root, config_paths=[str(tmp_path / 'missing')],
                                 _ansible_check_mode=check_mode))
    assert rc == 1
    assert 'backup_root' in result['msg'], result['msg']
    assert dict((p, _mode(p)) for p in watched) == before
    if entries is not None:
        assert sorted(os.listdir(root)) == entries
    if lock is not None:
        assert os.path.lexists(os.path.join(root, backupset.LOCK_FILE)) == lock
    assert not os.path.exists(str(tmp_path / 'state'))


@pytest.mark.parametrize('kind', UNSAFE_ROOTS)
def test_check_roots_and_run_backup_refuse_an_unsafe_backup_root(tmp_path, kind, fixed_host):
    root = _unsafe_root(tmp_path, kind)
    tmp_mode = _mode('/tmp')
    with pytest.raises(FailJson) as excinfo:
        check_roots(FakeModule(dict(backup_root=root, state_dir=str(tmp_path / 'state'))))
    assert 'backup_root' in excinfo.value.kwargs['msg']
    conf = make_micropvr_tree(tmp_path)
    with pytest.raises(FailJson) as excinfo:
        takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    assert 'backup_root' in excinfo.value.kwargs['msg']
    assert _mode('/tmp') == tmp_mode
    if kind not in ('/tmp', '/'):
        assert not os.path.lexists(os.path.join(root, backupset.LOCK_FILE))
    if kind == 'relative':
        assert not os.path.lexists(root)  # nothing made relative to the working directory


@pytest.mark.parametrize('kind', ['/tmp', '', 'relative', 'group-writable', 'other-owner'])
def test_an_unsafe_state_dir_is_refused(tmp_path, run, kind):
    state_dir = _unsafe_root(tmp_path, kind)
    conf = make_micropvr_tree(tmp_path)
    tmp_mode = _mode('/tmp')
    rc, result = run(**main_args(tmp_path, conf, state_dir=state_dir, config_paths=[str(tmp_path / 'missing')],
                                 _ansible_check_mode=True))
    assert rc == 1
    assert 'state_dir' in result['msg'], result['msg']
    assert _mode('/tmp') == tmp_mode
    assert not os.path.exists(str(tmp_path / 'backups'))


@pytest.mark.parametrize('check_mode', [False, True], ids=['run', 'check'])
def test_an_existing_0755_backup_root_is_used_and_not_chmodded(tmp_path, run, fixed_host, check_mode):
    root = tmp_path / 'backups'
    root.mkdir()
    os.chmod(str(root), 0o755)
    conf = make_micropvr_tree(tmp_path)
    rc, result = run(**main_args(tmp_path, conf, seal_key=TEST_KEY_HEX, _ansible_check_mode=check_mode))
    assert rc == 0, result
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(str(root)).st_mode) == 0o755
    if check_mode:
        assert os.listdir(str(root)) == []
    else:
        assert backupset.list_set_dirs(str(root))[0] == [result['backup_id']]
        # The set itself is private whatever the root's mode.
        assert stat.S_IMODE(os.stat(result['backup_path']).st_mode) == 0o700


def test_a_missing_backup_root_is_created_0700(tmp_path, fixed_host):
    root = tmp_path / 'var' / 'backups' / 'micropvr'
    conf = make_micropvr_tree(tmp_path)
    old_umask = os.umask(0)
    try:
        result = takeset.run_backup(FakeModule(backup_params(str(root))), make_plan(conf), {}, KEYS)
    finally:
        os.umask(old_umask)
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(str(root)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(root.parent)).st_mode) == 0o755


@pytest.mark.parametrize('inside', ['state in root', 'root in state', 'same'])
def test_the_state_dir_and_the_backup_root_must_not_contain_each_other(tmp_path, run, inside):
    conf = make_micropvr_tree(tmp_path)
    root, state_dir = str(tmp_path / 'backups'), str(tmp_path / 'state')
    if inside == 'state in root':
        state_dir = os.path.join(root, 'state')
    elif inside == 'root in state':
        root = os.path.join(state_dir, 'backups')
    else:
        state_dir = root
    with pytest.raises(FailJson) as excinfo:
        check_roots(FakeModule(dict(backup_root=root, state_dir=state_dir)))
    assert 'must not contain each other' in excinfo.value.kwargs['msg']
    for check_mode in (True, False):
        rc, result = run(**main_args(tmp_path, conf, backup_root=root, state_dir=state_dir,
                                     _ansible_check_mode=check_mode))
        assert rc == 1
        assert result['msg'] == excinfo.value.kwargs['msg']
    assert not os.path.exists(root) and not os.path.exists(state_dir)


def test_check_roots_accepts_private_directories(tmp_path):
    (tmp_path / 'backups').mkdir(mode=0o755)
    check_roots(FakeModule(dict(backup_root=str(tmp_path / 'backups'), state_dir=str(tmp_path / 'lib' / 'state'))))
    assert not os.path.exists(str(tmp_path / 'lib'))  # only reads


# --- symbolic links in the configuration ------------------------------------------------------------

@pytest.mark.parametrize('relative', [False, True], ids=['absolute', 'relative'])
def test_a_config_path_that_is_a_symlink_saves_the_tree_behind_it(tmp_path, run, fixed_host, relative):
    conf = make_micropvr_tree(tmp_path)
    target = tmp_path / 'srv' / 'nginx-conf'
    (target / 'sites').mkdir(parents=True)
    (target / 'nginx.conf').write_text('worker_processes 4;\n')
    (target / 'sites' / 'pvr.conf').write_text('server { listen 8080; }\n')
    link = tmp_path / 'usr' / 'local' / 'nginx-micropvr' / 'conf'
    link.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(str(target), str(link.parent)) if relative else str(target), str(link))
    rc, result = run(**main_args(tmp_path, conf, config_paths=[str(conf), str(link)], seal_key=TEST_KEY_HEX))
    assert rc == 0, result
    assert result['plan']['config_paths'] == [str(conf), str(link), str(target)]
    manifest = backupset.load_manifest(result['backup_path'])
    assert manifest['config']['paths'] == [str(conf), str(link), str(target)]
    by_path = dict((e['path'], e) for e in manifest['config']['entries'])
    assert by_path[str(link)]['type'] == 'symlink'
    assert by_path[str(target / 'nginx.conf')]['sha256'] == hashlib.sha256(b'worker_processes 4;\n').hexdigest()
    assert by_path[str(target / 'sites' / 'pvr.conf')]['type'] == 'file'
    with tarfile.open(os.path.join(result['backup_path'], 'config.tar')) as archive:
        assert archive.extractfile(str(target / 'sites' / 'pvr.conf').lstrip('/')).read() == \
            b'server { listen 8080; }\n'
    assert backupset.verify_set(FakeModule(), result['backup_path'], result['backup_id'], KEYS)[1:] == (
        [], backupset.STATUS_VERIFIED)


@pytest.mark.parametrize('points_to', ['directory', 'file', 'escaping relative'])
def test_a_symlink_in_the_config_leading_outside_fails_the_backup(tmp_path, fixed_host, points_to):
    conf = make_micropvr_tree(tmp_path)
    elsewhere = tmp_path / 'elsewhere'
    (elsewhere / 'keys').mkdir(parents=True)
    (elsewhere / 'keys' / 'id_rsa').write_text('secret\n')
    link = conf / 'shared'
    target = {'directory': str(elsewhere / 'keys'), 'file': str(elsewhere / 'keys' / 'id_rsa'),
              'escaping relative': '../../elsewhere/keys'}[points_to]
    os.symlink(target, str(link))
    root = str(tmp_path / 'backups')
    with pytest.raises(FailJson) as excinfo:
        takeset.run_backup(FakeModule(backup_params(root)), make_plan(conf), {}, KEYS)
    msg = excinfo.value.kwargs['msg']
    assert msg.startswith('the new backup set did not verify; it was removed: ')
    assert 'symbolic link %s points to %r' % (link, target) in msg
    assert 'add the directory it points to to micropvr_config_paths' in msg
    assert sorted(os.listdir(root)) == [backupset.LOCK_FILE]


def test_a_hard_link_in_the_config_is_saved_as_a_link_to_the_earlier_file(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    os.link(str(conf / 'micropvr.conf'), str(conf / 'z-hard.conf'))
    result = takeset.run_backup(FakeModule(backup_params(str(tmp_path / 'backups'))), make_plan(conf), {},
                                        KEYS)
    entries = backupset.load_manifest(result['backup_path'])['config']['entries']
    st = os.lstat(str(conf / 'z-hard.conf'))
    assert entries[-1] == dict(path=str(conf / 'z-hard.conf'), mode='%04o' % stat.S_IMODE(st.st_mode), uid=st.st_uid,
                               gid=st.st_gid, mtime=int(st.st_mtime), type='hardlink',
                               target=str(conf / 'micropvr.conf'))
    assert backupset.verify_set(FakeModule(), result['backup_path'], result['backup_id'], KEYS)[1:] == (
        [], backupset.STATUS_VERIFIED)


# --- retention, end to end -------------------------------------------------------------------------

class SteppedClock(object):
    """Stands in for the datetime module in micropvr_backup; ``at`` is the time its now() gives."""

    timezone = datetime.timezone

    def __init__(self):
        clock = self
        self.at = None

        class FixedDateTime(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return clock.at

        self.datetime = FixedDateTime

    def set(self, text):
        self.at = datetime.datetime.strptime(text, '%Y%m%dT%H%M%SZ').replace(tzinfo=datetime.timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    stepped = SteppedClock()
    monkeypatch.setattr(takeset, 'datetime', stepped)
    return stepped


def backup_at(clock, when, root, conf, **params):
    clock.set(when)
    result = takeset.run_backup(FakeModule(backup_params(root, **params)), make_plan(conf), {}, KEYS)
    assert result['backup_id'] == when
    return result


def test_retention_after_the_clock_was_stepped_back_keeps_the_set_just_taken(tmp_path, fixed_host, clock):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    for when in ('20300101T000000Z', '20300102T000000Z', '20300103T000000Z'):
        backup_at(clock, when, root, conf)
    # NTP stepped the clock back by years: the new set has the oldest id.
    result = backup_at(clock, '20261126T221500Z', root, conf, keep=1)
    assert os.path.isdir(result['backup_path'])
    assert result['removed'] == ['20300102T000000Z', '20300101T000000Z']
    # The newest verified set by id stays too: retention never leaves only an unproven set.
    assert backupset.list_set_dirs(root)[0] == ['20261126T221500Z', '20300103T000000Z']
    assert backupset.verify_set(FakeModule(), result['backup_path'], result['backup_id'], KEYS)[2] == \
        backupset.STATUS_VERIFIED


def test_retention_keeps_only_the_newest_keep_pinned_pinned_sets(tmp_path, fixed_host, clock):
    """Every update pins its pre-update set and nothing unpins it: old pins must not fill the root."""
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    ids = ['20261101T000000Z', '20261102T000000Z', '20261103T000000Z', '20261104T000000Z', '20261105T000000Z']
    removed = []
    for when in ids:
        removed.extend(backup_at(clock, when, root, conf, pin=True, keep=1, keep_pinned=2)['removed'])
    assert removed == ids[:3]
    assert backupset.list_set_dirs(root)[0] == ids[3:]
    backup_at(clock, '20261106T000000Z', root, conf, keep=1, keep_pinned=2)
    assert backupset.list_set_dirs(root)[0] == ids[3:] + ['20261106T000000Z']
    result = backup_at(clock, '20261107T000000Z', root, conf, keep=1, keep_pinned=0)
    assert result['removed'] == ['20261106T000000Z', ids[4], ids[3]]
    assert backupset.list_set_dirs(root)[0] == ['20261107T000000Z']


def test_a_symlink_named_like_a_set_is_neither_listed_nor_removed(tmp_path, fixed_host, clock):
    conf = make_micropvr_tree(tmp_path)
    root = tmp_path / 'backups'
    root.mkdir(mode=0o700)
    elsewhere = tmp_path / 'elsewhere'
    target, manifest = make_set(elsewhere, '20200101T000000Z')
    os.symlink(target, str(root / '20200101T000000Z'))
    os.symlink(str(elsewhere), str(root / (backupset.INCOMPLETE_PREFIX + '20200101T000000Z')))

    def snapshot():
        found = {}
        for dirpath, _dirnames, filenames in os.walk(str(elsewhere)):
            for name in filenames:
                with open(os.path.join(dirpath, name), 'rb') as handle:
                    found[os.path.join(dirpath, name)] = (handle.read(), _mode(os.path.join(dirpath, name)))
        return found

    before = snapshot()
    backup_at(clock, '20261101T000000Z', str(root), conf)
    result = backup_at(clock, '20261102T000000Z', str(root), conf, keep=1)
    assert result['removed'] == ['20261101T000000Z']
    assert result['removed_incomplete'] == []
    assert os.path.islink(str(root / '20200101T000000Z'))
    assert os.path.islink(str(root / (backupset.INCOMPLETE_PREFIX + '20200101T000000Z')))
    assert snapshot() == before
    assert backupset.list_set_dirs(str(root)) == (['20261102T000000Z'], [])


def test_retention_removes_a_set_of_the_wrong_shape_without_crashing(tmp_path, fixed_host, clock):
    conf = make_micropvr_tree(tmp_path)
    root = tmp_path / 'backups'
    root.mkdir(mode=0o700)
    broken, manifest = make_set(root, '20261101T000000Z', pinned=True)
    reseal(broken, lambda m: m.__setitem__('packages', [1]))
    other, manifest = make_set(root, '20261102T000000Z')
    reseal(other, lambda m: m.__setitem__('files', 'x'))
    backup_at(clock, '20261103T000000Z', str(root), conf)
    result = backup_at(clock, '20261104T000000Z', str(root), conf, keep=2)
    assert result['removed'] == ['20261102T000000Z', '20261101T000000Z']
    assert backupset.list_set_dirs(str(root))[0] == ['20261103T000000Z', '20261104T000000Z']
