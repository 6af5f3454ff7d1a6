"""Fault 1: the bad release 1.10.1 fails its health checks; the update rolls the host back by
itself. Run at -vvv: the database passwords must not appear anywhere in that output."""

import pytest

from faultlib import (
    assert_data_as_before, assert_healthy_on, baseline, deb_version, history, packages, reset, run_playbook, secrets)


@pytest.fixture(scope='module')
def update(host):
    reset(host)
    return run_playbook(host, 'update.yml', '-vvv', micropvr_version=deb_version(host, '1.10.1'))


def test_the_play_fails_saying_what_happened(host, update):
    assert update.returncode != 0
    version = deb_version(host, '1.10.1')
    assert ('to %s FAILED at "Install the target version behind the backup gate: %s was installed, but MicroPVR '
            'is not healthy after ' % (version, version)) in ' '.join(update.output.split())
    assert 'rpc probe failed: is_alive=false' in update.output
    assert 'The host was rolled back automatically to backup set' in update.output
    # The message lists the packages sorted by name, as dictsort does.
    old = ', '.join('%s %s' % (name, baseline(host)) for name in sorted(packages(host)))
    assert '(%s) and is healthy again' % old in update.output


def test_host_is_healthy_on_the_old_version_with_its_data(host, update):
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def test_history_says_rolled_back(host, update):
    events = history(host)
    rollback, record = events[-2:]
    assert (rollback['event'], record['event'], record['outcome']) == ('rollback', 'update', 'rolled back')
    assert rollback['backup_id'] == record['backup_id']
    assert record['failure'].startswith('Install the target version behind the backup gate: %s was installed, but '
                                        'MicroPVR is not healthy' % deb_version(host, '1.10.1')), record['failure']


def test_no_password_in_the_output_at_vvv(host, update):
    # The password did reach the modules (shown masked in the -vvv invocation)...
    assert '"login_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in update.output
    # ...and nowhere in the clear.
    for secret in secrets(host):
        assert secret not in update.output
