"""Phase 1: stand-in 1.9.0 as installed from the local apt repository by prepare."""

import pytest

from micropvr_testlib import rpc, service_status, table_rows, user_version

DATABASES = ['/etc/micropvr/records.db', '/etc/micropvr/tasks.db']


@pytest.mark.parametrize('package', ['micropvr', 'micropvs'])
def test_package_installed_at_1_9_0(host, package):
    pkg = host.package(package)
    assert pkg.is_installed
    assert pkg.version == '1.9.0-1'


def test_installed_from_the_local_repository(host):
    policy = host.check_output('apt-cache policy micropvr')
    assert 'file:/srv/micropvr-repo ./' in policy
    for version in ('1.9.0-1', '1.10.0-1', '1.10.1-1'):
        assert version in policy


@pytest.mark.parametrize('service', ['micropvr', 'micropvs'])
def test_service_running(host, service):
    assert service_status(host, service) == 0


def test_json_rpc_is_alive_on_4089(host):
    assert host.socket('tcp://0.0.0.0:4089').is_listening
    result = rpc(host, 'is_alive')
    assert result['is_alive'] is True
    assert isinstance(result['score'], float)
    assert isinstance(result['session_count'], int)


def test_daemon_reports_its_version(host):
    assert rpc(host, 'get_version') == {'version': '1.9.0', 'schema_version': 1}


def test_micropvs_answers_http_on_8080(host):
    assert host.socket('tcp://0.0.0.0:8080').is_listening
    stats = host.check_output('curl -fsS http://127.0.0.1:8080/nginx-stats')
    assert 'Active connections' in stats
    masters = [line for line in host.check_output('ps -eo args').splitlines()
               if line.startswith('nginx: master process')]
    assert any('-c /usr/local/nginx-micropvr/conf/nginx.conf' in line for line in masters), masters


@pytest.mark.parametrize('path', DATABASES)
def test_database_at_schema_1(host, path):
    assert user_version(host, path) == 1


def test_create_new_task_writes_both_databases(host):
    created = rpc(host, 'create_new_task', channel_id=7, name='news',
                  start_time='2024-05-01 20:00:00', duration=90)
    tasks = [row for row in table_rows(host, '/etc/micropvr/tasks.db', 'tasks') if row['id'] == created['task_id']]
    records = [row for row in table_rows(host, '/etc/micropvr/records.db', 'records')
               if row['task_id'] == created['task_id']]
    assert tasks and tasks[0]['start_time'] == '2024-05-01 20:00:00' and tasks[0]['duration'] == 90
    assert records and records[0]['channel_id'] == 7 and records[0]['duration'] == 90
