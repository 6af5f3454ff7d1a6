"""Fault 3: the run is killed (SIGKILL, controller and host processes alike) while dpkg
configures the new version. Re-running update.yml finds the interrupted run in the host lock,
restores its backup set, then completes the update."""

import pytest

from faultlib import (
    FAULTS_FILE, LOCK, SLEEPING, assert_healthy_on, history, kill_run, reset, run_playbook, start_playbook, target,
    wait_for_file)
from micropvr_testlib import rpc


def task_names(host):
    return sorted((t['id'], t['name']) for t in rpc(host, 'get_tasks'))


@pytest.fixture(scope='module')
def killed(host):
    reset(host)
    tasks = task_names(host)
    host.check_output('echo "micropvr %s postinst sleep 900" > %s' % (target(host), FAULTS_FILE))
    run = start_playbook(host, 'update.yml', micropvr_version=target(host))
    wait_for_file(host, SLEEPING, proc=run)
    lock = host.file(LOCK).content_string
    kill_run(host, run)
    host.run('rm -f %s %s' % (FAULTS_FILE, SLEEPING))
    return dict(tasks=tasks, lock=lock, audit=host.run('dpkg --audit').stdout)


@pytest.fixture(scope='module')
def rerun(host, killed):
    return run_playbook(host, 'update.yml', micropvr_version=target(host))


def test_the_kill_left_a_half_installed_host_and_the_step_in_the_lock(killed):
    """The fault is real: without recovery this host would stay broken."""
    assert 'micropvr' in killed['audit'], killed['audit']
    assert '"name": "install"' in killed['lock']


def test_rerun_recovers_and_completes_the_update(host, killed, rerun):
    assert rerun.returncode == 0, rerun.output
    assert 'was interrupted during its install step' in rerun.output
    assert 'Restoring its backup set' in rerun.output
    assert_healthy_on(host, target(host))


def test_no_task_was_lost(host, killed, rerun):
    assert task_names(host) == killed['tasks']


def test_history_tells_the_story(host, killed, rerun):
    events = history(host)
    recovery = [e for e in events if e['event'] == 'recovery'][-1]
    assert recovery['interrupted_step']['name'] == 'install'
    assert recovery['interrupted_run'] in killed['lock']
    assert events[-1]['event'] == 'update' and events[-1]['outcome'] == 'updated'
    assert recovery['run_id'] == events[-1]['run_id']
    assert events.index(recovery) < len(events) - 1
