"""Rollouts over five hosts with update.yml: canary first, batches, stop on failure, summary.

A backup and the first rollout run through the documented ansible-runner example
(docs/runner/micropvr_runner.py), by FQCN, as AWX and operators' own tools do: the backup
from its command line, the rollout through its run_playbook() with one host unreachable. The
second rollout ships the bad release and must stop after the canary.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from micropvr_testlib import BACKUP_ROOT, REPO, installed_version

FLEET = ['micropvr-fleet-%d' % number for number in range(1, 6)]
CANARY, UNREACHABLE = FLEET[0], FLEET[1]
_RUNS = {}


def _once(name, run):
    """Each rollout runs once, whichever host's test asks first."""
    if name not in _RUNS:
        _RUNS[name] = run()
    return _RUNS[name]


def _ansible_env():
    env = dict((key, value) for key, value in os.environ.items() if key.startswith('ANSIBLE_'))
    env.update(ANSIBLE_NOCOLOR='1', PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    return env


RUNNER_EXAMPLE = os.path.join(REPO, 'docs', 'runner', 'micropvr_runner.py')


def _runner_example():
    spec = importlib.util.spec_from_file_location('micropvr_runner', RUNNER_EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _backup_with_runner_cli():
    """The example's command line, exactly as docs/runner/README.md shows it."""
    proc = subprocess.run([sys.executable, RUNNER_EXAMPLE, '-i', os.environ['MOLECULE_INVENTORY_FILE'],
                           'microimpuls.micropvr.backup'], env=dict(os.environ, **_ansible_env()),
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.stdout, proc.stderr
    return dict(rc=proc.returncode, result=json.loads(proc.stdout), stderr=proc.stderr)


def _rollout_with_runner(tmp_root):
    subprocess.run(['docker', 'stop', '-t', '1', UNREACHABLE], check=True, capture_output=True)
    try:
        result = _runner_example().run_playbook(
            'microimpuls.micropvr.update', os.environ['MOLECULE_INVENTORY_FILE'], private_data_dir=str(tmp_root),
            envvars=_ansible_env(),
            extravars=dict(micropvr_version='1.10.0-1', micropvr_serial=2, micropvr_max_fail_percentage=50))
    finally:
        subprocess.run(['docker', 'start', UNREACHABLE], check=True, capture_output=True)
    return dict(status=result['status'], rc=result['rc'], stats=result['stats'], events=result['events'],
                artifact=result['artifacts'])


def _rollout_bad_release():
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], os.path.join(REPO, 'playbooks', 'update.yml'),
               '-e', 'micropvr_version=1.10.1-1', '-e', 'micropvr_serial=2']
    proc = subprocess.run(command, env=dict(os.environ, **_ansible_env()), capture_output=True, text=True,
                          timeout=1800, check=False)
    return dict(rc=proc.returncode, output=proc.stdout + proc.stderr)


@pytest.fixture(scope='module')
def backup():
    return _once('backup', _backup_with_runner_cli)


@pytest.fixture(scope='module')
def first(backup, tmp_path_factory):
    return _once('first', lambda: _rollout_with_runner(tmp_path_factory.mktemp('runner')))


@pytest.fixture(scope='module')
def second(first):
    return _once('second', _rollout_bad_release)


def _install_events(events):
    return [e for e in events if e['event'] == 'runner_on_ok'
            and e['event_data'].get('task') == 'Install the target version behind the backup gate']


def test_runner_example_backup_returns_each_hosts_set(backup, host):
    result = backup['result']
    assert backup['rc'] == 0 and result['status'] == 'successful' and result['rc'] == 0, backup['stderr']
    assert sorted(result['stats']['ok']) == sorted(FLEET) and not result['stats']['failures']
    sets = result['artifacts']['micropvr_backup_sets']
    assert sorted(sets) == sorted(FLEET)
    # The id the artifact names is a set on that very host.
    name = host.backend.get_hostname()
    assert host.file('%s/%s/manifest.json' % (BACKUP_ROOT, sets[name]['backup_id'])).is_file


def test_runner_reports_the_unreachable_host(first):
    assert first['status'] == 'failed' and first['rc'] != 0
    assert list(first['stats']['dark']) == [UNREACHABLE]
    unreachable = [e['event_data']['host'] for e in first['events'] if e['event'] == 'runner_on_unreachable']
    assert unreachable and set(unreachable) == {UNREACHABLE}


def test_canary_is_updated_before_any_other_host(first):
    installs = [e['event_data']['host'] for e in _install_events(first['events'])]
    assert installs[0] == CANARY
    assert sorted(installs) == sorted(set(FLEET) - {UNREACHABLE})


def test_set_stats_summary_through_runner(first):
    rollout = first['artifact']['micropvr_rollout']
    assert sorted(rollout) == sorted(FLEET)
    assert rollout[UNREACHABLE]['outcome'] == 'unreachable'
    for host in set(FLEET) - {UNREACHABLE}:
        assert rollout[host]['outcome'] == 'updated', host
        assert rollout[host]['from'] == {'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}
        assert rollout[host]['to'] == {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}
        assert rollout[host]['backup_id']
    # The per-host results of the update role are there too.
    assert first['artifact']['micropvr_update'][CANARY]['outcome'] == 'updated'


def test_bad_release_stops_after_the_canary(second):
    assert second['rc'] != 0
    assert 'micropvr-fleet-1: ROLLED BACK' in second['output']
    for host in FLEET[2:]:
        assert '%s: NOT ATTEMPTED' % host in second['output']
    assert 'Not updated: the rollout stopped after micropvr-fleet-1 failed' in second['output']
    assert 'The host was rolled back automatically to backup set' in second['output']


def test_every_host_is_on_a_known_version(host, first, second):
    name = host.backend.get_hostname()
    # The unreachable host missed the first rollout; the bad release was stopped at the canary,
    # which rolled itself back to 1.10.0-1.
    expected = '1.9.0-1' if name == UNREACHABLE else '1.10.0-1'
    assert installed_version(host, 'micropvr') == expected
    assert installed_version(host, 'micropvs') == expected
