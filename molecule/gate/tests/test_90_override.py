"""The one way past the gate: micropvr_update_without_backup, shown in the play and kept in the history.

Runs last: it really updates the hosts to 1.10.0-1.
"""

import pytest

from gatelib import PACKAGES, TARGET, history, host_state
from micropvr_testlib import rpc, run_playbook, user_version


@pytest.fixture(scope='module')
def override(host):
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=TARGET, micropvr_update_without_backup=True)
    return dict(before=before, result=result, after=host_state(host),
                new_events=history(host)[len(before['history']):])


def test_update_succeeds(host, override):
    assert override['result'].returncode == 0, override['result'].output
    assert override['after']['versions'] == dict((name, TARGET) for name in PACKAGES)
    assert override['after']['services'] == {'micropvr': 0, 'micropvs': 0}
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert user_version(host, '/etc/micropvr/tasks.db') == 2
    assert not override['after']['locked']


def test_no_backup_set_was_taken(override):
    assert override['after']['backup_ids'] == override['before']['backup_ids']
    assert 'TASK [Back up exactly what is installed (pinned)]' in override['result'].output
    assert 'Take a backup set of MicroPVR' not in override['result'].output


def test_play_output_warns_about_the_override(host, override):
    output = ' '.join(override['result'].output.split())
    assert ('the backup gate was overridden (micropvr_update_without_backup): installing %s with NO backup, '
            'there is nothing to roll back to; recorded in ' % TARGET) in output, output
    to_versions = ', '.join('%s %s' % (name, TARGET) for name in sorted(PACKAGES))
    assert '%s: updated (' % host.backend.get_hostname() in output, output
    assert '-> %s; NO backup (micropvr_update_without_backup))' % to_versions in output, output


def test_history_records_the_override_and_the_update(override):
    events = override['new_events']
    overrides = [event for event in events if event['event'] == 'gate-override']
    updates = [event for event in events if event['event'] == 'update']
    assert len(overrides) == 1 and len(updates) == 1, events
    assert overrides[0]['version'] == TARGET
    assert overrides[0]['from_versions'] == {'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}
    update = updates[0]
    assert update['gate'] == 'overridden'
    assert update['outcome'] == 'updated'
    assert update['backup_id'] is None
    assert update['target'] == TARGET
    assert update['to_versions'] == dict((name, TARGET) for name in PACKAGES)
    assert events.index(overrides[0]) < events.index(update)


def test_packages_are_held_at_the_target(override):
    assert override['after']['held'] == sorted(PACKAGES)
