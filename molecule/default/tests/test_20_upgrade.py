"""Phase 2: an operator's apt upgrade to 1.10.0 migrates schema 1 -> 2 and keeps conffile edits."""

import calendar
import time

import pytest

from micropvr_testlib import apt_install, rpc, service_status, table_rows, user_version

CONF = '/etc/micropvr/micropvr.conf'
EDIT = r's/("log-verbose-level"[[:space:]]*:[[:space:]]*)[0-9]+/\16/'


def _epoch(text):
    return calendar.timegm(time.strptime(text, '%Y-%m-%d %H:%M:%S'))


@pytest.fixture(scope='module')
def upgrade(host):
    for channel in (11, 12, 13):
        rpc(host, 'create_new_task', channel_id=channel, name='show %d' % channel,
            start_time='2024-06-0%d 18:30:00' % (channel - 10), duration=45 + channel)
    before = dict(tasks=table_rows(host, '/etc/micropvr/tasks.db', 'tasks'),
                  records=table_rows(host, '/etc/micropvr/records.db', 'records'))
    host.check_output("sed -i -E '%s' %s" % (EDIT, CONF))
    result = apt_install(host, 'micropvr=1.10.0-1', 'micropvs=1.10.0-1')
    return dict(before=before, result=result)


def test_upgrade_succeeds(host, upgrade):
    assert upgrade['result'].rc == 0, upgrade['result'].stdout + upgrade['result'].stderr
    for package in ('micropvr', 'micropvs'):
        assert host.package(package).version == '1.10.0-1'


@pytest.mark.parametrize('path', ['/etc/micropvr/records.db', '/etc/micropvr/tasks.db'])
def test_schema_migrated_to_2(host, upgrade, path):
    assert user_version(host, path) == 2


@pytest.mark.parametrize('table, path', [('tasks', '/etc/micropvr/tasks.db'),
                                         ('records', '/etc/micropvr/records.db')])
def test_migration_converted_every_row(host, upgrade, table, path):
    before = upgrade['before'][table]
    after = dict((row['id'], row) for row in table_rows(host, path, table))
    assert len(before) >= 4 and sorted(after) == [row['id'] for row in before]
    for old in before:
        new = after[old['id']]
        assert new['start_time'] == _epoch(old['start_time'])
        assert new['duration'] == old['duration'] * 60
        assert new['end_time'] == new['start_time'] + new['duration']
        assert new['channel_id'] == old['channel_id']


def test_operator_edit_of_conffile_kept(host, upgrade):
    conf = host.file(CONF).content_string
    assert '"log-verbose-level": 6' in conf.replace('":  ', '": ')
    # dpkg kept the operator's file and put the vendor's new one beside it.
    assert host.file(CONF + '.dpkg-dist').exists
    assert 'score-max-cpu-la1' in host.file(CONF + '.dpkg-dist').content_string


def test_services_healthy_after_upgrade(host, upgrade):
    assert service_status(host, 'micropvr') == 0
    assert service_status(host, 'micropvs') == 0
    assert rpc(host, 'get_version') == {'version': '1.10.0', 'schema_version': 2}
    assert rpc(host, 'is_alive')['is_alive'] is True
