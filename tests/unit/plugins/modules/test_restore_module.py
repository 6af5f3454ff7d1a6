"""micropvr_restore: how the host is compared with a backup set, the order of a restore and what
a failure leaves, and (issue 13) run() on a real small set: tampered sets, confinement, ENOSPC,
free space."""

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile

import pytest

from backup_sets import KEYS, OTHER_KEYS, TEST_KEY_HEX, count_calls, count_verifications, make_set, reseal, reseal_unkeyed, write_raw
from fake_module import FailJson, FakeModuleBase
from local_servers import HTTPServer, RPCServer
from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils import takeset
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_restore


def _entry(path, **extra):
    st = os.lstat(path)
    entry = dict(path=str(path), uid=st.st_uid, gid=st.st_gid, mode='%04o' % (st.st_mode & 0o7777),
                 mtime=int(st.st_mtime))
    entry.update(extra)
    return entry


def _file_entry(path):
    data = path.read_bytes()
    return _entry(path, type='file', size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_identical_tree_has_no_differences(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{"a": 1}\n')
    link = tmp_path / 'current'
    os.symlink('micropvr.conf', link)
    entries = [_entry(tmp_path, type='directory'), _file_entry(conf), _entry(link, type='symlink', target='micropvr.conf')]
    assert micropvr_restore.config_differences(entries) == []


def test_each_kind_of_difference_is_named(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{"a": 1}\n')
    entries = [_file_entry(conf)]
    conf.write_text('{"a": 2}\n')
    assert micropvr_restore.config_differences(entries) == ['%s: content differs' % conf]
    conf.write_text('{"a": 1}\n')
    os.utime(conf, (1, 1))
    assert micropvr_restore.config_differences(entries) == ['%s: mtime differs' % conf]
    os.chmod(conf, 0o600)
    assert micropvr_restore.config_differences(entries) == ['%s: owner or mode differs' % conf]
    conf.unlink()
    assert micropvr_restore.config_differences(entries) == ['%s: missing' % conf]


def test_symlink_target_change_is_a_difference(tmp_path):
    link = tmp_path / 'current'
    os.symlink('a', link)
    entries = [_entry(link, type='symlink', target='a')]
    link.unlink()
    os.symlink('b', link)
    assert micropvr_restore.config_differences(entries) == ['%s: symlink differs' % link]


def test_extra_files_exclude_archived_files_and_databases(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('x')
    (tmp_path / 'micropvr.conf.dpkg-dist').write_text('y')
    (tmp_path / 'records.db').write_text('')
    (tmp_path / 'records.db-journal').write_text('')
    manifest = dict(config=dict(paths=[str(tmp_path)], entries=[dict(path=str(conf))]),
                    sqlite=[dict(source=str(tmp_path / 'records.db'))])
    assert micropvr_restore.extra_config_files(manifest) == [str(tmp_path / 'micropvr.conf.dpkg-dist')]


# --- the order of a restore, and what a failure leaves -------------------------------------------


class Recorder(FakeModuleBase):
    """Records every command and every restore step; ``fail`` names a step (by a substring of
    what is recorded) that fails, ``fail_times`` how often."""

    bins = dict(dpkg='/usr/bin/dpkg', **{'apt-mark': '/usr/bin/apt-mark', 'dpkg-query': '/usr/bin/dpkg-query',
                                         'dpkg-deb': '/usr/bin/dpkg-deb', 'apt-get': '/usr/bin/apt-get'})
    # What dpkg-deb --field <deb> Depends prints, per package name.
    depends = {}

    def __init__(self, installed, fail=None, fail_times=1):
        self.installed = installed
        self.calls = []
        self.fail, self.fail_times = fail, fail_times

    def _should_fail(self, what):
        if self.fail and self.fail in what and self.fail_times > 0:
            self.fail_times -= 1
            return True
        return False

    def run_command(self, args, **kwargs):
        what = ' '.join(os.path.basename(a) if a.startswith('/usr/bin') or a.startswith('/etc/init.d') else
                        (os.path.basename(a) if a.endswith('.deb') else a) for a in args)
        if what.startswith('dpkg-query'):
            out = ''.join('%s\t%s\tamd64\t1\tinstall ok installed\n' % (n, v) for n, v in sorted(self.installed.items()))
            return 0, out, ''
        if what.startswith('dpkg --audit'):
            return 0, '', ''
        if what.startswith('dpkg-deb --field'):
            name = args[2].rsplit('/', 1)[-1].split('_')[0]
            return 0, (self.depends.get(name, '') if args[3] == 'Depends' else '') + '\n', ''
        if what.endswith(' status'):
            return 0, '', ''
        self.calls.append(what)
        if self._should_fail(what):
            return 1, '', 'injected failure of %s' % what
        if what.startswith('dpkg --configure'):
            # the set's packages are configured: dpkg-query now reports them
            self.installed.update(self.pending)
        return 0, '', ''


@pytest.fixture
def fake_host(monkeypatch, tmp_path):
    def stage(name):
        def record(module, *args):
            module.calls.append(name)
            if module._should_fail(name):
                raise OSError(28, 'No space left on device')
        return record
    monkeypatch.setattr(micropvr_restore, 'restore_config', lambda set_dir, manifest: stage('config')(manifest['__module']))
    monkeypatch.setattr(micropvr_restore, 'stage_sqlite',
                        lambda set_dir, manifest: stage('staging')(manifest['__module']) or {})
    monkeypatch.setattr(micropvr_restore, 'restore_sqlite',
                        lambda set_dir, manifest, staged=None: stage('sqlite')(manifest['__module']))
    monkeypatch.setattr(micropvr_restore, 'restore_databases',
                        lambda module, set_dir, manifest: stage('databases')(module))
    monkeypatch.setattr(micropvr_restore, 'INIT_DIR', '/etc/init.d')
    monkeypatch.setattr(micropvr_restore.os, 'access', lambda path, mode: True)
    monkeypatch.setattr(micropvr_restore, 'PolicyDeny', NoPolicy)
    monkeypatch.setattr(micropvr_restore, 'service_state', lambda module, name: dict(state='running'))

    def make(installed, packages, fail=None, fail_times=1):
        module = Recorder(dict(installed), fail, fail_times)
        module.pending = dict(packages)
        manifest = dict(packages=dict((n, dict(version=v, file='packages/%s_%s.deb' % (n, v)))
                                      for n, v in packages.items()), __module=module)
        return module, manifest
    return make


class NoPolicy(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


ROLLBACK = dict(micropvr='1.9.0-1', micropvs='1.9.0-1', **{'micropvr-control': '1.9.0-1'})
NEWER = dict(micropvr='1.10.0-1', micropvs='1.10.0-1', **{'micropvr-control': '1.10.0-1'})


def test_restore_unpacks_then_puts_data_back_then_configures(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK)
    micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert module.calls == [
        # the set's SQLite copies written beside the databases while the services still run
        'staging',
        'micropvr stop', 'micropvs stop',
        'apt-mark unhold micropvr micropvr-control micropvs',
        # every package of the set in ONE dpkg run (a companion pinned to micropvr (= version))
        'dpkg --unpack --force-confdef --force-confold micropvr_1.9.0-1.deb micropvr-control_1.9.0-1.deb '
        'micropvs_1.9.0-1.deb',
        # data of the old version in place BEFORE its postinst runs (migration tools refuse newer schemas)
        'config', 'sqlite', 'databases',
        'dpkg --configure --force-confdef --force-confold micropvr micropvr-control micropvs',
        'config',  # dpkg's conffile handling cannot leave a file different from the set
        'micropvr start', 'micropvs start',
        # holding needs no outage
        'apt-mark hold micropvr micropvr-control micropvs',
    ]



def test_a_host_without_micropvr_gets_the_dependencies_from_apt_first(fake_host):
    module, manifest = fake_host({}, ROLLBACK)
    module.depends = {'micropvs': 'nginx', 'micropvr': 'python3 (>= 3.9)',
                      'micropvr-control': 'micropvr (= 1.9.0-1), python3 (>= 3.9)'}
    micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True, dependencies=True)
    # Before anything stops; the companion's pin on micropvr is the set's own business.
    assert module.calls[:4] == ['apt-get satisfy -y -q --no-install-recommends python3 (>= 3.9) nginx',
                                'staging', 'micropvr stop', 'micropvs stop']
    assert 'dpkg --configure --force-confdef --force-confold micropvr micropvr-control micropvs' in module.calls
    # Nothing installed is on hold (apt-mark would not even know a package no source has).
    assert not [call for call in module.calls if call.startswith('apt-mark unhold')]


def test_a_failure_to_install_the_dependencies_changes_nothing_of_micropvr(fake_host):
    module, manifest = fake_host({}, ROLLBACK, fail='apt-get satisfy')
    module.depends = {'micropvs': 'nginx'}
    with pytest.raises(micropvr_restore.StepFailed) as failed:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True, dependencies=True)
    assert str(failed.value).startswith('install the dependencies of the saved packages: apt-get satisfy nginx failed')
    assert failed.value.touched is False and module.calls == ['apt-get satisfy -y -q --no-install-recommends nginx']

def test_restore_of_data_only_touches_no_package(fake_host):
    module, manifest = fake_host(ROLLBACK, ROLLBACK)
    micropvr_restore.apply_set(module, '/set', manifest, ['micropvr'], False)
    assert module.calls == ['staging', 'micropvr stop', 'config', 'sqlite', 'databases', 'config',
                            'micropvr start']


@pytest.mark.parametrize('fail, step', [
    ('dpkg --unpack', 'unpack the saved packages'),
    ('config', 'restore the configuration'),
    ('sqlite', 'restore the SQLite databases'),
    ('databases', 'restore the external databases'),
    ('dpkg --configure', 'configure the packages'),
    ('micropvs start', 'start the services'),
    ('apt-mark hold', 'hold the packages'),
])
def test_a_failed_step_is_named(fake_host, fail, step):
    module, manifest = fake_host(NEWER, ROLLBACK, fail=fail)
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert str(excinfo.value).startswith(step + ': ')
    assert excinfo.value.touched is True


def test_a_failure_to_stage_the_databases_stops_nothing(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK, fail='staging')
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert str(excinfo.value).startswith('stage the SQLite databases: OSError')
    assert excinfo.value.touched is False and module.calls == ['staging']


def test_a_failure_to_stop_changes_nothing(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK, fail='micropvs stop')
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert excinfo.value.touched is False
    assert module.calls == ['staging', 'micropvr stop', 'micropvs stop']
    outcome, message = micropvr_restore.recover(module, str(excinfo.value), False, None, ['micropvr', 'micropvs'], True)
    assert outcome == 'not started'
    assert module.calls[-2:] == ['micropvr start', 'micropvs start']


def test_recover_puts_the_host_on_the_fallback_set(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK, fail='dpkg --configure')
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr'], True)
    module.installed.update(ROLLBACK)  # unpacked: dpkg-query reports the set's versions
    fallback_manifest = dict(packages=dict((n, dict(version=v, file='packages/%s_%s.deb' % (n, v)))
                                           for n, v in NEWER.items()), __module=module)
    module.pending = dict(NEWER)
    module.calls = []
    outcome, message = micropvr_restore.recover(module, str(excinfo.value), True,
                                                ('20261130T000000Z', '/fallback', fallback_manifest), ['micropvr'], True)
    assert outcome == 'fell back'
    assert 'backup set 20261130T000000Z' in message and 'micropvr 1.10.0-1' in message
    assert module.calls[:2] == ['staging', 'micropvr stop']
    assert module.calls[-2:] == ['micropvr start', 'apt-mark hold micropvr micropvr-control micropvs']
    assert any(call.startswith('dpkg --configure') for call in module.calls)


def test_recover_without_a_known_state_starts_what_it_can(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK, fail='sqlite', fail_times=2)
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr'], True)
    fallback_manifest = dict(packages=dict((n, dict(version=v, file='x.deb')) for n, v in NEWER.items()),
                             __module=module)
    outcome, message = micropvr_restore.recover(module, str(excinfo.value), True,
                                                ('20261130T000000Z', '/fallback', fallback_manifest), ['micropvr'], True)
    assert outcome == 'unfinished'
    assert message.startswith('restore the SQLite databases: OSError')
    assert 'putting the host back on backup set 20261130T000000Z failed too at restore the SQLite databases' in message
    assert module.calls[-1] == 'micropvr start'


def test_step_module_turns_fail_json_into_step_failed():
    steps = micropvr_restore.StepModule(Recorder({}))
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        steps.fail_json(msg='mysql database middleware: import failed (rc=1): boom')
    assert str(excinfo.value) == 'mysql database middleware: import failed (rc=1): boom'
    assert steps.bins['dpkg'] == '/usr/bin/dpkg'


# --- issue 13: a real (small) set restored by run(), into a host tree under tmp_path ----------------------------------
#
# The set's configuration path is <tmp_path>/host/etc/micropvr (a real absolute path: the module
# restores to '/', so everything it writes stays in tmp_path). Commands are faked (Recorder),
# policy-rc.d is not touched (NoPolicy), the init scripts are files under tmp_path.

SET_ID = '20261126T221500Z'


class ExitJson(BaseException):
    def __init__(self, kwargs):
        super(ExitJson, self).__init__(kwargs.get('msg'))
        self.kwargs = kwargs


class SetModule(Recorder):
    """A module for run(): params, warnings, check mode, diff mode, exit_json; commands recorded."""

    _diff = False

    def __init__(self, params, check_mode=False):
        super(SetModule, self).__init__({})
        self.params, self.check_mode, self.warnings, self.pending = params, check_mode, [], {}

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, args, **kwargs):
        if args[0].startswith(micropvr_restore.INIT_DIR + '/'):
            args = ['/etc/init.d/' + os.path.basename(args[0])] + list(args[1:])
        return super(SetModule, self).run_command(args, **kwargs)

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)


def tree_state(top):
    """{path: (type, mode, uid, gid, content or target)} below ``top`` (links not followed)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                content = os.readlink(path)
            elif os.path.isfile(path):
                with open(path, 'rb') as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            else:
                content = None
            found[os.path.relpath(path, str(top))] = (st.st_mode, st.st_uid, st.st_gid, content)
    return found


class SetHost(object):
    """A backup root with one sealed set of <tmp>/host/etc/micropvr, that host tree, its state dir."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = tmp_path
        self.backup_root = str(tmp_path / 'backups')
        os.makedirs(self.backup_root, 0o700)
        self.host = str(tmp_path / 'host')
        self.state_dir = str(tmp_path / 'state')
        self.set_dir, self.manifest = make_set(self.backup_root, SET_ID, packages=False, databases=False,
                                               host_dir=self.host)
        self.top = self.manifest['config']['paths'][0]
        self.db = self.manifest['sqlite'][0]['source']
        # the host now: an edited configuration and an older database
        with open(os.path.join(self.top, 'micropvr.conf'), 'w') as handle:
            handle.write('{"edited": "after the backup"}\n')
        conn = sqlite3.connect(self.db)
        conn.execute('CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT)')
        conn.execute("INSERT INTO records (name) VALUES ('live')")
        conn.commit()
        conn.close()
        init_dir = str(tmp_path / 'init.d')
        os.makedirs(init_dir)
        with open(os.path.join(init_dir, 'micropvr'), 'w') as handle:
            handle.write('#!/bin/sh\nexit 0\n')
        os.chmod(os.path.join(init_dir, 'micropvr'), 0o755)
        monkeypatch.setattr(micropvr_restore, 'INIT_DIR', init_dir)
        monkeypatch.setattr(micropvr_restore.servicectl, 'INIT_DIR', init_dir)
        monkeypatch.setattr(micropvr_restore, 'PolicyDeny', NoPolicy)
        self.before = self.snapshot()

    def params(self, **change):
        params = dict(backup_id=SET_ID, backup_root=self.backup_root, services=['micropvr'],
                      packages=['micropvr', 'micropvs'], config_paths=[self.top],
                      config_file=os.path.join(self.top, 'micropvr.conf'), sqlite_databases=[self.db], databases=[],
                      hold=False, install_dependencies=False, state_dir=self.state_dir, lock_owner=None,
                      fallback_backup_id=None, safety_backup=None, lock=None, health=None,
                      allow_tampered=False, seal_key=TEST_KEY_HEX, trusted_seal_keys=[], trusted_files={})
        params.update(change)
        return params

    def module(self, **change):
        return SetModule(self.params(**change))

    def snapshot(self):
        return tree_state(self.host)

    def history(self):
        return hoststate.read_history(self.state_dir)

    def run(self, module):
        """run(module): ('exit' | 'fail', kwargs); a traceback (any other exception) fails the test."""
        try:
            micropvr_restore.run(module)
        except ExitJson as exc:
            return 'exit', exc.kwargs
        except FailJson as exc:
            return 'fail', exc.kwargs
        raise AssertionError('run() returned without exit_json or fail_json')

    def stopped(self, module):
        return [call for call in module.calls if call.endswith(' stop')]


@pytest.fixture
def set_host(tmp_path, monkeypatch):
    return SetHost(tmp_path, monkeypatch)


def test_a_verified_set_is_restored(set_host):
    module = set_host.module()
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert module.calls == ['micropvr stop', 'micropvr start']
    assert micropvr_restore.config_differences(set_host.manifest['config']['entries']) == []
    assert micropvr_restore.sqlite_differences(set_host.manifest, set_host.set_dir) == []
    # and once more: nothing to do
    outcome, result = set_host.run(set_host.module())
    assert (outcome, result['outcome']) == ('exit', 'unchanged'), result


def test_verified_set_returns_the_set_of_a_good_id(set_host):
    set_dir, manifest, identities = micropvr_restore.verified_set(set_host.module(), KEYS, SET_ID, 'micropvr_backup_id')
    assert set_dir == set_host.set_dir and manifest['backup_id'] == SET_ID
    assert identities == backupset.file_identities(set_dir, manifest) and len(identities) == len(manifest['files'])


@pytest.fixture
def counted_reads(monkeypatch):
    return count_verifications(monkeypatch)


def test_the_comparison_returns_what_it_verified_and_the_restore_trusts_it(set_host, counted_reads):
    module = set_host.module()
    module.check_mode = True
    outcome, plan = set_host.run(module)
    assert outcome == 'exit' and plan['verified_files'], plan
    # The SQLite copies passed their check when the set was taken: only the checksums are read.
    assert counted_reads == ['checksum']
    outcome, result = set_host.run(set_host.module(trusted_files=plan['verified_files']))
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert counted_reads == ['checksum'], 'the restore read the set again although nothing changed'


def test_a_set_changed_after_the_comparison_is_read_again_and_refused(set_host, counted_reads):
    module = set_host.module()
    module.check_mode = True
    outcome, plan = set_host.run(module)
    path = os.path.join(set_host.set_dir, 'config.tar')
    with open(path, 'r+b') as handle:
        handle.seek(700)
        byte = handle.read(1)
        handle.seek(700)
        handle.write(bytes([byte[0] ^ 1]))
    outcome, result = set_host.run(set_host.module(trusted_files=plan['verified_files']))
    assert outcome == 'fail' and 'config.tar: sha256 does not match the manifest' in result['msg'], result
    assert counted_reads == ['checksum', 'checksum']
    assert set_host.snapshot() == set_host.before


def test_trusted_files_do_not_cover_a_changed_seal(set_host, counted_reads):
    module = set_host.module()
    module.check_mode = True
    outcome, plan = set_host.run(module)
    reseal(set_host.set_dir, lambda m: m.update(reason='edited'), OTHER_KEYS)
    outcome, result = set_host.run(set_host.module(trusted_files=plan['verified_files']))
    assert outcome == 'fail' and 'TAMPERED' in result['msg'], result
    assert set_host.snapshot() == set_host.before


# The run that took a set (its lock owner) and the id of a second set it took.
THIS_RUN = '20261202T220000Z-rollback-pvr1.example.net'
FALLBACK_ID = '20261202T220005Z'


def mark_verified_by(set_dir, run_id):
    backupset.mark_verified(set_dir, backupset.load_manifest(set_dir), KEYS, run_id)


def compare(set_host, **change):
    module = set_host.module(**change)
    module.check_mode = True
    return set_host.run(module)


def test_a_set_this_run_verified_is_not_read_again(set_host, counted_reads):
    mark_verified_by(set_host.set_dir, THIS_RUN)
    outcome, plan = compare(set_host, lock_owner=THIS_RUN)
    assert outcome == 'exit' and plan['differences'], plan
    assert counted_reads == [], 'the set this run verified was read again'
    assert plan['verified_files'] == backupset.load_manifest(set_host.set_dir)['verified_files']


@pytest.mark.parametrize('lock_owner', [None, 'another-run'])
def test_a_set_another_run_verified_is_read_in_full(set_host, counted_reads, lock_owner):
    mark_verified_by(set_host.set_dir, THIS_RUN)
    outcome, plan = compare(set_host, lock_owner=lock_owner)
    assert outcome == 'exit' and counted_reads == ['checksum'], plan


def test_a_set_changed_after_this_run_verified_it_is_read_again_and_refused(set_host, counted_reads):
    mark_verified_by(set_host.set_dir, THIS_RUN)
    with open(os.path.join(set_host.set_dir, 'config.tar'), 'r+b') as handle:
        handle.seek(700)
        byte = handle.read(1)
        handle.seek(700)
        handle.write(bytes([byte[0] ^ 1]))
    outcome, result = compare(set_host, lock_owner=THIS_RUN)
    assert outcome == 'fail' and 'config.tar: sha256 does not match the manifest' in result['msg'], result
    assert counted_reads == ['checksum']
    assert set_host.snapshot() == set_host.before


def test_the_fallback_set_this_run_took_is_not_read_again(set_host, counted_reads):
    fallback_dir = os.path.join(set_host.backup_root, FALLBACK_ID)
    shutil.copytree(set_host.set_dir, fallback_dir)
    reseal(fallback_dir, lambda m: m.update(backup_id=FALLBACK_ID, reason='pre-rollback to %s' % SET_ID))
    mark_verified_by(fallback_dir, THIS_RUN)
    outcome, plan = compare(set_host, lock_owner=THIS_RUN, fallback_backup_id=FALLBACK_ID)
    # Only the set to restore is read (another run verified it); the fallback this run took is not.
    assert outcome == 'exit' and counted_reads == ['checksum'], plan
    # Taken by another run, the fallback is read in full too.
    mark_verified_by(fallback_dir, 'another-run')
    outcome, plan = compare(set_host, lock_owner=THIS_RUN, fallback_backup_id=FALLBACK_ID)
    assert outcome == 'exit' and counted_reads == ['checksum'] * 3, plan


def test_verify_or_trust_reads_the_manifest_once(set_host, monkeypatch):
    loads = count_calls(monkeypatch, backupset, 'load_manifest')
    manifest, problems, dummy, identities = micropvr_restore.verify_or_trust(
        set_host.module(), set_host.set_dir, SET_ID, KEYS, {})
    assert problems == [] and identities == backupset.file_identities(set_host.set_dir, manifest)
    assert loads == [set_host.set_dir]
    # Trusted and unchanged: the manifest is still read once, and nothing else.
    del loads[:]
    micropvr_restore.verify_or_trust(set_host.module(), set_host.set_dir, SET_ID, KEYS, identities)
    assert loads == [set_host.set_dir]


def test_verify_or_trust_reports_an_unreadable_manifest(set_host):
    with open(os.path.join(set_host.set_dir, backupset.MANIFEST), 'w') as handle:
        handle.write('{not json')
    manifest, problems, status, identities = micropvr_restore.verify_or_trust(
        set_host.module(), set_host.set_dir, SET_ID, KEYS, {'config.tar': [1, 2, 3, 4]})
    assert manifest is None and problems and status == backupset.STATUS_DAMAGED and identities == {}


@pytest.mark.parametrize('backup_id, named', [
    ('20261231T000000Z', 'micropvr_backup_id: no backup set 20261231T000000Z'),
    ('../20261126T221500Z', 'micropvr_backup_id: backup id'),
])
def test_verified_set_names_the_option_of_a_bad_id(set_host, backup_id, named):
    with pytest.raises(FailJson) as excinfo:
        micropvr_restore.verified_set(set_host.module(), KEYS, backup_id, 'micropvr_backup_id')
    assert named in excinfo.value.kwargs['msg']


def _tamper(set_host, edit=lambda manifest: manifest.update(reason='edited')):
    """Edit the manifest the way someone without the key can: resealed with the unkeyed sha256."""
    return reseal_unkeyed(set_host.set_dir, edit)


def test_a_tampered_set_is_refused_and_nothing_changes(set_host):
    _tamper(set_host)
    module = set_host.module()
    with pytest.raises(FailJson) as excinfo:
        micropvr_restore.verified_set(module, KEYS, SET_ID, 'micropvr_backup_id')
    assert 'TAMPERED' in excinfo.value.kwargs['msg'] and excinfo.value.kwargs['status'] == 'tampered'
    outcome, result = set_host.run(set_host.module())
    assert outcome == 'fail' and 'TAMPERED' in result['msg'] and 'nothing was changed' in result['msg']
    assert module.calls == [] and set_host.snapshot() == set_host.before
    assert set_host.history() == []


def test_a_set_sealed_with_another_key_is_tampered(set_host):
    other = backupset.SealKeys(bytes(range(200, 232)))
    manifest = backupset.load_manifest(set_host.set_dir)
    backupset.write_manifest(set_host.set_dir, manifest, other)
    outcome, result = set_host.run(set_host.module())
    assert outcome == 'fail' and 'TAMPERED' in result['msg'] and 'does not have' in result['msg']
    assert set_host.snapshot() == set_host.before


def test_allow_tampered_restores_it_with_a_warning_and_a_history_event(set_host):
    _tamper(set_host)
    module = set_host.module(allow_tampered=True, lock_owner=None)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert any('tampered' in warning and SET_ID in warning for warning in module.warnings), module.warnings
    events = [event for event in set_host.history() if event.get('event') == 'tampered-override']
    assert len(events) == 1 and events[0]['backup_id'] == SET_ID and events[0]['problem']
    assert micropvr_restore.config_differences(set_host.manifest['config']['entries']) == []


def test_allow_tampered_in_check_mode_records_nothing(set_host):
    _tamper(set_host)
    module = SetModule(set_host.params(allow_tampered=True), check_mode=True)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored')
    assert set_host.history() == [] and set_host.snapshot() == set_host.before and module.calls == []


@pytest.mark.parametrize('edit, named', [
    # a path of the manifest leaves the set (manifest_problems)
    (lambda m: m['sqlite'][0].update(file='/etc/shadow'), 'sqlite[0].file'),
    # the manifest reaches beyond what this host's settings name (host_problems)
    (lambda m: m['config']['paths'].append('/etc/cron.d'), 'the set restores /etc/cron.d'),
    (lambda m: m['sqlite'][0].update(source='/var/lib/other/records.db'), '/var/lib/other/records.db'),
])
def test_allow_tampered_does_not_lift_the_other_checks(set_host, edit, named):
    _tamper(set_host, edit)
    module = set_host.module(allow_tampered=True)
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and named in result['msg'], result['msg']
    assert module.calls == [] and set_host.snapshot() == set_host.before


def test_a_forged_archive_in_a_resealed_set_is_refused(set_host, tmp_path):
    """The key holder (or allow_tampered) cannot smuggle a member in either: the archive must be
    the manifest's entries."""
    archive = os.path.join(set_host.set_dir, 'config.tar')
    evil = str(tmp_path / 'evil')
    with open(evil, 'w') as handle:
        handle.write('* * * * * root id > /tmp/pwned\n')
    with tarfile.open(archive, 'a', format=tarfile.PAX_FORMAT) as tar:
        tar.add(evil, arcname=os.path.join(set_host.top.lstrip('/'), '..', '..', 'cron.d', 'evil'))

    def edit(manifest):
        manifest['files'][0].update(size=os.path.getsize(archive), sha256=backupset.sha256_file(archive))
    _tamper(set_host, edit)
    module = set_host.module(allow_tampered=True)
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and 'cron.d/evil' in result['msg'], result['msg']
    assert module.calls == [] and set_host.snapshot() == set_host.before
    assert not os.path.exists(str(tmp_path / 'host' / 'cron.d'))


def _fail_rename_in(directory):
    real = os.rename

    def rename(source, target, *args, **kwargs):
        if str(target).startswith(directory + '/'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real(source, target, *args, **kwargs)
    return rename


def test_enospc_while_restoring_the_configuration_is_a_clean_failure(set_host, monkeypatch):
    monkeypatch.setattr(os, 'rename', _fail_rename_in(set_host.top))
    module = set_host.module()
    outcome, result = set_host.run(module)
    assert outcome == 'fail', result
    assert 'restore the configuration: OSError: [Errno 28] No space left on device' in result['msg'], result['msg']
    assert result['outcome'] == 'unfinished'
    # the services were started again, and every file is the old one (no temporary file left)
    assert module.calls == ['micropvr stop', 'micropvr start']
    now = set_host.snapshot()
    # neither the configuration's temporary files nor the staged database copies are left
    assert [p for p in now if 'micropvr-restore' in p or '.restore-' in p] == []
    for path, state in set_host.before.items():
        if not os.path.isdir(os.path.join(set_host.host, path)):
            assert now[path] == state, path


def test_enospc_while_restoring_sqlite_is_a_clean_failure(set_host, monkeypatch):
    real = micropvr_restore.safepath.copy_fd

    def copy_fd(source_fd, destination_fd, length):
        os.write(destination_fd, os.pread(source_fd, 100, 0))
        raise OSError(errno.ENOSPC, 'No space left on device')
    # The restore's own copy (the safety backup's SQLite copy is sqlite_snapshot's).
    monkeypatch.setattr(micropvr_restore.safepath, 'copy_fd', copy_fd)
    live = set_host.snapshot()['etc/micropvr/records.db']
    module = set_host.module()
    outcome, result = set_host.run(module)
    monkeypatch.setattr(micropvr_restore.safepath, 'copy_fd', real)
    assert outcome == 'fail', result
    # The copy is written while the service still runs: nothing was stopped or changed.
    assert 'stage the SQLite databases: OSError: [Errno 28] No space left on device' in result['msg'], result['msg']
    assert set_host.snapshot()['etc/micropvr/records.db'] == live
    assert [p for p in os.listdir(set_host.top) if '.restore-' in p] == []
    assert set_host.stopped(module) == []


def test_the_database_copy_is_written_before_the_services_stop(set_host, monkeypatch):
    module = set_host.module()
    at_stop = []
    real = SetModule.run_command

    def run_command(self, args, **kwargs):
        if args[-1] == 'stop':
            at_stop.extend(p for p in os.listdir(set_host.top) if '.restore-' in p)
        return real(self, args, **kwargs)
    monkeypatch.setattr(SetModule, 'run_command', run_command)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert [p.split('.restore-')[0] for p in at_stop] == ['.' + os.path.basename(set_host.db)]
    assert micropvr_restore.sqlite_differences(set_host.manifest, set_host.set_dir) == []
    assert [p for p in os.listdir(set_host.top) if '.restore-' in p] == []


def test_a_database_whose_directory_is_missing_is_copied_after_the_configuration(set_host, tmp_path):
    shutil.rmtree(set_host.top)  # a host without MicroPVR: the restore makes the directory
    staged = micropvr_restore.stage_sqlite(set_host.set_dir, set_host.manifest)
    assert staged == {}
    outcome, result = set_host.run(set_host.module())
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert micropvr_restore.sqlite_differences(set_host.manifest, set_host.set_dir) == []


def test_a_staged_copy_is_not_written_through_a_symbolic_link(set_host, tmp_path):
    elsewhere = str(tmp_path / 'elsewhere')
    shutil.move(set_host.top, elsewhere)
    os.symlink(elsewhere, set_host.top)
    assert micropvr_restore.stage_sqlite(set_host.set_dir, set_host.manifest) == {}
    assert [p for p in os.listdir(elsewhere) if '.restore-' in p] == []


def test_discard_staged_removes_only_what_was_not_put_in_place(tmp_path):
    kept, left = tmp_path / 'kept', tmp_path / 'left'
    kept.write_text('x')
    left.write_text('y')
    staged = {'/a': str(left), '/b': str(tmp_path / 'gone')}
    micropvr_restore.discard_staged(staged)
    assert staged == {} and kept.exists() and not left.exists()


def test_enospc_through_main_is_a_failure_message_not_a_traceback(set_host, monkeypatch, capsys):
    """main() as Ansible runs it: a failed module result (rc 1, msg), no traceback on stderr."""
    monkeypatch.setattr(os, 'rename', _fail_rename_in(set_host.top))
    monkeypatch.setattr(micropvr_restore.AnsibleModule, 'run_command',
                        lambda self, args, **kwargs: (0, '', ''))
    params = set_host.params()
    code, result = run_main(micropvr_restore.main, capsys, **params)
    assert code == 1 and result['failed'] is True
    assert 'restore the configuration: OSError: [Errno 28]' in result['msg']
    assert 'exception' not in result


def test_an_unexpected_error_in_main_is_a_failure_message(set_host, monkeypatch, capsys):
    def boom(module):
        raise KeyError('whatever a set could hold')
    monkeypatch.setattr(micropvr_restore, 'restore_set', boom)
    code, result = run_main(micropvr_restore.main, capsys, **set_host.params())
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith('restore of backup set %s stopped: KeyError' % SET_ID)


def _free(free_bytes):
    def free_space(path):
        probe = path
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        return dict(path=path, exists=os.path.isdir(path), measured_at=probe, free_bytes=free_bytes,
                    total_bytes=10 * free_bytes + 1)
    return free_space


def test_space_problems_names_a_filesystem_that_is_too_small(set_host, monkeypatch):
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(1024))
    problems = micropvr_restore.space_problems(set_host.set_dir, set_host.manifest, [])
    assert len(problems) == 1 and 'MiB free, the restore needs about' in problems[0]
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(10 ** 12))
    assert micropvr_restore.space_problems(set_host.set_dir, set_host.manifest, []) == []


def test_space_problems_counts_three_times_each_changed_package(set_host, monkeypatch):
    deb = os.path.join(set_host.set_dir, 'micropvr.deb')
    with open(deb, 'wb') as handle:
        handle.write(b'x' * 1024)
    manifest = dict(set_host.manifest, packages=dict(micropvr=dict(file='micropvr.deb')))
    needed = micropvr_restore.SPACE_MARGIN + 3 * 1024 + sum(
        e['size'] for e in manifest['config']['entries'] if e['type'] == 'file') + os.path.getsize(
        os.path.join(set_host.set_dir, manifest['sqlite'][0]['file']))
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(needed))
    assert micropvr_restore.space_problems(set_host.set_dir, manifest, ['micropvr']) == []
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(needed - 1))
    assert micropvr_restore.space_problems(set_host.set_dir, manifest, ['micropvr'])


def test_too_little_space_refuses_before_the_services_stop(set_host, monkeypatch):
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(1024))
    module = set_host.module()
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and 'not enough free space' in result['msg'] and 'services still run' in result['msg']
    assert set_host.stopped(module) == [] and module.calls == []
    assert set_host.snapshot() == set_host.before


def test_restore_config_writes_only_the_sets_entries(set_host):
    """The real restore_config (confine.extract_config to '/'): the set's entries come back, a
    file of the host's own in the configuration path stays."""
    mine = os.path.join(set_host.top, 'conf.d', 'mine.json')
    with open(mine, 'w') as handle:
        handle.write('{}\n')
    micropvr_restore.restore_config(set_host.set_dir, set_host.manifest)
    assert micropvr_restore.config_differences(set_host.manifest['config']['entries']) == []
    assert os.path.exists(mine)
    assert micropvr_restore.extra_config_files(set_host.manifest) == [mine]


def test_a_host_config_that_does_not_parse_allows_only_the_sets_own_paths(set_host):
    """Without sqlite_databases, the SQLite databases allowed are those micropvr.conf names (none
    when it does not parse): a database inside the configuration paths is still allowed."""
    with open(os.path.join(set_host.top, 'micropvr.conf'), 'w') as handle:
        handle.write('{not json')
    module = set_host.module(sqlite_databases=[])
    config_paths, init_scripts, sqlite_paths, packages, databases = micropvr_restore.host_allowances(module)
    assert config_paths == [set_host.top]
    assert confine.host_problems(set_host.manifest, config_paths, init_scripts, sqlite_paths, packages,
                                 databases) == []


def test_a_raw_manifest_of_the_wrong_shape_is_refused_not_a_crash(set_host):
    manifest = json.load(open(os.path.join(set_host.set_dir, 'manifest.json')))
    manifest['packages'] = [1]
    write_raw(set_host.set_dir, manifest)
    outcome, result = set_host.run(set_host.module(allow_tampered=True))
    assert outcome == 'fail' and 'packages' in result['msg']
    assert set_host.snapshot() == set_host.before


# --- diff mode ---------------------------------------------------------------------------------------

def diff_module(set_host, check_mode):
    module = SetModule(set_host.params(), check_mode=check_mode)
    module._diff = True
    return module


def test_check_mode_with_diff_names_each_difference_and_changes_nothing(set_host):
    outcome, result = set_host.run(diff_module(set_host, check_mode=True))
    assert (outcome, result['changed']) == ('exit', True), result
    conf = os.path.join(set_host.top, 'micropvr.conf')
    assert result['diff']['before_header'] == 'host now'
    assert result['diff']['after_header'] == 'backup set %s' % SET_ID
    before = result['diff']['before'].splitlines()
    after = result['diff']['after'].splitlines()
    assert before == result['differences']
    assert '%s: content differs' % conf in before
    assert '%s: contents differ' % set_host.db in before
    assert after == ['%s: as in backup set %s' % (line.split(': ')[0], SET_ID) for line in before]
    assert set_host.snapshot() == set_host.before


def test_a_restore_with_diff_returns_it_and_an_unchanged_host_an_empty_one(set_host):
    outcome, result = set_host.run(diff_module(set_host, check_mode=False))
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert '%s: as in backup set %s' % (set_host.db, SET_ID) in result['diff']['after'].splitlines()
    outcome, result = set_host.run(diff_module(set_host, check_mode=False))
    assert (outcome, result['outcome']) == ('exit', 'unchanged'), result
    assert result['diff']['before'] == result['diff']['after'] == ''


def test_no_diff_without_diff_mode(set_host):
    outcome, result = set_host.run(set_host.module())
    assert outcome == 'exit' and 'diff' not in result


def test_a_failed_restore_returns_no_diff(set_host):
    module = diff_module(set_host, check_mode=False)
    module.fail, module.fail_times = 'micropvr start', 5
    outcome, result = set_host.run(module)
    assert outcome == 'fail', result
    assert 'diff' not in result


def test_the_diff_puts_package_versions_first_and_each_item_once():
    result = dict(from_versions={'micropvr': '1.10.0-1', 'micropvs': '1.9.0-1'},
                  to_versions={'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'},
                  differences=['micropvr 1.10.0-1 installed, the set has 1.9.0-1',
                               '/etc/micropvr/tasks.db: contents differ',
                               'mysql database mw: table a is missing',
                               'mysql database mw: table b is not in the backup'])
    diff = micropvr_restore.restore_diff('20261126T221500Z', result, ['micropvr'])
    assert diff['before'] == ('micropvr 1.10.0-1\nmicropvs 1.9.0-1\n/etc/micropvr/tasks.db: contents differ\n'
                              'mysql database mw: table a is missing\nmysql database mw: table b is not in the backup\n')
    assert diff['after'] == ('micropvr 1.9.0-1\nmicropvs 1.9.0-1\n/etc/micropvr/tasks.db: as in backup set 20261126T221500Z\n'
                             'mysql database mw: as in backup set 20261126T221500Z\n')


# --- what is compared before a restore -----------------------------------------------------------

def test_when_the_package_versions_differ_the_databases_are_restored_without_reading_them(set_host, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError('the live databases were read although the packages differ')
    monkeypatch.setattr(micropvr_restore, 'describe', no_reading)
    monkeypatch.setattr(micropvr_restore, 'live_digests', no_reading)
    manifest = dict(set_host.manifest, packages={'micropvr': dict(version='1.9.0-1')},
                    databases=[dict(engine='mysql', database='mw', file='databases/mw.sql', format='plain',
                                    tables={'a': dict(rows=1, sha256='0' * 64)})])
    installed = {'micropvr': dict(version='1.10.0-1', installed=True)}
    found = micropvr_restore.differences(set_host.module(), manifest, installed, set_host.set_dir)
    assert found[0] == 'micropvr 1.10.0-1 installed, the set has 1.9.0-1'
    assert found[-1] == 'databases: restored from the set (not compared: the package versions differ)'


def test_with_the_same_package_versions_the_live_databases_are_compared(set_host):
    manifest = dict(set_host.manifest, packages={'micropvr': dict(version='1.9.0-1')})
    installed = {'micropvr': dict(version='1.9.0-1', installed=True)}
    found = micropvr_restore.differences(set_host.module(), manifest, installed, set_host.set_dir)
    assert '%s: contents differ' % set_host.db in found
    assert not [line for line in found if line.startswith('databases:')]


@pytest.mark.parametrize('digest_format', [1, 2])
def test_the_live_database_is_compared_in_the_digest_format_of_the_set(set_host, digest_format):
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import sqlite_snapshot
    live = sqlite_snapshot.describe(set_host.db, digest_format=digest_format)
    entry = dict(set_host.manifest['sqlite'][0], user_version=live['user_version'], tables=live['tables'])
    if digest_format == 2:
        entry['digest_format'] = 2
    else:
        entry.pop('digest_format', None)  # sets from before format 2 do not name it
    assert micropvr_restore.sqlite_differences(dict(set_host.manifest, sqlite=[entry])) == []
    other = sqlite_snapshot.describe(set_host.db, digest_format=3 - digest_format)
    assert other['tables'] != live['tables']
    entry['tables'] = other['tables']
    assert micropvr_restore.sqlite_differences(dict(set_host.manifest, sqlite=[entry])) == [
        '%s: contents differ' % set_host.db]


def test_a_set_without_recorded_digests_is_compared_by_digesting_its_copy(set_host):
    entry = dict((k, v) for k, v in set_host.manifest['sqlite'][0].items() if k not in ('tables', 'digest_format'))
    manifest = dict(set_host.manifest, sqlite=[entry])
    assert micropvr_restore.sqlite_differences(manifest, set_host.set_dir) == ['%s: contents differ' % set_host.db]
    # Without the set to read, nothing is claimed equal: it is restored.
    assert micropvr_restore.sqlite_differences(manifest) == [
        '%s: no recorded contents, restored from the set' % set_host.db]
    shutil.copyfile(os.path.join(set_host.set_dir, entry['file']), set_host.db)
    assert micropvr_restore.sqlite_differences(manifest, set_host.set_dir) == []
    conn = sqlite3.connect(set_host.db)
    conn.execute('PRAGMA user_version = %d' % (entry['user_version'] + 1))
    conn.close()
    assert micropvr_restore.sqlite_differences(manifest, set_host.set_dir) == ['%s: contents differ' % set_host.db]


# --- no backup_id: the newest verified pre-update set ------------------------------------------


def test_without_a_backup_id_the_newest_pre_update_set_is_chosen_and_returned(set_host):
    reseal(set_host.set_dir, lambda m: m.update(reason='pre-update to 1.10.0-1'), KEYS)
    module = set_host.module(backup_id=None)
    module.check_mode = True
    outcome, plan = set_host.run(module)
    assert (outcome, plan['outcome'], plan['backup_id']) == ('exit', 'restored', SET_ID), plan
    outcome, result = set_host.run(set_host.module(backup_id=''))
    assert (outcome, result['outcome'], result['backup_id']) == ('exit', 'restored', SET_ID), result
    assert micropvr_restore.config_differences(set_host.manifest['config']['entries']) == []


def test_without_a_backup_id_and_no_pre_update_set_nothing_changes(set_host):
    # The one set is a verified set of another reason (make_set's "manual").
    module = set_host.module(backup_id=None)
    outcome, result = set_host.run(module)
    assert outcome == 'fail', result
    assert result['msg'] == ('backup_id: no verified pre-update backup set in %s, nothing was changed; name the set '
                             'to restore with micropvr_backup_id=<id> (list them with playbooks/backup_verify.yml)'
                             % set_host.backup_root)
    assert module.calls == [] and set_host.snapshot() == set_host.before


# --- the health check inside the restore (one task instead of two in every rollback) -----------

ALIVE = {'is_alive': True, 'score': 12.5, 'session_count': 0}
DEAD = {'is_alive': False, 'score': 1000.0, 'session_count': 0}


@pytest.fixture
def probed(set_host, serve, tmp_path):
    """health options against a local JSON-RPC server answering ``answers`` in turn (the last one
    from then on) and a local micropvs; the nginx probe runs through the module's run_command."""
    nginx_conf = tmp_path / 'nginx-micropvr' / 'conf' / 'nginx.conf'
    nginx_conf.parent.mkdir(parents=True)
    nginx_conf.write_text('events {}\n')
    web = serve(HTTPServer())

    def options(*answers, **change):
        rpc = serve(RPCServer(lambda index: answers[min(index, len(answers)) - 1]))
        health = dict(rpc_host='127.0.0.1', rpc_port=rpc.port, http_url=web.url('/nginx-stats'),
                      nginx_config=str(nginx_conf), nginx_binary='/usr/sbin/nginx', timeout=2.0, retries=1, delay=0.0)
        health.update(change)
        return rpc, health
    return options


def health_module(set_host, health, check_mode=False):
    module = SetModule(set_host.params(health=health), check_mode=check_mode)
    module.tmpdir = str(set_host.tmp)  # fetch_url points tempfile at the module's tmpdir
    return module


def test_the_restore_checks_health_once_the_services_run(set_host, probed):
    rpc, health = probed(ALIVE)
    module = health_module(set_host, health)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome'], result['changed']) == ('exit', 'restored', True), result
    assert result['health']['healthy'] is True and result['health']['attempts'] == 1
    assert sorted(result['health']['probes']) == ['http', 'nginx', 'rpc']
    assert [r['method'] for r in rpc.requests] == ['is_alive']
    # The probes came after the start, and nginx -t tested the micropvs configuration.
    assert module.calls[:2] == ['micropvr stop', 'micropvr start']
    assert module.calls[2:] == ['/usr/sbin/nginx -t -q -p %s/ -c %s' % (os.path.dirname(os.path.dirname(health['nginx_config'])),
                                                                       health['nginx_config'])]


def test_health_is_retried_until_micropvr_serves(set_host, probed):
    rpc, health = probed(DEAD, DEAD, ALIVE, retries=5, delay=0.1)
    outcome, result = set_host.run(health_module(set_host, health))
    assert (outcome, result['health']['healthy'], result['health']['attempts']) == ('exit', True, 3), result
    assert len(rpc.requests) == 3
    # the two rounds that failed waited their delay: the part of the restore that the health check took
    assert list(result['step_seconds'])[-1] == 'health check'
    assert result['step_seconds']['health check'] >= 2 * health['delay'], result['step_seconds']


def test_unhealthy_after_the_restore_fails_saying_the_set_was_restored(set_host, probed):
    rpc, health = probed(DEAD, retries=2)
    outcome, result = set_host.run(health_module(set_host, health))
    assert outcome == 'fail', result
    assert result['msg'] == (
        'backup set %s was restored, but MicroPVR is not healthy after 2 attempt(s): rpc probe failed: is_alive=false '
        '(score 1000.0, 0 sessions). The host stays on the set with its services started: find out why it does not '
        'serve (the micropvr log), or restore another set' % SET_ID)
    assert (result['changed'], result['outcome'], result['health']['failed_probes']) == (True, 'restored', ['rpc'])
    # The host is in the set's state all the same (not rolled back again, not left half-way).
    assert micropvr_restore.config_differences(set_host.manifest['config']['entries']) == []
    assert micropvr_restore.sqlite_differences(set_host.manifest, set_host.set_dir) == []


def test_a_host_already_in_the_state_of_the_set_is_checked_too(set_host, probed):
    rpc, health = probed(ALIVE)
    assert set_host.run(set_host.module())[0] == 'exit'
    outcome, result = set_host.run(health_module(set_host, health))
    assert (outcome, result['outcome'], result['changed'], result['health']['healthy']) == (
        'exit', 'unchanged', False, True), result
    rpc_dead, health_dead = probed(DEAD)
    outcome, result = set_host.run(health_module(set_host, health_dead))
    assert outcome == 'fail' and result['changed'] is False, result
    assert result['msg'].startswith('backup set %s matches the host (nothing was restored), but MicroPVR is not healthy '
                                    'after 1 attempt(s): rpc probe failed: is_alive=false' % SET_ID), result['msg']


def test_check_mode_probes_nothing(set_host, probed):
    rpc, health = probed(ALIVE)
    outcome, result = set_host.run(health_module(set_host, health, check_mode=True))
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert 'health' not in result and rpc.requests == []
    assert set_host.snapshot() == set_host.before


def test_health_retries_below_one_is_refused_before_anything_changes(set_host, probed):
    rpc, health = probed(ALIVE, retries=0)
    module = health_module(set_host, health)
    outcome, result = set_host.run(module)
    assert (outcome, result['msg']) == ('fail', 'health.retries must be at least 1, got 0'), result
    assert module.calls == [] and rpc.requests == []
    assert set_host.snapshot() == set_host.before




# --- the set of the host taken by the restore itself, to fall back on (O(safety_backup)) ------------------------------

SAFETY = dict(space_margin_mb=0, sqlite_check='quick', lock_timeout=0)


def safety_module(set_host, monkeypatch, **change):
    """A restore that takes the set to fall back on; the set has no packages, so the host names none."""
    monkeypatch.setattr(takeset, 'INIT_DIR', micropvr_restore.INIT_DIR)
    params = dict(packages=[], safety_backup=dict(SAFETY))
    params.update(change)
    return set_host.module(**params)


def live_rows(path):
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute('SELECT name FROM records ORDER BY id')]
    finally:
        conn.close()


def sets_in(set_host):
    return sorted(name for name in os.listdir(set_host.backup_root) if not name.startswith('.'))


def test_the_safety_backup_saves_the_host_as_it_was_before_the_restore(set_host, monkeypatch):
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    safety_id = result['safety_backup_id']
    assert sets_in(set_host) == sorted([SET_ID, safety_id]) and 'safety_backup_problem' not in result
    safety_dir = os.path.join(set_host.backup_root, safety_id)
    manifest = backupset.load_manifest(safety_dir)
    assert manifest['reason'] == 'pre-rollback to %s' % SET_ID and manifest['pinned'] is False
    # what the host held before the restore: the live row and the edited configuration
    assert live_rows(os.path.join(safety_dir, manifest['sqlite'][0]['file'])) == ['live']
    with tarfile.open(os.path.join(safety_dir, 'config.tar')) as archive:
        conf = archive.extractfile(set_host.top.lstrip('/') + '/micropvr.conf').read()
    assert conf == b'{"edited": "after the backup"}\n'
    dummy, problems, status = backupset.verify_set(module, safety_dir, safety_id, KEYS)
    assert problems == [], problems
    # the host is in the state of the restored set
    assert live_rows(set_host.db) == ['r%d' % i for i in range(20)]
    assert module.calls == ['micropvr stop', 'micropvr start']


def fail_restore_sqlite_once(monkeypatch):
    """The first copy of SQLite back fails (EIO), the next ones work; returns the sets copied from."""
    real = micropvr_restore.restore_sqlite
    calls = []

    def restore_sqlite_once_failing(set_dir, manifest, staged=None):
        calls.append(set_dir)
        if len(calls) == 1:
            raise OSError(errno.EIO, 'Input/output error')
        return real(set_dir, manifest, staged)
    monkeypatch.setattr(micropvr_restore, 'restore_sqlite', restore_sqlite_once_failing)
    return calls


def test_a_failed_restore_falls_back_on_the_safety_backup(set_host, monkeypatch):
    calls = fail_restore_sqlite_once(monkeypatch)
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and result['outcome'] == 'fell back', result
    assert 'put back on backup set %s' % result['safety_backup_id'] in result['msg'], result['msg']
    assert calls[1] == os.path.join(set_host.backup_root, result['safety_backup_id'])
    # the host as it was: the live row, the edited configuration
    assert live_rows(set_host.db) == ['live']
    with open(os.path.join(set_host.top, 'micropvr.conf')) as handle:
        assert handle.read() == '{"edited": "after the backup"}\n'


def test_a_safety_backup_that_cannot_be_taken_is_a_warning_and_the_restore_goes_on(set_host, monkeypatch):
    module = safety_module(set_host, monkeypatch, safety_backup=dict(SAFETY, space_margin_mb=10 ** 9))
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert result['safety_backup_id'] is None
    assert result['safety_backup_problem'].startswith('not enough free space for a backup set in %s'
                                                      % set_host.backup_root), result
    assert [w for w in module.warnings if w.startswith('no backup of the host before the restore (not enough')]
    assert sets_in(set_host) == [SET_ID] and not [n for n in os.listdir(set_host.backup_root) if 'incomplete' in n]
    assert live_rows(set_host.db) == ['r%d' % i for i in range(20)]


def test_a_safety_backup_that_fails_while_written_leaves_no_set(set_host, monkeypatch):
    def broken_snapshot(*args, **kwargs):
        raise sqlite3.OperationalError('disk I/O error')
    monkeypatch.setattr(takeset, 'snapshot', broken_snapshot)
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert 'disk I/O error' in result['safety_backup_problem'], result
    assert sorted(os.listdir(set_host.backup_root)) == sorted([SET_ID, backupset.LOCK_FILE])


def test_no_safety_backup_when_nothing_would_change_or_in_check_mode(set_host, monkeypatch):
    module = safety_module(set_host, monkeypatch)
    module.check_mode = True
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored') and 'safety_backup_id' not in result, result
    assert sets_in(set_host) == [SET_ID] and set_host.snapshot() == set_host.before
    outcome, result = set_host.run(safety_module(set_host, monkeypatch))
    first = result['safety_backup_id']
    outcome, result = set_host.run(safety_module(set_host, monkeypatch))
    assert (outcome, result['outcome']) == ('exit', 'unchanged'), result
    assert sets_in(set_host) == sorted([SET_ID, first])


def test_a_half_installed_host_is_not_saved(set_host, monkeypatch):
    monkeypatch.setattr(micropvr_restore, 'dpkg_audit', lambda module: 'The following packages are only half configured')
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert result['safety_backup_id'] is None and 'safety_backup_problem' not in result
    assert sets_in(set_host) == [SET_ID]


def test_safety_backup_and_fallback_backup_id_are_refused_together(set_host, monkeypatch):
    outcome, result = set_host.run(safety_module(set_host, monkeypatch, fallback_backup_id=FALLBACK_ID))
    assert outcome == 'fail' and result['msg'].startswith('safety_backup and fallback_backup_id are mutually exclusive')
    assert sets_in(set_host) == [SET_ID] and set_host.snapshot() == set_host.before


def test_an_unfinished_restore_without_a_safety_backup_says_why_there_was_none(set_host, monkeypatch):
    def broken_snapshot(*args, **kwargs):
        raise sqlite3.OperationalError('disk I/O error')
    monkeypatch.setattr(takeset, 'snapshot', broken_snapshot)
    monkeypatch.setattr(os, 'rename', _fail_rename_in(set_host.top))
    outcome, result = set_host.run(safety_module(set_host, monkeypatch))
    assert outcome == 'fail' and result['outcome'] == 'unfinished', result
    assert 'the host is NOT in a known state' in result['msg']
    assert result['msg'].endswith('There was no backup of the host before the restore to put it back on: '
                                  'backup failed, the partial set was removed: OperationalError: disk I/O error.'), \
        result['msg']


# --- the host lock taken by the restore itself (O(lock)) ---------------------------------------------------------------

LOCK = dict(purpose='rollback to %s' % SET_ID, ttl=7200, release=False)


def test_the_restore_takes_the_host_lock_first_and_keeps_it(set_host):
    module = set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    lock = hoststate.read_lock(set_host.state_dir)
    # Released by the caller (micropvr_lock state=absent); the restore's step is cleared.
    assert (lock['owner'], lock['purpose'], 'step' in lock) == (THIS_RUN, LOCK['purpose'], False), lock
    assert 'interrupted' not in result
    # A second run of the same owner keeps the lock it holds.
    outcome, result = set_host.run(set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN))
    assert (outcome, result['outcome']) == ('exit', 'unchanged') and hoststate.read_lock(set_host.state_dir) == lock


def test_a_lock_without_a_lock_owner_is_refused(set_host):
    outcome, result = set_host.run(set_host.module(lock=dict(LOCK)))
    assert outcome == 'fail' and result['msg'] == 'lock: needs lock_owner, the run that takes the lock', result
    assert set_host.snapshot() == set_host.before and hoststate.read_lock(set_host.state_dir) is None


def test_another_runs_lock_refuses_the_restore_with_nothing_changed(set_host):
    other = dict(owner='20261202T210000Z-update-pvr1', purpose='update to 1.10.0-1',
                 acquired_at=hoststate.iso(hoststate.utc_now()))
    assert hoststate.create_lock(set_host.state_dir, other)
    module = set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN, safety_backup=dict(SAFETY), packages=[])
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and result['msg'].startswith('refusing to restore: the host is locked by another run '
                                                          '(update to 1.10.0-1, owner 20261202T210000Z-update-pvr1'), result
    assert result['msg'].endswith('; nothing was changed') and result['lock'] == other
    assert set_host.snapshot() == set_host.before and hoststate.read_lock(set_host.state_dir) == other
    assert sets_in(set_host) == [SET_ID] and module.calls == []


def test_the_lock_of_an_interrupted_run_is_taken_over_and_returned(set_host):
    step = dict(name='install', backup_id=SET_ID, pid=999999, started_at='2026-12-02T21:00:05Z')
    other = dict(owner='20261202T210000Z-update-pvr1', purpose='update to 1.10.0-1',
                 acquired_at=hoststate.iso(hoststate.utc_now()), step=step)
    assert hoststate.create_lock(set_host.state_dir, other)
    module = set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert result['interrupted'] == dict(owner=other['owner'], purpose=other['purpose'], step=step)
    assert [w for w in module.warnings if w.startswith('run 20261202T210000Z-update-pvr1 was interrupted during its '
                                                      'install step')], module.warnings
    assert hoststate.read_lock(set_host.state_dir)['owner'] == THIS_RUN


def test_check_mode_looks_at_the_lock_and_takes_nothing(set_host):
    module = set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN)
    module.check_mode = True
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert hoststate.read_lock(set_host.state_dir) is None and set_host.snapshot() == set_host.before


# --- the lock released by the restore itself when it ends (O(lock.release)) -------------------------------------------

RELEASE = dict(LOCK, release=True)


def rollback_events(set_host):
    return [entry for entry in set_host.history() if entry.get('event') == 'rollback']


def test_with_release_a_restore_records_the_rollback_then_releases_the_lock(set_host):
    module = set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome'], result['lock_released']) == ('exit', 'restored', True), result
    assert hoststate.read_lock(set_host.state_dir) is None
    record = result['record']
    assert (record['backup_id'], record['outcome'], record['run_id']) == (SET_ID, 'restored', THIS_RUN), record
    assert record['differences'] == result['differences'] and record['differences']
    events = rollback_events(set_host)
    assert len(events) == 1 and dict((k, v) for k, v in events[0].items() if k not in ('event', 'time')) == record
    # A second run finds the host in the state of the set: recorded as such, released again.
    outcome, result = set_host.run(set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN))
    assert (outcome, result['outcome'], result['lock_released']) == ('exit', 'unchanged', True), result
    assert [e['outcome'] for e in rollback_events(set_host)] == ['restored', 'already in this state']
    assert hoststate.read_lock(set_host.state_dir) is None


def test_without_release_the_record_is_returned_and_nothing_is_recorded(set_host):
    outcome, result = set_host.run(set_host.module(lock=dict(LOCK), lock_owner=THIS_RUN))
    assert (outcome, result['record']['outcome']) == ('exit', 'restored') and 'lock_released' not in result, result
    assert rollback_events(set_host) == [] and hoststate.read_lock(set_host.state_dir)['owner'] == THIS_RUN


def test_with_release_a_restore_that_fell_back_releases_the_lock_and_records_no_rollback(set_host, monkeypatch):
    # The failure is reported from inside the restore step: the step must be over before the lock goes.
    fail_restore_sqlite_once(monkeypatch)
    module = safety_module(set_host, monkeypatch, lock=dict(RELEASE), lock_owner=THIS_RUN)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome'], result['lock_released']) == ('fail', 'fell back', True), result
    assert hoststate.read_lock(set_host.state_dir) is None and rollback_events(set_host) == []
    assert live_rows(set_host.db) == ['live']


def test_with_release_an_unfinished_restore_keeps_its_step_in_the_lock(set_host, monkeypatch):
    monkeypatch.setattr(os, 'rename', _fail_rename_in(set_host.top))
    module = set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN)
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome'], result['lock_released']) == ('fail', 'unfinished', False), result
    lock = hoststate.read_lock(set_host.state_dir)
    assert lock['owner'] == THIS_RUN and lock['step']['name'] == 'restore' and lock['step']['backup_id'] == SET_ID
    assert [w for w in module.warnings if w.startswith('the lock keeps the unfinished restore step of this run')]
    assert rollback_events(set_host) == []


def test_with_release_an_unexpected_error_is_a_message_and_the_lock_goes(set_host, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError('whatever a set could hold')
    monkeypatch.setattr(micropvr_restore, 'differences', broken)
    outcome, result = set_host.run(set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN))
    assert outcome == 'fail' and result['msg'].startswith('restore of backup set %s stopped: KeyError' % SET_ID)
    assert result['lock_released'] is True and hoststate.read_lock(set_host.state_dir) is None
    assert set_host.snapshot() == set_host.before and rollback_events(set_host) == []


def test_with_release_a_history_that_cannot_be_written_fails_the_task_and_the_lock_goes(set_host, monkeypatch):
    def unwritable(*args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system')
    monkeypatch.setattr(hoststate, 'append_history', unwritable)
    outcome, result = set_host.run(set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN))
    assert outcome == 'fail' and result['outcome'] == 'restored', result
    assert result['msg'] == ('backup set %s: the restore succeeded, but the rollback event could not be recorded in '
                             'the host history ([Errno 30] Read-only file system); the lock was released' % SET_ID)
    assert result['lock_released'] is True and hoststate.read_lock(set_host.state_dir) is None


def test_with_release_another_runs_lock_is_left_and_check_mode_releases_nothing(set_host):
    other = dict(owner='20261202T210000Z-update-pvr1', purpose='update to 1.10.0-1',
                 acquired_at=hoststate.iso(hoststate.utc_now()))
    assert hoststate.create_lock(set_host.state_dir, other)
    outcome, result = set_host.run(set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN))
    assert (outcome, result['lock_released']) == ('fail', False) and result['msg'].startswith('refusing to restore')
    assert hoststate.read_lock(set_host.state_dir) == other
    hoststate.remove_lock(set_host.state_dir)
    module = set_host.module(lock=dict(RELEASE), lock_owner=THIS_RUN)
    module.check_mode = True
    outcome, result = set_host.run(module)
    assert (outcome, result['outcome'], result['lock_released']) == ('exit', 'restored', False), result
    assert hoststate.read_lock(set_host.state_dir) is None and set_host.history() == []
    assert 'record' not in result and set_host.snapshot() == set_host.before


def test_the_restore_returns_how_long_each_part_took(set_host, monkeypatch):
    outcome, result = set_host.run(safety_module(set_host, monkeypatch))
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    parts = result['step_seconds']
    assert list(parts) == ['verify the set', 'compare the host with the set', 'safety backup',
                           'read the installed packages', 'stage the SQLite databases', 'stop the services',
                           'unpack the saved packages', 'restore the configuration', 'restore the SQLite databases',
                           'restore the external databases', 'configure the packages',
                           'restore the configuration after dpkg', 'start the services'], parts
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in parts.values()), parts
    # the safety backup's part is the time safety_backup_seconds reports
    assert abs(parts['safety backup'] - result['safety_backup_seconds']) < 0.05, parts
    # and its own parts, by the names micropvr_backup gives them
    inside = result['safety_backup_step_seconds']
    assert list(inside)[:3] == ['plan the backup', 'lock the backup root', 'archive the configuration'], inside
    assert 'copy the SQLite databases' in inside and 'verify the set' in inside, inside
    assert sum(inside.values()) <= result['safety_backup_seconds'] + 0.05, inside


# --- the SQLite copies staged while the safety backup runs -----------------------------------------------------------

def staging_files(directory):
    return sorted(name for name in os.listdir(directory) if '.restore-' in name)


def test_the_copies_are_staged_while_the_safety_backup_runs_and_are_not_part_of_it(set_host, monkeypatch):
    events, listed = [], []
    real_start, real_take = micropvr_restore.SqliteStager.start, takeset.take
    real_archive = takeset._write_config_archive

    def start(stager):
        events.append('staging started')
        return real_start(stager)

    def take(*args, **kwargs):
        events.append('safety backup started')
        return real_take(*args, **kwargs)

    def write_config_archive(work, plan):
        # the staged file exists while the safety set's configuration is archived
        listed.extend(staging_files(set_host.top))
        return real_archive(work, plan)
    monkeypatch.setattr(micropvr_restore.SqliteStager, 'start', start)
    monkeypatch.setattr(takeset, 'take', take)
    monkeypatch.setattr(takeset, '_write_config_archive', write_config_archive)
    outcome, result = set_host.run(safety_module(set_host, monkeypatch))
    assert (outcome, result['outcome']) == ('exit', 'restored'), result
    assert events == ['staging started', 'safety backup started']
    assert [name.split('.restore-')[0] for name in listed] == ['.' + os.path.basename(set_host.db)]
    safety_dir = os.path.join(set_host.backup_root, result['safety_backup_id'])
    with tarfile.open(os.path.join(safety_dir, 'config.tar')) as archive:
        names = archive.getnames()
    assert set_host.top.lstrip('/') + '/micropvr.conf' in names
    assert [n for n in names if '.restore-' in n] == [], names
    assert backupset.verify_set(set_host.module(), safety_dir, result['safety_backup_id'], KEYS)[1] == []
    assert live_rows(set_host.db) == ['r%d' % i for i in range(20)]
    assert staging_files(set_host.top) == []


def test_a_copy_that_fails_to_stage_during_the_safety_backup_stops_nothing(set_host, monkeypatch):
    def write_nothing(set_dir, saved, tmp=None):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(micropvr_restore, '_write_sqlite_copy', write_nothing)
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and result['msg'].startswith(
        'restore of backup set %s failed at stage the SQLite databases: OSError: [Errno 28]' % SET_ID), result['msg']
    # the services were never stopped; the set of the host was taken and stays
    assert set_host.stopped(module) == [] and result['safety_backup_id'] in sets_in(set_host)
    assert live_rows(set_host.db) == ['live'] and staging_files(set_host.top) == []


def test_a_restore_that_ends_while_the_copies_are_staged_leaves_none(set_host, monkeypatch):
    real = micropvr_restore.verified_set

    def verified_set(module, keys, backup_id, option, *args, **kwargs):
        if option == 'safety_backup':
            module.fail_json(msg='the set of the host did not verify')
        return real(module, keys, backup_id, option, *args, **kwargs)
    monkeypatch.setattr(micropvr_restore, 'verified_set', verified_set)
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert (outcome, result['msg']) == ('fail', 'the set of the host did not verify'), result
    assert set_host.stopped(module) == [] and live_rows(set_host.db) == ['live']
    assert staging_files(set_host.top) == []


def test_the_safety_backup_and_the_restore_must_fit_together(set_host, monkeypatch):
    """Room for the restore's new files and room for the set of the host, but not for both on the
    one filesystem: refused before either is written."""
    alone = micropvr_restore.SPACE_MARGIN + sum(
        e['size'] for e in set_host.manifest['config']['entries'] if e['type'] == 'file') + os.path.getsize(
        os.path.join(set_host.set_dir, set_host.manifest['sqlite'][0]['file']))
    # the restore's own check passes; the safety backup's plan measures the real filesystem
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(alone))
    assert micropvr_restore.space_problems(set_host.set_dir, set_host.manifest, []) == []
    module = safety_module(set_host, monkeypatch)
    outcome, result = set_host.run(module)
    assert outcome == 'fail' and 'not enough free space' in result['msg'], result
    assert '(with the backup of the host before it)' in result['msg'], result['msg']
    assert sets_in(set_host) == [SET_ID] and set_host.stopped(module) == []
    assert staging_files(set_host.top) == [] and set_host.snapshot() == set_host.before


def test_space_problems_counts_what_else_is_written_meanwhile(set_host, monkeypatch):
    monkeypatch.setattr(micropvr_restore, 'free_space', _free(10 ** 9))
    assert micropvr_restore.space_problems(set_host.set_dir, set_host.manifest, [], also=[(set_host.top, 10 ** 8)]) == []
    problems = micropvr_restore.space_problems(set_host.set_dir, set_host.manifest, [],
                                               also=[(set_host.top, 10 ** 9)])
    assert len(problems) == 1 and problems[0].endswith('(with the backup of the host before it)'), problems


def test_a_stager_writes_each_copy_into_the_file_it_created(set_host):
    stager = micropvr_restore.SqliteStager(set_host.set_dir, set_host.manifest)
    created = stager.paths
    assert [os.path.basename(p).split('.restore-')[0] for p in created] == ['.' + os.path.basename(set_host.db)]
    assert os.path.getsize(created[0]) == 0
    stager.start()
    staged = stager.result()
    assert list(staged.values()) == created and live_rows(created[0]) == ['r%d' % i for i in range(20)]
    stager.discard()
    assert staging_files(set_host.top) == []
