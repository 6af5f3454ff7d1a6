"""On the recovered B, an update while the repository server is down goes ahead on the local
pre-update set and says the off-host copy is missing."""

import pytest

from disasterlib import B, backup_ids, healthy, load_state, manifest, run, versions
from gatelib import history


@pytest.fixture(scope='module')
def update_while_down(host_b, repo):
    lost = load_state()
    # Back to A's 1.9.0 set (the pre-update set that retention kept), by its id, so that there is
    # an update to run; B was recovered from that host, so no force is needed.
    back = run(B, 'restore_host.yml', micropvr_recover_host=lost['fqdn'], micropvr_backup_id=lost['pre_update'])
    assert back.returncode == 0, back.output
    assert set(versions(host_b).values()) == {'1.9.0-1'}
    before = set(backup_ids(host_b))
    repo.check_output('service ssh stop')
    try:
        result = run(B, 'update.yml', micropvr_version='1.10.0-1')
    finally:
        repo.check_output('service ssh start')
    return dict(result=result, new=sorted(set(backup_ids(host_b)) - before))


def test_update_succeeds_on_the_local_set(host_b, update_while_down):
    assert update_while_down['result'].returncode == 0, update_while_down['result'].output
    assert set(versions(host_b).values()) == {'1.10.0-1'}
    healthy(host_b)
    (pre_update,) = update_while_down['new']
    assert manifest(host_b, pre_update)['reason'] == 'pre-update to 1.10.0-1'


def test_update_says_the_off_host_copy_is_missing(host_b, update_while_down):
    output = update_while_down['result'].output
    assert 'off-host copy MISSING' in output, output
    update = [e for e in history(host_b) if e['event'] == 'update'][-1]
    assert update['outcome'] == 'updated' and update['offsite_status'] != 'verified'
