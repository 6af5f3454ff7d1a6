"""One outage per update: no restart after the install when the maintainer scripts already started
the installed version; a restart (or start) when they did not.

Runs after test_update.py (file order): the first tests look at what converge's update did; the
fixture then rolls the host back to the pre-update set and updates it again with the stand-in's
faults "micropvs <target> prerm nostop" (the old nginx keeps serving through the upgrade) and
"micropvr <target> postinst nostart" (the new daemon is not started). Three subscribers stay
connected through it, so that the drain (micropvr_drain_timeout, done by the install task just
before it installs) waits its full time and the update goes on anyway.
"""

import json
import re

import pytest

from micropvr_testlib import (
    backup_ids, baseline, installed_version, manifest, rpc, run_playbook, service_status, target, upstream_version)

FAULTS = '/etc/micropvr-standin-faults'
DRAIN = dict(micropvr_drain_timeout=6, micropvr_drain_sessions=1)
SESSIONS = 3
NGINX_PID = '/usr/local/nginx-micropvr/logs/nginx.pid'


def _updates(host):
    events = [json.loads(line) for line in
              host.file('/var/lib/microimpuls-micropvr/history.jsonl').content_string.splitlines()]
    return [e for e in events if e['event'] == 'update']


def _pid(host, path):
    return int(host.check_output('cat %s', path))


def _daemon_starts(host, version):
    """pids of the micropvr daemon's "micropvr VERSION started: ..., pid N" log lines, oldest first."""
    log = host.file('/var/log/micropvr/micropvr.log').content_string
    return [int(pid) for pid in re.findall(r'micropvr %s started: .*, pid (\d+)' % re.escape(version), log)]


def test_the_default_update_restarted_nothing(host):
    first = _updates(host)[0]
    assert first['outcome'] == 'updated'
    assert first['restarted'] == []
    assert set(first['services']) == {'micropvr', 'micropvs'}
    for name, service in first['services'].items():
        assert service['running'] is True and service['fresh'] is True, (name, service)
        assert service['reason'].startswith('the install (maintainer scripts of %s) started it' % name)


def test_the_default_update_had_one_outage_window(host):
    """The first daemon of the new release (the postinst's) is the one the install found fresh and
    the update left running: no second stop/start. (test_05_check_mode stops and starts the daemon
    itself afterwards, hence a later start in the log.)"""
    starts = _daemon_starts(host, upstream_version(target(host)))
    services = _updates(host)[0]['services']
    assert services['micropvr']['pids'] == starts[:1]
    # nothing restarted nginx since: its master is the one the install's check found fresh.
    assert _pid(host, NGINX_PID) in services['micropvs']['pids']


@pytest.fixture(scope='module')
def faulty_update(host):
    pre = [b for b in backup_ids(host) if manifest(host, b)['reason'] == 'pre-update to %s' % target(host)]
    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=pre[0])
    assert rollback.returncode == 0, rollback.output[-4000:]
    assert installed_version(host, 'micropvr') == baseline(host)
    old_nginx = _pid(host, NGINX_PID)
    host.run('printf "%%s\\n" %s %s > %s', 'micropvs %s prerm nostop' % target(host),
             'micropvr %s postinst nostart' % target(host), FAULTS)
    rpc(host, 'standin_set_session_count', count=SESSIONS)
    try:
        update = run_playbook(host, 'update.yml', **DRAIN)
    finally:
        host.run('rm -f %s', FAULTS)
    return dict(output=update.output, rc=update.returncode, old_nginx=old_nginx, record=_updates(host)[-1])


def test_a_service_the_postinst_did_not_start_is_started(host, faulty_update):
    assert faulty_update['rc'] == 0, faulty_update['output'][-4000:]
    record = faulty_update['record']
    assert record['outcome'] == 'updated'
    assert record['restarted'] == ['micropvr', 'micropvs']
    assert record['services']['micropvr']['running'] is False
    assert record['services']['micropvr']['reason'] == 'not running (status exit 3): started'
    assert service_status(host, 'micropvr') == 0
    assert rpc(host, 'get_version')['version'] == upstream_version(target(host))


def test_an_old_daemon_left_running_is_restarted(host, faulty_update):
    assert faulty_update['rc'] == 0, faulty_update['output'][-4000:]
    micropvs = faulty_update['record']['services']['micropvs']
    assert micropvs['fresh'] is False
    assert micropvs['pids'][0] == faulty_update['old_nginx']
    assert re.match(r'pid %d \(nginx\) started before the install' % faulty_update['old_nginx'], micropvs['reason'])
    new_nginx = _pid(host, NGINX_PID)
    assert new_nginx != faulty_update['old_nginx']
    assert service_status(host, 'micropvs') == 0
    assert host.run('curl -fsS http://127.0.0.1:8080/health').stdout.strip() == 'ok'


def test_the_drain_waited_for_subscribers_and_went_on(host, faulty_update):
    """The install task polled is_alive until micropvr_drain_timeout (one 5-second interval fits in
    6 s), found the sessions still there, warned and installed anyway."""
    assert faulty_update['rc'] == 0, faulty_update['output'][-4000:]
    drain = faulty_update['record']['drain']
    assert drain['drained'] is False and drain['session_count'] == SESSIONS, drain
    assert 5 <= drain['waited'] <= 7, drain
    assert '%d sessions remain after %d s (micropvr_drain_timeout); updating anyway' % (
        SESSIONS, DRAIN['micropvr_drain_timeout']) in re.sub(r'\s+', ' ', faulty_update['output'])


def test_an_update_without_micropvr_drain_timeout_does_not_wait(host):
    assert _updates(host)[0]['drain'] is None


def test_the_report_says_what_was_restarted_and_why(host, faulty_update):
    assert re.search(r'micropvr restarted \(not running \(status exit 3\): started\)', faulty_update['output'])
    assert re.search(r'micropvs restarted \(pid \d+ \(nginx\) started before the install', faulty_update['output'])
