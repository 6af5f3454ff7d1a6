"""The health check of a rollback runs inside the restore task (micropvr_restore's health option):
when MicroPVR does not answer where the run looks for it, the task fails saying the set is in
place and which probe failed; the host keeps its version and data and its services run, the
lock is released and no rollback is recorded in the history.

Runs after test_rollback.py (file order): the host is then in the state of the pre-update set,
so the restore changes nothing and only the health check can fail."""

from gatelib import LOCK, history
from micropvr_testlib import baseline, db_dump, installed_version, packages, rpc, run_playbook, service_status

# Nothing listens there: the probe's connection is refused.
CLOSED_PORT = 4999


def test_unhealthy_rollback_fails_naming_the_probe_and_changes_nothing(host):
    for package in packages(host):
        assert installed_version(host, package) == baseline(host), 'test_rollback.py rolled the host back first'
    events_before = len(history(host))
    data_before = db_dump(host)

    result = run_playbook(host, 'rollback.yml', micropvr_rpc_port=CLOSED_PORT, micropvr_health_retries=2,
                          micropvr_health_delay=1)

    assert result.returncode != 0, result.output
    assert 'Restore the backup set and check that MicroPVR serves' in result.output
    assert 'matches the host (nothing was restored), but MicroPVR is not healthy after 2 attempt(s): rpc probe ' \
           'failed: ' in result.output, result.output
    assert '127.0.0.1:%d' % CLOSED_PORT in result.output, result.output
    for package in packages(host):
        assert installed_version(host, package) == baseline(host), package
    assert db_dump(host) == data_before
    assert service_status(host, 'micropvr') == 0 and service_status(host, 'micropvs') == 0
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert not host.file(LOCK).exists, 'the failed rollback left the host lock'
    assert len(history(host)) == events_before, history(host)[events_before:]


def test_a_healthy_rollback_has_no_health_task_of_its_own(host):
    result = run_playbook(host, 'rollback.yml')
    assert result.returncode == 0, result.output
    assert 'Restore the backup set and check that MicroPVR serves' in result.output
    assert 'TASK [microimpuls.micropvr.rollback : Check that MicroPVR serves]' not in result.output
    assert history(host)[-1]['event'] == 'rollback' and history(host)[-1]['outcome'] == 'already in this state'
