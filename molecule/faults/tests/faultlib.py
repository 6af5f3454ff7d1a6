"""Helpers of the faults suite: inject a fault, then check that the host ended healthy on a
known version with nothing lost."""

import json
import os
import signal
import subprocess
import time

from gatelib import BASELINE, LOCK, TARGET, history
from micropvr_testlib import (
    BACKUP_ROOT, backup_ids, backup_root, baseline, db_dump, deb_version, external_rows, host_profile, installed_version,
    manifest, module_args, packages, playbook_command, rpc, run_module, run_playbook, service_status, target,
    upstream_version)

# BASELINE and TARGET are the default stand-in's versions; the version of a host's own variant
# (1:1.9.0-1 on the strict host): baseline(host), target(host), deb_version(host, '1.10.1').
__all__ = ['BASELINE', 'TARGET', 'LOCK', 'FAULTS_FILE', 'SLEEPING', 'assert_data_as_before', 'assert_healthy_on',
           'baseline_id', 'external_rows', 'history', 'kill_run', 'reset', 'run_blocker', 'start_playbook',
           'wait_for_file', 'backup_ids', 'blocker_report', 'manifest', 'run_module', 'run_playbook', 'BACKUP_ROOT',
           'secrets', 'backup_root', 'baseline', 'target', 'deb_version', 'packages', 'module_args', 'host_profile',
           'upstream_version']

FAULTS_FILE = '/etc/micropvr-standin-faults'
SLEEPING = '/run/micropvr-standin-fault.sleeping'
BASELINE_REASON = 'faults: baseline'
_BASELINES = {}


def secrets(host):
    """The database passwords of the test inventory."""
    variables = host.ansible.get_variables()
    return [variables['databases_fixture_pg_password'], variables['databases_fixture_mysql_password']]


def baseline_id(host):
    """The set of the host as prepared (stand-in 1.9.0, the pre-update data), taken once."""
    name = host.backend.get_hostname()
    if name not in _BASELINES:
        found = [i for i in backup_ids(host) if manifest(host, i)['reason'] == BASELINE_REASON]
        if not found:
            result = run_playbook(host, 'backup.yml', micropvr_backup_reason=BASELINE_REASON)
            assert result.returncode == 0, result.output
            found = [i for i in backup_ids(host) if manifest(host, i)['reason'] == BASELINE_REASON]
        _BASELINES[name] = found[0]
    return _BASELINES[name]


def reset(host):
    """Back to the prepared host, whatever an earlier test left: no fault, no lock, 1.9.0, its data."""
    host.run('rm -f %s %s' % (FAULTS_FILE, SLEEPING))
    host.run('rm -f %s' % LOCK)
    # Test plumbing: no set to fall back on is needed to get back to the baseline.
    result = run_playbook(host, 'rollback.yml', micropvr_backup_id=baseline_id(host),
                          micropvr_rollback_safety_backup=False)
    assert result.returncode == 0, result.output
    host.check_output('apt-mark unhold %s' % ' '.join(packages(host)))
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def assert_healthy_on(host, version):
    """Every package cleanly installed at ``version``, both services up, the API alive, no leftovers."""
    assert dict((p, installed_version(host, p)) for p in packages(host)) == dict((p, version) for p in packages(host))
    assert host.check_output('dpkg --audit') == '', 'dpkg reports unfinished packages'
    assert dict((s, service_status(host, s)) for s in ('micropvr', 'micropvs')) == {'micropvr': 0, 'micropvs': 0}
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert rpc(host, 'get_version')['version'] == upstream_version(version)
    assert host.run("python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:8080/nginx-stats\", timeout=10)'"
                    ).rc == 0, 'micropvs does not serve HTTP'
    assert not host.file(LOCK).exists, 'the update lock was left behind'
    assert not host.file('/usr/sbin/policy-rc.d').exists, 'a policy-rc.d was left behind'


def assert_data_as_before(host):
    """Every SQLite table and both external databases exactly as dumped before any update."""
    now = db_dump(host)
    for db in ('records', 'tasks'):
        assert now['/etc/micropvr/%s.db' % db] == host.file('/root/pre-update-%s.sql' % db).content_string.rstrip('\n')
    rows = external_rows(host)
    for engine in ('postgresql', 'mysql'):
        assert rows[engine] == host.file('/root/pre-update-%s.txt' % engine).content_string.rstrip('\n')


def start_playbook(host, playbook, **extra_vars):
    """Start one of the collection's playbooks in the background, in its own process group.

    Without pipelining: each module then runs from its AnsiballZ file on the host, so that
    kill_run finds it by name, as it would a module of a controller that died.
    """
    command, env = playbook_command(host, playbook, **extra_vars)
    env['ANSIBLE_PIPELINING'] = 'False'
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for_file(host, path, timeout=300, proc=None):
    deadline = time.monotonic() + timeout
    while not host.file(path).exists:
        if proc is not None and proc.poll() is not None:
            raise AssertionError('the run ended before %s appeared:\n%s' % (path, proc.stdout.read()))
        assert time.monotonic() < deadline, '%s did not appear within %d s' % (path, timeout)
        time.sleep(0.5)


def kill_run(host, proc):
    """SIGKILL a run everywhere at once, as when the controller dies: ansible-playbook and its
    workers here, the module and apt/dpkg with the maintainer script on the host."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The sleeping postinst wrote its own pid into SLEEPING.
    script_pid = host.file(SLEEPING).content_string.split()[-1]
    # "[m]" keeps the pattern from matching the shell that runs it (testinfra runs commands
    # through Ansible modules too, so plain "AnsiballZ" would match them).
    host.run('pkill -KILL -f "AnsiballZ_[m]icropvr"; pkill -KILL -x apt-get; pkill -KILL -x dpkg; '
             'pkill -KILL -P %s; kill -KILL %s' % (script_pid, script_pid))
    time.sleep(1)
    assert host.run('pgrep -x dpkg || pgrep -x apt-get || pgrep -f "AnsiballZ_[m]icropvr"').rc == 1, \
        'the run survived'


def run_blocker(host, report, **options):
    """Start dump-blocker on the host and wait until it holds its locks."""
    host.run('rm -f %s' % report)
    extra = ' '.join('--%s %s' % (key, value) for key, value in options.items())
    host.run('setsid nohup /usr/local/bin/dump-blocker --report %s %s >%s.log 2>&1 < /dev/null &'
             % (report, extra, report))
    wait_for_file(host, report, timeout=60)
    deadline = time.monotonic() + 60
    while host.file(report).content_string.strip() != 'armed':
        assert time.monotonic() < deadline, host.file(report + '.log').content_string
        time.sleep(0.2)


def blocker_report(host, report, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        content = host.file(report).content_string
        if content.startswith('{'):
            return json.loads(content)
        assert time.monotonic() < deadline, 'dump-blocker did not finish: %s' % content
        time.sleep(0.5)

