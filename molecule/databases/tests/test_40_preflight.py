"""A configured database that does not answer stops the update in pre-flight, nothing changed."""

import pytest

from micropvr_testlib import backup_ids, installed_version, run_playbook


@pytest.fixture(scope='module')
def refused(host):
    before = backup_ids(host)
    host.check_output('service mariadb stop')
    try:
        result = run_playbook(host, 'update.yml', micropvr_version='1.10.0-1')
    finally:
        host.check_output('service mariadb start')
    return dict(result=result, before=before)


def test_update_stops_in_preflight_naming_the_database(refused):
    assert refused['result'].returncode != 0
    assert 'Check the nginx configuration and the external databases' in refused['result'].output
    assert 'mysql database middleware does not answer' in refused['result'].output


def test_nothing_changed(host, refused):
    assert backup_ids(host) == refused['before']
    assert installed_version(host, 'micropvr') == '1.9.0-1'
    assert not host.file('/var/lib/microimpuls-micropvr/update.lock').exists
