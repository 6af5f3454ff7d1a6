"""Fault 7: two update runs against the same host at once. The second stops at the host lock,
naming the first; the first completes."""

import pytest

from faultlib import (
    FAULTS_FILE, SLEEPING, assert_healthy_on, history, reset, run_playbook, start_playbook, target, wait_for_file)


@pytest.fixture(scope='module')
def runs(host):
    reset(host)
    # The first run's install lasts 20 s: the second arrives while it is under way.
    host.check_output('echo "micropvr %s postinst sleep 20" > %s' % (target(host), FAULTS_FILE))
    first = start_playbook(host, 'update.yml', micropvr_version=target(host))
    try:
        wait_for_file(host, SLEEPING, proc=first)
        events_before = len(history(host))
        second = run_playbook(host, 'update.yml', micropvr_version=target(host))
        second.history_grew = len(history(host)) - events_before
        first_output, dummy = first.communicate(timeout=900)
    finally:
        host.run('rm -f %s' % FAULTS_FILE)
        if first.poll() is None:
            first.kill()
    return dict(first=first.returncode, first_output=first_output, second=second)


def test_second_run_stops_at_the_lock(host, runs):
    second = runs['second']
    assert second.returncode != 0
    assert 'the host is locked by another run (update to %s, owner ' % target(host) in second.output, second.output
    assert 'whose install step is running right now' in second.output
    assert 'TASK [microimpuls.micropvr.update : Back up exactly what is installed (pinned)]' not in second.output


def test_first_run_completes(host, runs):
    assert runs['first'] == 0, runs['first_output']
    assert_healthy_on(host, target(host))
    assert history(host)[-1]['outcome'] == 'updated'
