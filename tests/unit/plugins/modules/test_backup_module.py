"""Unit tests for the helpers of plugins/modules/micropvr_backup.py (and one run on a real tree)."""

import datetime
import hashlib
import io
import os
import sqlite3
import stat
import tarfile

import pytest
import yaml

from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import belongs_to_database

from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import databases as databases_fragment

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_backup
from ansible_collections.microimpuls.micropvr.plugins.modules.micropvr_backup import (
    RootLock,
    _ensure_root,
    _restrict,
    _tar_entries,
    _walk_files,
    _write_config_archive,
    argument_spec,
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
])
def test_excluded_database_and_side_files(path):
    assert belongs_to_database(path, DBS) is True


@pytest.mark.parametrize('path', [
    '/etc/micropvr/micropvr.conf',
    '/etc/micropvr/records.db.bak',
    '/etc/micropvr/records.db-old',
    '/etc/micropvr/records.db-journal.1',
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
        dict(path='/etc/micropvr/hard', mode='0644', uid=0, gid=0, mtime=1764195300, type='other'),
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


# --- argument spec -----------------------------------------------------------------------------

def test_argument_spec_hides_login_password():
    spec = argument_spec()
    databases = spec['databases']
    assert databases['type'] == 'list' and databases['elements'] == 'dict'
    assert databases['options']['login_password']['no_log'] is True
    assert not any(o.get('no_log') for k, o in databases['options'].items() if k != 'login_password')


def test_argument_spec_validates_and_collects_the_password_as_no_log():
    result = ArgumentSpecValidator(argument_spec()).validate(dict(
        databases=[dict(engine='postgresql', name='mw', login_password='s3cret-value')], keep=3))
    assert result.errors.errors == []
    assert 's3cret-value' in result._no_log_values
    params = result.validated_parameters
    assert params['keep'] == 3
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
    assert 'microimpuls.micropvr.databases' in yaml.safe_load(micropvr_backup.DOCUMENTATION)['extends_documentation_fragment']
    doc.update(yaml.safe_load(databases_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
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

def test_ensure_root_creates_0700(tmp_path):
    root = str(tmp_path / 'backups' / 'micropvr')
    assert _ensure_root(root) is True
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert _ensure_root(root) is False


def test_ensure_root_closes_an_open_root(tmp_path):
    root = tmp_path / 'backups'
    root.mkdir()
    os.chmod(str(root), 0o755)
    assert _ensure_root(str(root)) is True
    assert stat.S_IMODE(os.stat(str(root)).st_mode) == 0o700


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
    params = dict(backup_root=root, lock_timeout=0, keep=None, reason='unit test', pin=False, databases=[],
                  services=[])
    params.update(extra)
    return params


@pytest.fixture
def fixed_host(monkeypatch):
    monkeypatch.setattr(micropvr_backup.socket, 'getfqdn', lambda *args: 'pvr1.example.net')


def test_run_backup_writes_a_verified_set(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    leftover = os.path.join(root, backupset.INCOMPLETE_PREFIX + '20200101T000000Z')
    os.makedirs(leftover)
    result = micropvr_backup.run_backup(FakeModule(backup_params(root)), make_plan(conf), {})
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
    assert manifest == result['manifest']
    assert backupset.seal_matches(manifest)
    assert manifest['verified_at'] is not None
    assert manifest['reason'] == 'unit test' and manifest['host'] == 'pvr1.example.net'
    assert sorted(f['path'] for f in manifest['files']) == ['config.tar', 'sqlite/records.db', 'sqlite/tasks.db']
    assert backupset.verify_files(directory, manifest) == []
    assert [e['path'] for e in manifest['config']['entries']] == [str(conf), str(conf / 'micropvr.conf')]
    assert [s['tables'] for s in manifest['sqlite']] == [
        sqlite_tables(conf / 'records.db'), sqlite_tables(conf / 'tasks.db')]
    assert backupset.summarize(directory, backup_id)['status'] == backupset.STATUS_VERIFIED
    assert result['size'] == backupset.set_size(directory)
    for dirpath, dirnames, filenames in os.walk(directory):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
        for name in filenames:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600


def sqlite_tables(path):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import describe
    return describe(str(path))['tables']


def test_run_backup_retention_after_a_new_set(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    first = micropvr_backup.run_backup(FakeModule(backup_params(root, pin=True)), make_plan(conf), {})
    second = micropvr_backup.run_backup(FakeModule(backup_params(root)), make_plan(conf), {})
    third = micropvr_backup.run_backup(FakeModule(backup_params(root, keep=1)), make_plan(conf), {})
    assert len({first['backup_id'], second['backup_id'], third['backup_id']}) == 3
    assert third['removed'] == [second['backup_id']]  # the first one is pinned
    assert backupset.list_set_dirs(root)[0] == sorted([first['backup_id'], third['backup_id']])


def test_run_backup_failure_leaves_nothing_behind(tmp_path, fixed_host):
    conf = make_micropvr_tree(tmp_path)
    root = str(tmp_path / 'backups')
    plan = make_plan(conf)
    os.unlink(str(conf / 'tasks.db'))  # vanished between plan and run
    with pytest.raises(FailJson) as excinfo:
        micropvr_backup.run_backup(FakeModule(backup_params(root)), plan, {})
    assert excinfo.value.kwargs['msg'] == (
        'backup failed, the partial set was removed: ValueError: SQLite database %s does not exist'
        % (conf / 'tasks.db'))
    assert excinfo.value.kwargs['plan'] is plan
    assert sorted(os.listdir(root)) == ['.lock']


def test_new_backup_ids_are_utc(fixed_host, tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    conf = make_micropvr_tree(tmp_path)
    result = micropvr_backup.run_backup(FakeModule(backup_params(str(tmp_path / 'b'))), make_plan(conf), {})
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
    params = dict(keep=None, space_margin_mb=0, packages=['micropvr'], config_paths=[str(conf.parent)], services=[],
                  config_file=str(conf), sqlite_databases=[], databases=[], backup_root=str(tmp_path / 'backups'))
    params.update(extra)
    return params


def test_an_invalid_config_refuses_the_backup_naming_file_and_line(tmp_path):
    conf = make_micropvr_tree(tmp_path) / 'micropvr.conf'
    # The vendor's own sample: a missing comma.
    conf.write_text('{\n  "records-db-path": "/srv/pvr/records.db"\n  "log-path": "/var/log/micropvr"\n}\n')
    with pytest.raises(FailJson) as excinfo:
        micropvr_backup.plan_backup(InstalledPackages(plan_params(tmp_path, conf)))
    msg = excinfo.value.kwargs['msg']
    assert msg.startswith('config_file: %s:3: Expecting \',\' delimiter (is a comma missing at the end of line 2?).'
                          % conf)
    assert 'micropvr_sqlite_databases' in msg and 'no backup was taken' in msg
    assert not os.path.exists(str(tmp_path / 'backups'))


def test_an_invalid_config_with_named_databases_is_backed_up(tmp_path):
    tree = make_micropvr_tree(tmp_path)
    conf = tree / 'micropvr.conf'
    conf.write_text('{\n  "a": 1\n  "b": 2\n}\n')
    plan, packages = micropvr_backup.plan_backup(InstalledPackages(plan_params(
        tmp_path, conf, sqlite_databases=[str(tree / 'records.db')])))
    assert plan['sqlite_databases'] == [str(tree / 'records.db')]


def test_backup_refuses_while_another_run_holds_the_host_lock(tmp_path):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
    state_dir = str(tmp_path / 'state')
    state.create_lock(state_dir, dict(owner='run-1', purpose='update to 1.10.0-1', acquired_at='2026-11-30T01:00:00Z'))
    module = FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=1))
    started = datetime.datetime.now()
    with pytest.raises(FailJson) as excinfo:
        micropvr_backup.wait_for_host_lock(module, poll=0.2)
    assert (datetime.datetime.now() - started).total_seconds() >= 1
    assert excinfo.value.kwargs['msg'].startswith(
        'refusing to back up: the host is locked by run run-1 (update to 1.10.0-1, since 2026-11-30T01:00:00Z) '
        'and it did not finish within 1 s (lock_timeout)')
    # the run that holds the lock backs up as one of its steps
    micropvr_backup.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner='run-1', lock_timeout=0)))
    # an unfinished step: refused at once, with the way out
    state.write_lock(state_dir, dict(state.read_lock(state_dir), step=dict(name='restore', backup_id='20261129T000000Z')))
    with pytest.raises(FailJson) as excinfo:
        micropvr_backup.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=600)))
    assert 'left its restore step unfinished' in excinfo.value.kwargs['msg']
    assert 'backup set 20261129T000000Z' in excinfo.value.kwargs['msg']
    state.remove_lock(state_dir)
    micropvr_backup.wait_for_host_lock(FakeModule(dict(state_dir=state_dir, lock_owner=None, lock_timeout=0)))
