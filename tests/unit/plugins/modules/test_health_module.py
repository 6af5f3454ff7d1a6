"""Unit tests for plugins/modules/micropvr_health.py against real local servers.

A threading JSON-RPC server answers ``is_alive``, ``http.server`` answers the HTTP probe, and a
small shell script stands in for the nginx binary.
"""

import json
import os
import socket
import stat
import subprocess
import tempfile
import time

import pytest
import yaml

from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import databases as databases_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import rpc as rpc_fragment
from ansible_collections.microimpuls.micropvr.plugins.doc_fragments import state_dir as state_dir_fragment
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_health
from ansible_collections.microimpuls.micropvr.plugins.module_utils import health
from ansible_collections.microimpuls.micropvr.plugins.module_utils.health import probe_http, probe_nginx, probe_rpc
from ansible_collections.microimpuls.micropvr.plugins.modules.micropvr_health import main

from local_servers import HTTPServer, RPCServer
from module_runner import run_main

ALIVE = {'is_alive': True, 'score': 12.5, 'session_count': 3}
DEAD = {'is_alive': False, 'score': 1000.0, 'session_count': 0}


# --- servers -------------------------------------------------------------------------------------

@pytest.fixture
def rpc(serve):
    def start(answer):
        if isinstance(answer, dict):
            answer = (lambda result: lambda index: result)(answer)
        return serve(RPCServer(answer))
    return start


@pytest.fixture
def web(serve):
    return serve(HTTPServer())


@pytest.fixture
def closed_port():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


# --- a fake nginx --------------------------------------------------------------------------------

NGINX_EMERG = 'nginx: [emerg] unknown directive "bogus" in %s:3'


def make_nginx(tmp_path, rc=0, stderr='', stdout=''):
    """A script that records its arguments (one a line) in args.txt next to it, then prints and exits."""
    directory = tmp_path / 'bin'
    directory.mkdir(exist_ok=True)
    script = directory / 'nginx'
    script.write_text('#!/bin/sh\n'
                      'printf "%%s\\n" "$@" > "%s"\n'
                      'printf "%%s" "%s"\n'
                      'printf "%%s" "%s" >&2\n'
                      'exit %d\n' % (directory / 'args.txt', stdout, stderr.replace('"', '\\"'), rc))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def nginx_args(binary):
    with open(os.path.join(os.path.dirname(binary), 'args.txt')) as handle:
        return handle.read().splitlines()


@pytest.fixture
def nginx_conf(tmp_path):
    conf = tmp_path / 'nginx-micropvr' / 'conf' / 'nginx.conf'
    conf.parent.mkdir(parents=True)
    conf.write_text('events {}\nhttp {}\n')
    return str(conf)


# --- a fake module for the probes ----------------------------------------------------------------

DEFAULTS = dict(checks=['rpc', 'http', 'nginx'], rpc_host='127.0.0.1', rpc_port=4089,
                http_url='http://127.0.0.1:8080/nginx-stats', nginx_config='/usr/local/nginx-micropvr/conf/nginx.conf',
                nginx_binary='/usr/sbin/nginx', timeout=5.0, retries=1, delay=3.0, fail_on_unhealthy=True,
                state_dir='/var/lib/microimpuls-micropvr')


class FakeModule(object):
    def __init__(self, tmp_path, **params):
        self.params = dict(DEFAULTS, state_dir=str(tmp_path / 'state'), **params)
        self.tmpdir = str(tmp_path)
        self.commands = []

    def run_command(self, args, **kwargs):
        self.commands.append(list(args))
        env = dict(os.environ, **(kwargs.get('environ_update') or {}))
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
        return proc.returncode, proc.stdout, proc.stderr

    def get_bin_path(self, name, required=False, opt_dirs=None):
        path = os.path.join(self.tmpdir, 'bin', name)
        return path if os.path.exists(path) else None

    def fail_json(self, **kwargs):
        raise AssertionError('fail_json(%r)' % (kwargs,))


@pytest.fixture(autouse=True)
def keep_tempdir(monkeypatch):
    """fetch_url() points tempfile.tempdir at the module's tmpdir; put it back after each test."""
    monkeypatch.setattr(tempfile, 'tempdir', tempfile.tempdir)


# --- probe_rpc -----------------------------------------------------------------------------------

def test_probe_rpc_alive(rpc, tmp_path):
    server = rpc(ALIVE)
    assert probe_rpc(FakeModule(tmp_path, rpc_port=server.port)) == {
        'ok': True, 'detail': 'is_alive=true (score 12.5, 3 sessions)', 'result': ALIVE}
    assert server.requests == [{'jsonrpc': '2.0', 'id': 1, 'method': 'is_alive', 'params': {}}]


def test_probe_rpc_not_alive(rpc, tmp_path):
    server = rpc(DEAD)
    assert probe_rpc(FakeModule(tmp_path, rpc_port=server.port)) == {
        'ok': False, 'detail': 'is_alive=false (score 1000.0, 0 sessions)', 'result': DEAD}


def test_probe_rpc_without_score(rpc, tmp_path):
    server = rpc({'is_alive': True})
    assert probe_rpc(FakeModule(tmp_path, rpc_port=server.port)) == {
        'ok': True, 'detail': 'is_alive=true (score None, None sessions)', 'result': {'is_alive': True}}


@pytest.mark.parametrize('result, shown', [
    ([True], '[True]'),
    ({'alive': True}, "{'alive': True}"),
    (None, 'None'),
])
def test_probe_rpc_unexpected_result(rpc, tmp_path, result, shown):
    server = rpc(lambda index: result)
    assert probe_rpc(FakeModule(tmp_path, rpc_port=server.port)) == {
        'ok': False, 'detail': 'is_alive returned %s' % shown, 'result': result}


@pytest.mark.parametrize('value', [1, 'true', 'yes'])
def test_probe_rpc_needs_a_real_true(rpc, tmp_path, value):
    server = rpc({'is_alive': value, 'score': 1, 'session_count': 0})
    assert probe_rpc(FakeModule(tmp_path, rpc_port=server.port))['ok'] is False


def test_probe_rpc_nothing_listening(tmp_path, closed_port):
    outcome = probe_rpc(FakeModule(tmp_path, rpc_port=closed_port, timeout=2.0))
    assert outcome['ok'] is False and 'result' not in outcome
    assert outcome['detail'].startswith('is_alive on 127.0.0.1:%d: ' % closed_port)
    assert 'Connection refused' in outcome['detail']


# --- probe_http ----------------------------------------------------------------------------------

def test_probe_http_ok(web, tmp_path):
    assert probe_http(FakeModule(tmp_path, http_url=web.url('/nginx-stats'))) == {
        'ok': True, 'detail': 'HTTP 200', 'status': 200}
    assert web.paths == ['/nginx-stats']


def test_probe_http_any_2xx(web, tmp_path):
    assert probe_http(FakeModule(tmp_path, http_url=web.url('/empty'))) == {
        'ok': True, 'detail': 'HTTP 204', 'status': 204}


def test_probe_http_server_error(web, tmp_path):
    outcome = probe_http(FakeModule(tmp_path, http_url=web.url('/fail')))
    assert outcome['ok'] is False and outcome['status'] == 500
    assert outcome['detail'].startswith('%s: HTTP 500 ' % web.url('/fail'))


def test_probe_http_nothing_listening(tmp_path, closed_port):
    url = 'http://127.0.0.1:%d/nginx-stats' % closed_port
    outcome = probe_http(FakeModule(tmp_path, http_url=url, timeout=2.0))
    assert outcome['ok'] is False and outcome['status'] == -1
    assert outcome['detail'].startswith('%s: HTTP -1 Request failed: ' % url)


# --- probe_nginx ---------------------------------------------------------------------------------

def test_probe_nginx_ok_and_command_line(tmp_path, nginx_conf):
    binary = make_nginx(tmp_path, rc=0)
    module = FakeModule(tmp_path, nginx_binary=binary, nginx_config=nginx_conf)
    assert probe_nginx(module) == {'ok': True, 'detail': 'configuration test passed'}
    prefix = str(tmp_path / 'nginx-micropvr') + '/'
    expected = [binary, '-t', '-q', '-p', prefix, '-c', nginx_conf]
    assert module.commands == [expected]
    assert nginx_args(binary) == expected[1:]  # what the binary really received


def test_probe_nginx_config_error(tmp_path, nginx_conf):
    binary = make_nginx(tmp_path, rc=1, stderr=NGINX_EMERG % nginx_conf + '\n')
    module = FakeModule(tmp_path, nginx_binary=binary, nginx_config=nginx_conf)
    assert probe_nginx(module) == {'ok': False, 'detail': 'nginx -t: ' + NGINX_EMERG % nginx_conf}


def test_probe_nginx_error_on_stdout_only(tmp_path, nginx_conf):
    binary = make_nginx(tmp_path, rc=1, stdout='  test failed  \n')
    module = FakeModule(tmp_path, nginx_binary=binary, nginx_config=nginx_conf)
    assert probe_nginx(module) == {'ok': False, 'detail': 'nginx -t: test failed'}


def test_probe_nginx_prefers_stderr(tmp_path, nginx_conf):
    binary = make_nginx(tmp_path, rc=1, stdout='noise', stderr='nginx: [emerg] broken')
    module = FakeModule(tmp_path, nginx_binary=binary, nginx_config=nginx_conf)
    assert probe_nginx(module)['detail'] == 'nginx -t: nginx: [emerg] broken'


def test_probe_nginx_missing_config(tmp_path):
    binary = make_nginx(tmp_path, rc=0)
    missing = str(tmp_path / 'nope' / 'conf' / 'nginx.conf')
    module = FakeModule(tmp_path, nginx_binary=binary, nginx_config=missing)
    assert probe_nginx(module) == {'ok': False, 'detail': '%s does not exist' % missing}
    assert module.commands == []


# --- probe_databases -----------------------------------------------------------------------------

def make_psql(tmp_path, rc=0, stderr=''):
    """A psql that records its arguments and the password file it was given, then answers."""
    directory = tmp_path / 'bin'
    directory.mkdir(exist_ok=True)
    script = directory / 'psql'
    script.write_text('#!/bin/sh\n'
                      'printf "%%s\\n" "$@" > "%(dir)s/psql-args.txt"\n'
                      'if [ -n "$PGPASSFILE" ]; then cat "$PGPASSFILE" > "%(dir)s/pgpass.txt"; '
                      'echo "$PGPASSFILE" > "%(dir)s/pgpassfile.txt"; fi\n'
                      'printf "%%s" "%(stderr)s" >&2\n'
                      'exit %(rc)d\n' % dict(dir=directory, stderr=stderr.replace('"', '\\"'), rc=rc))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


DB = {'engine': 'postgresql', 'name': 'micropvr', 'host': 'db1', 'port': 5432, 'login_user': 'pvr',
      'login_password': 's3cret', 'socket': None, 'login_password_file': None}
PSQL_REFUSED = 'psql: error: connection to server at "db1", port 5432 failed: Connection refused'


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The shared temporary directory, which the probe must not use any more."""
    work = tmp_path / 'tmp'
    work.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(work))
    return work


def test_probe_databases_answers(tmp_path, private_tmp):
    psql = make_psql(tmp_path, rc=0)
    module = FakeModule(tmp_path, databases=[DB])
    assert health.probe_databases(module) == {'ok': True, 'detail': '1 database(s) answer'}
    assert module.commands == [[psql, '--no-psqlrc', '--no-password', '--tuples-only', '--command', 'SELECT 1',
                                '--host', 'db1', '--port', '5432', '--username', 'pvr', '--dbname', 'micropvr']]
    assert (tmp_path / 'bin' / 'pgpass.txt').read_text() == '*:*:*:*:s3cret\n'
    # The password file was in a private directory under <state_dir>/work, now gone; nothing in /tmp.
    workdir = os.path.dirname((tmp_path / 'bin' / 'pgpassfile.txt').read_text().strip())
    assert os.path.dirname(workdir) == str(tmp_path / 'state' / 'work')
    assert os.path.basename(workdir).startswith('health-%d-' % os.getpid())
    assert list((tmp_path / 'state' / 'work').iterdir()) == []
    assert stat.S_IMODE(os.stat(str(tmp_path / 'state')).st_mode) == 0o700
    assert list(private_tmp.iterdir()) == []


def test_probe_databases_does_not_answer(tmp_path, private_tmp):
    make_psql(tmp_path, rc=2, stderr=PSQL_REFUSED + '\n')
    module = FakeModule(tmp_path, databases=[DB, dict(DB, name='other')])
    assert health.probe_databases(module) == {
        'ok': False,
        'detail': 'postgresql database micropvr does not answer: %s; postgresql database other does not answer: %s'
                  % (PSQL_REFUSED, PSQL_REFUSED)}
    assert list(private_tmp.iterdir()) == []
    assert list((tmp_path / 'state' / 'work').iterdir()) == []


def test_probe_databases_removes_the_credentials_a_killed_health_check_left(tmp_path, private_tmp):
    work_root = tmp_path / 'state' / 'work'
    work_root.mkdir(parents=True, mode=0o700)
    os.chmod(str(tmp_path / 'state'), 0o700)
    proc = subprocess.Popen(['true'])
    proc.wait()
    leftover = work_root / ('health-%d-x1y2z3' % proc.pid)
    leftover.mkdir(mode=0o700)
    (leftover / 'pgpass').write_text('*:*:*:*:old-secret\n')
    make_psql(tmp_path, rc=0)
    assert health.probe_databases(FakeModule(tmp_path, databases=[DB]))['ok'] is True
    assert list(work_root.iterdir()) == []


def test_probe_databases_without_a_private_state_dir(tmp_path, private_tmp):
    make_psql(tmp_path, rc=0)
    os.chmod(str(tmp_path), 0o777)
    try:
        result = health.probe_databases(FakeModule(tmp_path, databases=[DB]))
    finally:
        os.chmod(str(tmp_path), 0o700)
    assert result['ok'] is False
    assert result['detail'].startswith('no private directory for the credentials: state_dir: %s' % (tmp_path / 'state'))
    assert not (tmp_path / 'state').exists() and not (tmp_path / 'bin' / 'pgpass.txt').exists()


def test_probe_databases_without_client(tmp_path, private_tmp):
    module = FakeModule(tmp_path, databases=[DB])
    assert health.probe_databases(module) == {
        'ok': False, 'detail': 'postgresql database micropvr: psql not found (install postgresql-client)'}


def test_probe_databases_none_configured(tmp_path, private_tmp):
    assert health.probe_databases(FakeModule(tmp_path, databases=[])) == {
        'ok': True, 'detail': '0 database(s) answer'}
    assert not (tmp_path / 'state').exists()  # nothing to write, nothing created


# --- main() --------------------------------------------------------------------------------------

@pytest.fixture
def keep_umask():
    """main() sets the process umask to 077; do not let that leak into the rest of the suite."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield
    os.umask(saved)


@pytest.fixture
def run_module(tmp_path, capsys, keep_umask):
    def run(**args):
        args.setdefault('_ansible_tmpdir', str(tmp_path))
        args.setdefault('state_dir', str(tmp_path / 'state'))
        return run_main(main, capsys, **args)
    return run


@pytest.fixture
def healthy_host(rpc, web, tmp_path, nginx_conf):
    """Arguments under which all three probes pass."""
    return dict(rpc_port=rpc(ALIVE).port, http_url=web.url('/nginx-stats'),
                nginx_config=nginx_conf, nginx_binary=make_nginx(tmp_path, rc=0), timeout=2.0)


def test_main_all_probes_ok(run_module, healthy_host):
    rc, result = run_module(**healthy_host)
    assert rc == 0
    assert not result.get('failed')
    assert 'msg' not in result
    assert result['changed'] is False
    assert result['healthy'] is True
    assert result['attempts'] == 1
    assert result['failed_probes'] == []
    assert result['probes'] == {
        'rpc': {'ok': True, 'detail': 'is_alive=true (score 12.5, 3 sessions)', 'result': ALIVE},
        'http': {'ok': True, 'detail': 'HTTP 200', 'status': 200},
        'nginx': {'ok': True, 'detail': 'configuration test passed'},
    }


def test_main_check_mode_is_the_same(run_module, healthy_host):
    rc, result = run_module(_ansible_check_mode=True, **healthy_host)
    assert rc == 0 and result['healthy'] is True and result['changed'] is False


def test_main_is_alive_false(run_module, rpc):
    server = rpc(DEAD)
    rc, result = run_module(checks=['rpc'], rpc_port=server.port, timeout=2.0)
    assert rc == 1
    assert result['failed'] is True
    assert result['msg'] == ('MicroPVR is not healthy after 1 attempt(s): rpc probe failed: '
                             'is_alive=false (score 1000.0, 0 sessions)')
    assert result['healthy'] is False
    assert result['attempts'] == 1
    assert result['failed_probes'] == ['rpc']
    assert list(result['probes']) == ['rpc']
    assert len(server.requests) == 1


def test_main_names_every_failing_probe(run_module, healthy_host, rpc, tmp_path):
    args = dict(healthy_host, rpc_port=rpc(DEAD).port,
                nginx_binary=make_nginx(tmp_path, rc=1, stderr='nginx: [emerg] broken'))
    rc, result = run_module(**args)
    assert rc == 1
    assert result['msg'] == ('MicroPVR is not healthy after 1 attempt(s): '
                             'rpc probe failed: is_alive=false (score 1000.0, 0 sessions); '
                             'nginx probe failed: nginx -t: nginx: [emerg] broken')
    assert result['failed_probes'] == ['rpc', 'nginx']
    assert result['probes']['http']['ok'] is True


def test_main_retries_until_alive(run_module, rpc):
    server = rpc(lambda index: ALIVE if index >= 2 else DEAD)
    rc, result = run_module(checks=['rpc'], rpc_port=server.port, retries=3, delay=0.01, timeout=2.0)
    assert rc == 0
    assert result['healthy'] is True
    assert result['attempts'] == 2
    assert result['failed_probes'] == []
    assert result['probes']['rpc']['ok'] is True
    assert len(server.requests) == 2


def test_main_gives_up_after_retries(run_module, rpc):
    server = rpc(DEAD)
    started = time.monotonic()
    rc, result = run_module(checks=['rpc'], rpc_port=server.port, retries=3, delay=0.1, timeout=2.0)
    assert time.monotonic() - started >= 0.2  # two pauses between three attempts
    assert rc == 1
    assert result['attempts'] == 3
    assert result['msg'].startswith('MicroPVR is not healthy after 3 attempt(s): rpc probe failed: ')
    assert len(server.requests) == 3


@pytest.mark.parametrize('retries', [0, -2])
def test_main_retries_must_be_positive(run_module, retries):
    rc, result = run_module(retries=retries)
    assert rc == 1
    assert result['failed'] is True
    assert result['msg'] == 'retries must be at least 1, got %d' % retries


def test_main_fail_on_unhealthy_false(run_module, rpc):
    server = rpc(DEAD)
    rc, result = run_module(checks=['rpc'], rpc_port=server.port, fail_on_unhealthy=False, timeout=2.0)
    assert rc == 0
    assert not result.get('failed')
    assert 'msg' not in result
    assert result['healthy'] is False
    assert result['failed_probes'] == ['rpc']
    assert result['probes']['rpc']['detail'] == 'is_alive=false (score 1000.0, 0 sessions)'


def test_main_rejects_an_unknown_check(run_module):
    rc, result = run_module(checks=['rpc', 'disk'])
    assert rc == 1
    assert 'disk' in result['msg'] and 'checks' in result['msg']


def test_main_http_probe_failure(run_module, web):
    rc, result = run_module(checks=['http'], http_url=web.url('/fail'), timeout=2.0)
    assert rc == 1
    assert result['msg'].startswith('MicroPVR is not healthy after 1 attempt(s): http probe failed: %s: HTTP 500'
                                    % web.url('/fail'))


def test_main_databases_probe(run_module, tmp_path, monkeypatch, capsys):
    make_psql(tmp_path, rc=0)
    monkeypatch.setenv('PATH', '%s:%s' % (tmp_path / 'bin', os.environ.get('PATH', '')))
    db = dict((key, value) for key, value in DB.items() if value is not None)
    rc, result = run_module(checks=['databases'], databases=[db])
    assert rc == 0
    assert result['healthy'] is True
    assert result['probes'] == {'databases': {'ok': True, 'detail': '1 database(s) answer'}}
    assert 's3cret' not in json.dumps(result)
    assert 's3cret' not in (tmp_path / 'bin' / 'psql-args.txt').read_text()


def test_main_databases_probe_fails(run_module, tmp_path, monkeypatch):
    make_psql(tmp_path, rc=2, stderr=PSQL_REFUSED)
    monkeypatch.setenv('PATH', '%s:%s' % (tmp_path / 'bin', os.environ.get('PATH', '')))
    rc, result = run_module(checks=['databases'], databases=[{'engine': 'postgresql', 'name': 'micropvr'}])
    assert rc == 1
    assert result['msg'] == ('MicroPVR is not healthy after 1 attempt(s): databases probe failed: '
                             'postgresql database micropvr does not answer: ' + PSQL_REFUSED)


def test_main_tightens_the_umask(run_module, rpc):
    # for the password files of the databases probe; the keep_umask fixture puts it back afterwards
    run_module(checks=['rpc'], rpc_port=rpc(ALIVE).port, timeout=2.0)
    current = os.umask(0o077)
    assert current == 0o077


# --- documentation -------------------------------------------------------------------------------

class _Captured(Exception):
    pass


def test_documentation_matches_argument_spec(monkeypatch):
    captured = {}

    def fake_module(**kwargs):
        captured.update(kwargs)
        raise _Captured()

    monkeypatch.setattr(micropvr_health, 'AnsibleModule', fake_module)
    with pytest.raises(_Captured):
        main()
    spec = captured['argument_spec']
    assert captured['supports_check_mode'] is True
    options = yaml.safe_load(micropvr_health.DOCUMENTATION)['options']
    options.update(yaml.safe_load(databases_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    options.update(yaml.safe_load(rpc_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    options.update(yaml.safe_load(state_dir_fragment.ModuleDocFragment.DOCUMENTATION)['options'])
    assert sorted(options) == sorted(spec)
    for name, option in options.items():
        assert option['type'] == spec[name]['type'], name
        assert option.get('default') == spec[name].get('default'), name
        assert option.get('choices') == spec[name].get('choices'), name
        assert option.get('elements') == spec[name].get('elements'), name
    assert spec['checks']['choices'] == list(health.PROBES) == ['rpc', 'http', 'nginx', 'databases']
    assert spec['checks']['default'] == ['rpc', 'http', 'nginx']  # databases only when asked for
    assert sorted(options['databases']['suboptions']) == sorted(spec['databases']['options'])


def test_examples_and_return_parse():
    examples = yaml.safe_load(micropvr_health.EXAMPLES)
    # The module's own tasks, and tasks that use a result they registered.
    probes = [task for task in examples if 'microimpuls.micropvr.micropvr_health' in task]
    assert len(probes) >= 2
    registered = set(task['register'] for task in probes if 'register' in task)
    assert registered
    assert all(any(name in str(task) for name in registered) for task in examples if task not in probes)
    returns = yaml.safe_load(micropvr_health.RETURN)
    assert sorted(returns) == ['attempts', 'failed_probes', 'healthy', 'probes']


@pytest.mark.parametrize('check_mode', [True, False])
@pytest.mark.parametrize('path, reason', [
    ('/tmp', '/tmp is a system directory'),
    ('/', '/ is a system directory'),
    ('', "'' is not set"),
    ('state', 'state is not an absolute path'),
])
def test_main_refuses_a_bad_state_dir_before_any_probe(run_module, rpc, path, reason, check_mode):
    server = rpc(ALIVE)
    rc, result = run_module(checks=['rpc', 'databases'], rpc_port=server.port, state_dir=path,
                            _ansible_check_mode=check_mode)
    assert rc == 1
    assert result['msg'].startswith('micropvr_state_dir: %s' % reason)
    assert server.requests == []


def test_main_databases_probe_leaves_nothing_in_the_state_dir(run_module, tmp_path, monkeypatch):
    make_psql(tmp_path, rc=0)
    monkeypatch.setenv('PATH', '%s:%s' % (tmp_path / 'bin', os.environ.get('PATH', '')))
    db = dict((key, value) for key, value in DB.items() if value is not None)
    rc, result = run_module(checks=['databases'], databases=[db])
    assert rc == 0 and result['healthy'] is True
    assert os.path.dirname(os.path.dirname((tmp_path / 'bin' / 'pgpassfile.txt').read_text().strip())) == \
        str(tmp_path / 'state' / 'work')
    assert list((tmp_path / 'state' / 'work').iterdir()) == []
