"""Fault 10: the daemon is down before the update. Pre-flight reports it and stops; with
micropvr_update_allow_stopped=true the update goes ahead and ends healthy."""

import pytest

from faultlib import assert_healthy_on, history, reset, run_playbook, target
from gatelib import host_state
from micropvr_testlib import service_status


@pytest.fixture(scope='module')
def stopped(host):
    reset(host)
    host.check_output('/etc/init.d/micropvr stop')
    assert service_status(host, 'micropvr') == 3


def test_preflight_stops_the_update_of_a_stopped_service(host, stopped):
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert result.returncode != 0
    assert 'Pre-flight: not running: micropvr.' in result.output, result.output
    assert 'or set micropvr_update_allow_stopped=true to update anyway' in result.output
    assert host_state(host) == before  # still stopped, nothing backed up, no lock


def test_the_operator_may_update_a_stopped_service(host, stopped):
    result = run_playbook(host, 'update.yml', micropvr_version=target(host), micropvr_update_allow_stopped=True)
    assert result.returncode == 0, result.output
    assert_healthy_on(host, target(host))
    assert history(host)[-1]['outcome'] == 'updated'
