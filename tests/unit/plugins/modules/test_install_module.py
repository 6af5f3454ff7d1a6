"""micropvr_install: which dpkg states are an unfinished package operation; the state directory check."""

import datetime
import os

import pytest
from ansible.module_utils import basic

from local_servers import RPCServer
from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import parse_dpkg_query
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_install
from ansible_collections.microimpuls.micropvr.plugins.modules.micropvr_install import unfinished_packages


def installed(*lines):
    return parse_dpkg_query(''.join('%s\t1.10.0-1\tamd64\t100\t%s\n' % line for line in lines))


@pytest.mark.parametrize('status', ['install ok half-configured', 'install reinstreq half-installed',
                                    'install ok unpacked', 'install ok triggers-pending'])
def test_interrupted_states_are_unfinished(status):
    packages = installed(('micropvr', status), ('micropvs', 'install ok installed'))
    assert unfinished_packages(packages) == {'micropvr': status.split()[-1]}


@pytest.mark.parametrize('status', ['install ok installed', 'deinstall ok config-files', 'unknown ok not-installed'])
def test_installed_or_absent_packages_are_not_unfinished(status):
    assert unfinished_packages(installed(('micropvr', status))) == {}


# --- the state directory is checked before anything else -----------------------------------------

@pytest.fixture
def no_commands(monkeypatch):
    """Any command the module would run (dpkg-query, apt-get) fails the test."""
    def refuse(self, args, **kwargs):
        raise AssertionError('the module ran %r before checking its state directory' % (args,))
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', refuse)


@pytest.mark.parametrize('args', [dict(), dict(_ansible_check_mode=True), dict(preflight=True)])
@pytest.mark.parametrize('path, reason', [
    ('/tmp', '/tmp is a system directory'),
    ('/home', '/home is a system directory'),
    ('', "'' is not set"),
    ('state', 'state is not an absolute path'),
])
def test_a_bad_state_dir_is_refused_first(capsys, no_commands, args, path, reason):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', backup_id='20261126T220000Z',
                            state_dir=path, **args)
    assert code == 1
    assert result['msg'].startswith('refusing to install 1.10.0-1: micropvr_state_dir: %s' % reason)


def test_a_state_dir_of_another_user_is_refused(tmp_path, capsys, no_commands):
    os.chown(str(tmp_path), 54321, -1)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', backup_id='20261126T220000Z',
                            state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 1
    assert 'micropvr_state_dir: %s is owned by uid 54321' % tmp_path in result['msg']


# --- diff mode: the package versions before and after -------------------------------------------

class FakeApt(object):
    """dpkg-query answers with the installed versions, apt-cache madison offers ``offered``,
    apt-get install moves every package to the version it was asked for, apt-mark succeeds."""

    def __init__(self, installed, offered):
        self.installed, self.offered, self.calls = dict(installed), offered, []

    def __call__(self, module, args, **kwargs):
        tool = os.path.basename(args[0])
        self.calls.append(' '.join([tool] + list(args[1:])))
        if tool == 'dpkg-query':
            names = [a for a in args[1:] if a in self.installed]
            return 0, ''.join('%s\t%s\tamd64\t100\tinstall ok installed\n' % (n, self.installed[n]) for n in names), ''
        if tool == 'apt-cache':
            return 0, ''.join(' %s | %s | http://repo stable/main amd64 Packages\n' % (args[-1], v)
                              for v in self.offered), ''
        if tool == 'apt-get':
            for spec in args:
                if '=' in spec and not spec.startswith('Dpkg'):
                    name, version = spec.split('=', 1)
                    self.installed[name] = version
            return 0, '', ''
        return 0, '', ''


def use_fake_apt(monkeypatch, fake):
    """Every command the module runs goes to ``fake``; every tool is found in /usr/bin."""
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, args, **kwargs: fake(self, args, **kwargs))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, *a, **k: '/usr/bin/' + name)


@pytest.fixture
def apt(monkeypatch):
    fake = FakeApt({'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}, ['1.10.0-1', '1.9.0-1'])
    use_fake_apt(monkeypatch, fake)
    return fake


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / 'state'
    path.mkdir(mode=0o700)
    return str(path)


EXPECTED_DIFF = dict(before='micropvr 1.9.0-1\nmicropvs 1.9.0-1\n', after='micropvr 1.10.0-1\nmicropvs 1.10.0-1\n',
                     before_header='installed packages', after_header='packages after installing 1.10.0-1')


def test_check_mode_with_diff_shows_the_versions_and_installs_nothing(capsys, apt, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, _ansible_check_mode=True, _ansible_diff=True)
    assert (code, result['changed']) == (0, True), result
    assert result['diff'] == EXPECTED_DIFF
    assert not [call for call in apt.calls if call.startswith(('apt-get', 'apt-mark'))]


def test_an_install_with_diff_shows_the_versions_installed_after(capsys, apt, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, _ansible_diff=True)
    assert (code, result['changed']) == (0, True), result
    assert result['diff'] == EXPECTED_DIFF
    assert any(call.startswith('apt-get install') for call in apt.calls)


def test_nothing_to_install_shows_an_empty_diff(capsys, apt, state_dir):
    apt.installed = {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, _ansible_check_mode=True, _ansible_diff=True)
    assert (code, result['changed']) == (0, False), result
    assert result['diff']['before'] == result['diff']['after'] == 'micropvr 1.10.0-1\nmicropvs 1.10.0-1\n'


@pytest.mark.parametrize('extra', [dict(_ansible_check_mode=True), dict(preflight=True, _ansible_diff=True)])
def test_no_diff_without_diff_mode_or_in_preflight(capsys, apt, state_dir, extra):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, **extra)
    assert code == 0, result
    assert 'diff' not in result


# --- which services the caller must restart after the install ----------------------------------------

def test_check_mode_plans_a_restart_of_every_service(capsys, apt, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, services=['micropvr', 'live555_mi'], _ansible_check_mode=True)
    assert code == 0, result
    assert result['restart_services'] == ['micropvr', 'live555_mi']
    assert result['services']['live555_mi'] == dict(running=None, fresh=False, pids=[],
                                                     reason='check mode: decided after a real install')


def test_preflight_decides_no_restart(capsys, apt, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', preflight=True, state_dir=state_dir)
    assert code == 0, result
    assert (result['services'], result['restart_services']) == ({}, [])


def facts_args(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{\n  // a comment, as in the vendor sample\n  "records-db-path": "%s"\n}\n' % (tmp_path / 'records.db'))
    return dict(config_file=str(conf), nginx_config=str(tmp_path / 'nginx.conf'), services=['micropvr'],
                backup_root=str(tmp_path / 'backups'))


def test_preflight_with_facts_returns_what_micropvr_facts_gathers(capsys, apt, state_dir, tmp_path):
    """One task before an update instead of two: the same facts, from the pre-flight's own dpkg-query."""
    from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_facts
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', preflight=True, facts=True,
                            state_dir=state_dir, **facts_args(tmp_path))
    assert code == 0, result
    assert result['changed'] is False
    install_queries = [call for call in apt.calls if call.startswith('dpkg-query')]
    assert len(install_queries) == 1
    code, gathered = run_main(micropvr_facts.main, capsys, **facts_args(tmp_path))
    assert code == 0, gathered
    ours, theirs = result['ansible_facts']['micropvr'], gathered['ansible_facts']['micropvr']
    for facts in (ours, theirs):
        # Free space is measured twice, and may move in between.
        facts['backup_root'].pop('free_bytes')
    assert ours == theirs
    assert ours['packages']['micropvr']['version'] == '1.9.0-1'
    assert ours['config']['valid'] is True
    assert ours['sqlite_databases'] == [str(tmp_path / 'records.db')]
    assert ours['services']['micropvr']['state'] in ('absent', 'running', 'stopped', 'unknown')
    assert ours['tools'] == {}


@pytest.mark.parametrize('extra', [dict(allow_without_backup=True), dict(preflight=True)])
def test_without_facts_the_preflight_returns_none(capsys, apt, state_dir, tmp_path, extra):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', state_dir=state_dir,
                            _ansible_check_mode=True, **dict(extra, **facts_args(tmp_path)))
    assert code == 0, result
    assert 'ansible_facts' not in result


@pytest.mark.parametrize('extra', [dict(), dict(_ansible_check_mode=True)])
def test_facts_without_preflight_are_refused_before_anything_runs(capsys, no_commands, state_dir, extra):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', backup_id='20261126T220000Z',
                            facts=True, state_dir=state_dir, **extra)
    assert code == 1
    assert result['msg'] == 'facts: only with preflight=true (an install changes what the facts say)'


@pytest.mark.parametrize('extra, lock_owner', [
    (dict(preflight=True), None), (dict(preflight=True), '20261203T020000Z-update-pvr1'),
    (dict(_ansible_check_mode=True), '20261203T020000Z-update-pvr1'),
    # A real install under a run's lock is the Molecule update scenario's; without one it is this.
    (dict(), None),
])
def test_the_result_names_the_run_it_belongs_to(capsys, apt, state_dir, extra, lock_owner):
    """The update role tells this run's install from one an earlier run left in its variable by it."""
    args = dict(extra, lock_owner=lock_owner) if lock_owner else extra
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, **args)
    assert code == 0, result
    assert result['lock_owner'] == lock_owner


def test_after_an_install_a_service_without_init_script_is_to_restart(capsys, apt, state_dir):
    """Nothing proves it runs the new version, so the caller restarts it (and fails there, as before)."""
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, services=['no-such-service-16'])
    assert code == 0, result
    assert result['restart_services'] == ['no-such-service-16']
    assert result['services']['no-such-service-16']['fresh'] is False
    assert result['services']['no-such-service-16']['reason'].startswith(
        'no executable init script /etc/init.d/no-such-service-16')


# --- update_cache: apt's lists refreshed before the version checks --------------------------------

class FlakyUpdate(FakeApt):
    """FakeApt whose apt-get update fails ``failures`` times first (a mirror briefly away)."""

    def __init__(self, installed, offered, failures):
        super(FlakyUpdate, self).__init__(installed, offered)
        self.failures = failures

    def __call__(self, module, args, **kwargs):
        if os.path.basename(args[0]) == 'apt-get' and args[1] == 'update':
            assert args[1:] == ['update', '-q', '-o', 'APT::Update::Error-Mode=any'], args
            self.calls.append('apt-get update')
            if self.failures:
                self.failures -= 1
                return 100, '', 'E: Failed to fetch http://mirror.example/dists/bookworm/InRelease  404  Not Found\n'
            return 0, 'Reading package lists...\n', ''
        return super(FlakyUpdate, self).__call__(module, args, **kwargs)


@pytest.fixture
def flaky(monkeypatch):
    def make(failures):
        fake = FlakyUpdate({'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}, ['1.10.0-1', '1.9.0-1'], failures)
        use_fake_apt(monkeypatch, fake)
        monkeypatch.setattr(micropvr_install.time, 'sleep', lambda seconds: fake.calls.append('sleep %s' % seconds))
        return fake
    return make


@pytest.mark.parametrize('extra', [dict(preflight=True), dict(preflight=True, _ansible_check_mode=True)])
def test_update_cache_refreshes_the_lists_before_the_version_checks(capsys, flaky, state_dir, extra):
    fake = flaky(0)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', update_cache=True,
                            state_dir=state_dir, **extra)
    assert (code, result['changed']) == (0, False), result
    assert fake.calls[0] == 'apt-get update'
    assert [call for call in fake.calls if call.startswith('apt-cache madison')]


def test_without_update_cache_the_lists_are_left_alone(capsys, flaky, state_dir):
    fake = flaky(0)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', preflight=True, state_dir=state_dir)
    assert code == 0, result
    assert 'apt-get update' not in fake.calls


def test_update_cache_retries_a_failed_refresh(capsys, flaky, state_dir):
    fake = flaky(2)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', preflight=True, update_cache=True,
                            state_dir=state_dir)
    assert code == 0, result
    assert fake.calls[:5] == ['apt-get update', 'sleep 1', 'apt-get update', 'sleep 2', 'apt-get update']


def test_update_cache_fails_naming_apt_and_checks_nothing(capsys, flaky, state_dir):
    fake = flaky(5)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', preflight=True, update_cache=True,
                            state_dir=state_dir)
    assert code == 1
    assert result['msg'] == ('update_cache: apt-get update failed (rc=100) 5 times, the package lists are not refreshed: '
                             'E: Failed to fetch http://mirror.example/dists/bookworm/InRelease  404  Not Found')
    assert fake.calls == ['apt-get update', 'sleep 1', 'apt-get update', 'sleep 2', 'apt-get update', 'sleep 4',
                          'apt-get update', 'sleep 8', 'apt-get update']


# --- restart and health: install, restart what needs it and check health in one task ----------------

class ServiceApt(FakeApt):
    """FakeApt whose init scripts (under a temporary INIT_DIR) answer ``restart`` with ``restart_rc``."""

    def __init__(self, installed, offered, init_dir, restart_rc):
        super(ServiceApt, self).__init__(installed, offered)
        self.init_dir, self.restart_rc = init_dir, restart_rc

    def __call__(self, module, args, **kwargs):
        if args[0].startswith(self.init_dir + '/'):
            name, action = os.path.basename(args[0]), args[1]
            self.calls.append('%s %s' % (name, action))
            if action == 'restart':
                return self.restart_rc.get(name, 0), '', 'Restarting %s: failed\n' % name if self.restart_rc.get(name) else ''
            return 0, '', ''
        return super(ServiceApt, self).__call__(module, args, **kwargs)


@pytest.fixture
def service_host(monkeypatch, tmp_path):
    """An install host with init scripts for micropvr and micropvs; the install leaves micropvs
    on its old process (to restart) and micropvr started by its maintainer scripts (fresh)."""
    init_dir = str(tmp_path / 'init.d')
    os.makedirs(init_dir)
    for name in ('micropvr', 'micropvs'):
        path = os.path.join(init_dir, name)
        with open(path, 'w') as handle:
            handle.write('#!/bin/sh\nexit 0\n')
        os.chmod(path, 0o755)
    fake = ServiceApt({'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}, ['1.10.0-1', '1.9.0-1'], init_dir, {})
    use_fake_apt(monkeypatch, fake)
    monkeypatch.setattr(micropvr_install.services, 'INIT_DIR', init_dir)
    decided = dict(micropvr=dict(running=True, fresh=True, pids=[11], reason='started by the install'),
                   micropvs=dict(running=True, fresh=False, pids=[7], reason='started before the install'))
    monkeypatch.setattr(micropvr_install.services, 'service_freshness',
                        lambda module, names, packages, started: (decided, ['micropvs']))
    fake.health = dict(healthy=True, attempts=1, failed_probes=[], probes={'rpc': dict(ok=True, detail='is_alive=true')})

    def check(module, options):
        fake.calls.append('health %s:%d retries %d' % (options['rpc_host'], options['rpc_port'], options['retries']))
        return fake.health
    monkeypatch.setattr(micropvr_install.healthcheck, 'check', check)
    return fake


HEALTH = dict(rpc_port=4099, retries=2, delay=0)


def service_calls(fake):
    return [call for call in fake.calls if call.startswith(('micropvr ', 'micropvs ', 'health '))]


@pytest.mark.parametrize('restart, restarted', [('auto', ['micropvs']), ('always', ['micropvr', 'micropvs']),
                                                ('none', [])])
def test_restart_then_health_after_the_install(capsys, service_host, state_dir, restart, restarted):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart=restart, health=HEALTH)
    assert (code, result['changed']) == (0, True), result
    assert result['restarted'] == restarted
    assert result['restart_services'] == ['micropvs']
    assert result['health']['healthy'] is True
    assert service_calls(service_host) == ['%s restart' % name for name in restarted] + [
        'health 127.0.0.1:4099 retries 2']
    assert service_host.calls.index('apt-get install -y -q --allow-change-held-packages -o '
                                    'Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold '
                                    'micropvr=1.10.0-1 micropvs=1.10.0-1') < service_host.calls.index(
                                        service_calls(service_host)[0])


def test_without_restart_and_health_the_module_leaves_the_services_alone(capsys, service_host, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir)
    assert code == 0, result
    assert (result['restarted'], result['restart_services']) == ([], ['micropvs'])
    assert 'health' not in result
    assert service_calls(service_host) == []


def test_a_service_that_does_not_restart_fails_saying_the_version_was_installed(capsys, service_host, state_dir):
    service_host.restart_rc = dict(micropvs=1)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart='always', health=HEALTH)
    assert code == 1
    assert result['msg'] == '1.10.0-1 was installed, but micropvs does not restart (rc=1): Restarting micropvs: failed'
    assert result['changed'] is True and result['restarted'] == ['micropvr']
    assert result['to_versions'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}
    assert result['gate'] == 'overridden'
    assert service_calls(service_host) == ['micropvr restart', 'micropvs restart']  # no health check after it


def test_unhealthy_after_the_install_fails_naming_the_probe(capsys, service_host, state_dir):
    service_host.health = dict(healthy=False, attempts=2, failed_probes=['rpc'],
                               probes={'rpc': dict(ok=False, detail='is_alive=false (score 0.0, 0 sessions)')})
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart='auto', health=HEALTH)
    assert code == 1
    assert result['msg'] == ('1.10.0-1 was installed and micropvs restarted, but MicroPVR is not healthy after 2 '
                             'attempt(s): rpc probe failed: is_alive=false (score 0.0, 0 sessions)')
    assert result['changed'] is True and result['health']['healthy'] is False
    assert result['to_versions'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}


def test_a_missing_init_script_fails_with_the_install_result(capsys, service_host, state_dir):
    os.remove(os.path.join(service_host.init_dir, 'micropvs'))
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart='auto', health=HEALTH)
    assert code == 1
    assert result['msg'] == 'services: micropvs has no init script %s/micropvs' % service_host.init_dir
    assert result['to_versions'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'} and result['gate'] == 'overridden'
    assert result['changed'] is True


@pytest.mark.parametrize('extra', [dict(_ansible_check_mode=True), dict(preflight=True)])
def test_check_mode_and_preflight_restart_nothing_and_probe_nothing(capsys, service_host, state_dir, extra):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart='always', health=HEALTH, **extra)
    assert code == 0, result
    assert result['restarted'] == [] and 'health' not in result
    assert service_calls(service_host) == []


def test_nothing_installed_restarts_nothing_and_probes_nothing(capsys, service_host, state_dir):
    service_host.installed = {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, restart='always', health=HEALTH)
    assert (code, result['changed']) == (0, False), result
    assert service_calls(service_host) == []


def test_health_retries_below_one_is_refused_before_anything_runs(capsys, no_commands, state_dir):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, health=dict(retries=0))
    assert code == 1
    assert result['msg'] == 'health.retries must be at least 1, got 0'


# --- drain: subscribers leave just before the install ------------------------------------------------

@pytest.fixture
def sessions_server(serve):
    """A JSON-RPC server whose n-th is_alive answers counts[n] sessions (the last one repeats);
    ``apt_calls_seen`` keeps how many commands the module had run at each answer."""
    def start(counts, apt):
        server = None

        def answer(index):
            server.apt_calls_seen.append(len([c for c in apt.calls if c.startswith('apt-get install')]))
            return {'is_alive': True, 'score': 1.0, 'session_count': counts[min(index, len(counts)) - 1]}
        server = serve(RPCServer(answer))
        server.apt_calls_seen = []
        return server
    return start


def drain_options(port, **extra):
    return dict(dict(sessions=5, timeout=10, interval=0.05, rpc_port=port), **extra)


def test_drain_waits_for_subscribers_before_it_installs(capsys, apt, state_dir, sessions_server):
    server = sessions_server([40, 12, 3], apt)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, drain=drain_options(server.port))
    assert code == 0, result
    assert result['drain']['drained'] is True and result['drain']['session_count'] == 3
    # Every poll came before apt-get install ran, and the install did run.
    assert server.apt_calls_seen == [0, 0, 0]
    assert any(call.startswith('apt-get install') for call in apt.calls)


def test_drain_goes_on_when_sessions_remain_at_the_timeout(capsys, apt, state_dir, sessions_server, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warnings.append(message))
    server = sessions_server([40], apt)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, drain=drain_options(server.port, timeout=1, interval=0.2))
    assert code == 0, result
    assert result['drain']['drained'] is False and result['drain']['session_count'] == 40
    assert '40 sessions remain after 1 s (micropvr_drain_timeout); updating anyway' in warnings
    assert result['to_versions'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}


def test_drain_goes_on_when_the_session_count_cannot_be_read(capsys, apt, state_dir, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warnings.append(message))
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, drain=drain_options(1))
    assert code == 0, result
    assert result['drain'] == dict(drained=False, session_count=None, waited=0.0)
    assert [w for w in warnings if w.startswith('cannot read the session count: is_alive on 127.0.0.1:1')
            and w.endswith('; installing without waiting for subscribers to leave')], warnings
    assert result['to_versions'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}


@pytest.mark.parametrize('extra', [dict(preflight=True), dict(_ansible_check_mode=True)])
def test_no_drain_in_preflight_or_check_mode(capsys, apt, state_dir, sessions_server, extra):
    server = sessions_server([40], apt)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, drain=drain_options(server.port), **extra)
    assert code == 0, result
    assert 'drain' not in result and server.apt_calls_seen == []


def test_no_drain_when_the_host_is_at_the_target(capsys, state_dir, sessions_server, monkeypatch):
    fake = FakeApt({'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}, ['1.10.0-1'])
    use_fake_apt(monkeypatch, fake)
    server = sessions_server([40], fake)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', allow_without_backup=True,
                            state_dir=state_dir, drain=drain_options(server.port))
    assert code == 0 and result['changed'] is False, result
    assert 'drain' not in result and server.apt_calls_seen == []


# --- lock: the pre-flight takes the host lock once its checks passed ------------------------------

RUN = '20261203T020000Z-update-pvr1'


def lock_of(owner, age_seconds, **extra):
    moment = hoststate.utc_now() - datetime.timedelta(seconds=age_seconds)
    return dict(owner=owner, purpose='update to 1.10.0-1', acquired_at=hoststate.iso(moment), **extra)


def preflight_with_lock(capsys, state_dir, version='1.10.0-1', **extra):
    return run_main(micropvr_install.main, capsys, version=version, preflight=True, state_dir=state_dir,
                    lock_owner=RUN, lock=dict(purpose='update to %s' % version, ttl=7200), **extra)


def test_the_preflight_takes_the_lock_once_its_checks_passed(capsys, apt, state_dir):
    code, result = preflight_with_lock(capsys, state_dir)
    assert code == 0, result
    assert result['changed'] is True
    assert (result['lock']['owner'], result['lock']['purpose']) == (RUN, 'update to 1.10.0-1')
    assert hoststate.read_lock(state_dir) == result['lock']
    assert 'interrupted' not in result and 'taken_over' not in result
    # the same run again keeps its lock
    code, again = preflight_with_lock(capsys, state_dir)
    assert (code, again['changed'], again['lock']) == (0, False, result['lock'])


@pytest.mark.parametrize('version, problem', [('1.99.0-1', 'not offered'), ('1.8.0-1', 'older'),
                                              ('1.10.0_1', 'malformed')])
def test_a_preflight_that_refuses_the_version_takes_no_lock(capsys, apt, state_dir, version, problem):
    code, result = preflight_with_lock(capsys, state_dir, version=version)
    assert code == 1, (problem, result)
    assert 'lock' not in result
    assert hoststate.read_lock(state_dir) is None


def test_another_runs_lock_refuses_the_preflight_and_stays(capsys, apt, state_dir):
    theirs = lock_of('20261203T010000Z-update-pvr1', 60)
    hoststate.create_lock(state_dir, theirs)
    code, result = preflight_with_lock(capsys, state_dir)
    assert code == 1
    assert result['msg'].startswith('refusing to update to 1.10.0-1: the host is locked by another run (update to '
                                    '1.10.0-1, owner 20261203T010000Z-update-pvr1, since ')
    assert result['msg'].endswith('; nothing was changed')
    assert result['lock'] == theirs
    assert hoststate.read_lock(state_dir) == theirs


def test_an_interrupted_runs_lock_is_taken_over_and_returned(capsys, apt, state_dir, monkeypatch):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, message: warned.append(message))
    step = dict(name='install', backup_id='20261203T010100Z', pid=999999, started_at='2026-12-03T01:02:00Z')
    hoststate.create_lock(state_dir, lock_of('20261203T010000Z-update-pvr1', 30, step=step))
    code, result = preflight_with_lock(capsys, state_dir)
    assert code == 0, result
    assert result['interrupted'] == dict(owner='20261203T010000Z-update-pvr1', purpose='update to 1.10.0-1', step=step)
    assert result['taken_over']['owner'] == '20261203T010000Z-update-pvr1'
    assert hoststate.read_lock(state_dir)['owner'] == RUN
    assert len(warned) == 1 and 'was interrupted during its install step' in warned[0]


def test_in_check_mode_the_preflight_looks_at_the_lock_and_takes_none(capsys, apt, state_dir):
    code, result = preflight_with_lock(capsys, state_dir, _ansible_check_mode=True)
    assert code == 0, result
    assert result['lock']['owner'] == RUN
    assert hoststate.read_lock(state_dir) is None


@pytest.mark.parametrize('extra, message', [
    (dict(backup_id='20261203T010100Z', lock_owner=RUN),
     'lock: only with preflight=true (an install runs as a step of a lock already taken, lock_owner)'),
    (dict(preflight=True), 'lock: needs lock_owner, the run that takes the lock'),
])
def test_a_lock_outside_a_preflight_or_without_an_owner_is_refused_before_anything_runs(capsys, no_commands,
                                                                                          state_dir, extra, message):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', state_dir=state_dir,
                            lock=dict(purpose='update to 1.10.0-1'), **extra)
    assert (code, result['msg']) == (1, message)
    assert hoststate.read_lock(state_dir) is None
