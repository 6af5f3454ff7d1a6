"""Phase 3: a package-only downgrade to 1.9.0 leaves a daemon that refuses the newer schema.

This is why the collection's rollback restores data along with packages.
"""

import pytest

from micropvr_testlib import apt_install, service_status, user_version


@pytest.fixture(scope='module')
def downgrade(host):
    result = apt_install(host, 'micropvr=1.9.0-1', extra='--allow-downgrades')
    start = host.run('/etc/init.d/micropvr start')
    return dict(result=result, start=start)


def test_package_files_are_1_9_0(host, downgrade):
    status = host.check_output("dpkg-query -W -f '${Version}' micropvr")
    assert status == '1.9.0-1'


def test_daemon_refuses_to_start(host, downgrade):
    assert downgrade['start'].rc != 0
    assert service_status(host, 'micropvr') != 0
    assert 'schema version 2' in downgrade['start'].stdout + downgrade['start'].stderr


def test_refusal_is_logged_with_the_reason(host, downgrade):
    log = host.file('/var/log/micropvr/micropvr.log').content_string
    assert 'schema version 2, newer than 1' in log


def test_data_left_untouched(host, downgrade):
    assert user_version(host, '/etc/micropvr/records.db') == 2
    assert user_version(host, '/etc/micropvr/tasks.db') == 2
