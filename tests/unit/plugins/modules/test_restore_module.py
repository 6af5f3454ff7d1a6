"""Pure parts of micropvr_restore: how the host is compared with a backup set."""

import hashlib
import os

import pytest

from fake_module import FakeModuleBase

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

    bins = dict(dpkg='/usr/bin/dpkg', **{'apt-mark': '/usr/bin/apt-mark', 'dpkg-query': '/usr/bin/dpkg-query'})

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
    monkeypatch.setattr(micropvr_restore, 'restore_sqlite', lambda set_dir, manifest: stage('sqlite')(manifest['__module']))
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
        'micropvr stop', 'micropvs stop',
        'apt-mark unhold micropvr micropvr-control micropvs',
        # every package of the set in ONE dpkg run (a companion pinned to micropvr (= version))
        'dpkg --unpack --force-confdef --force-confold micropvr_1.9.0-1.deb micropvr-control_1.9.0-1.deb '
        'micropvs_1.9.0-1.deb',
        # data of the old version in place BEFORE its postinst runs (migration tools refuse newer schemas)
        'config', 'sqlite', 'databases',
        'dpkg --configure --force-confdef --force-confold micropvr micropvr-control micropvs',
        'config',  # dpkg's conffile handling cannot leave a file different from the set
        'apt-mark hold micropvr micropvr-control micropvs',
        'micropvr start', 'micropvs start',
    ]


def test_restore_of_data_only_touches_no_package(fake_host):
    module, manifest = fake_host(ROLLBACK, ROLLBACK)
    micropvr_restore.apply_set(module, '/set', manifest, ['micropvr'], False)
    assert module.calls == ['micropvr stop', 'config', 'sqlite', 'databases', 'config', 'micropvr start']


@pytest.mark.parametrize('fail, step', [
    ('dpkg --unpack', 'unpack the saved packages'),
    ('sqlite', 'restore the SQLite databases'),
    ('databases', 'restore the external databases'),
    ('dpkg --configure', 'configure the packages'),
    ('micropvs start', 'start the services'),
])
def test_a_failed_step_is_named(fake_host, fail, step):
    module, manifest = fake_host(NEWER, ROLLBACK, fail=fail)
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert str(excinfo.value).startswith(step + ': ')
    assert excinfo.value.touched is True


def test_a_failure_to_stop_changes_nothing(fake_host):
    module, manifest = fake_host(NEWER, ROLLBACK, fail='micropvs stop')
    with pytest.raises(micropvr_restore.StepFailed) as excinfo:
        micropvr_restore.apply_set(module, '/set', manifest, ['micropvr', 'micropvs'], True)
    assert excinfo.value.touched is False
    assert module.calls == ['micropvr stop', 'micropvs stop']
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
    assert module.calls[0] == 'micropvr stop'
    assert module.calls[-1] == 'micropvr start'
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
