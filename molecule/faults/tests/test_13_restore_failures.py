"""Fault 13: a step of a rollback fails. The host is rolled back to its baseline set while one
step of the restore cannot succeed:

* dpkg: the old release's postinst fails. The restore puts the host back on the set the
  rollback took just before (the target version, its data) and the services run again.
* SQLite, the configuration, an external database, a service start: the condition persists,
  so putting the host back fails too. The run says exactly what state the host is in, the host
  lock keeps the unfinished restore, and once the cause is gone the next rollback.yml or
  update.yml completes the recovery by itself.

The dpkg case runs on both platforms; the others on the strict host (Debian 12) only, to keep
the scenario's time down.
"""

import pytest

from faultlib import (
    FAULTS_FILE, LOCK, assert_data_as_before, assert_healthy_on, baseline, baseline_id, external_rows, history,
    host_profile, reset, run_playbook, target)
from micropvr_testlib import db_dump, rpc


def strict_only(host):
    if host_profile(host)['variant'] != 'strict':
        pytest.skip('runs on the strict stand-in only (scenario time)')


def update_to_target(host):
    reset(host)
    result = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert result.returncode == 0, result.output
    assert_healthy_on(host, target(host))
    return dict(sqlite=db_dump(host), external=external_rows(host))


def new_data(host):
    """The host on its baseline version with data the baseline set does not have: a rollback
    restores data only (no package changes)."""
    reset(host)
    rpc(host, 'create_new_task', channel_id=77, name='after the baseline', start_time='2024-08-01 20:00:00',
        duration=30)


def assert_state(host, state):
    assert db_dump(host) == state['sqlite']
    assert external_rows(host) == state['external']


def rollback(host):
    return run_playbook(host, 'rollback.yml', micropvr_backup_id=baseline_id(host))


def assert_unfinished(host, result, step, fell_back_in_vain=True):
    """The run failed at ``step``, could not put the host back, said what state the host is in
    and kept the step."""
    assert result.returncode != 0
    assert 'restore of backup set %s failed, and the host is NOT in a known state: %s' % (
        baseline_id(host), step) in result.output, result.output
    if fell_back_in_vain:
        assert 'putting the host back on backup set' in result.output
    else:
        # Either no set could be taken, or putting the host back failed the same way.
        assert ('There was no backup of the host before the restore to put it back on' in result.output
                or 'putting the host back on backup set' in result.output)
    assert 'dpkg --audit:' in result.output and 'services:' in result.output
    assert 'the next run of playbooks/rollback.yml or playbooks/update.yml restores a backup set again' \
        in result.output
    lock = host.file(LOCK)
    assert lock.exists, 'the unfinished restore was not kept in the host lock'
    assert '"name": "restore"' in lock.content_string and '"failed":' in lock.content_string


def assert_recovered_by_rollback(host):
    again = rollback(host)
    assert again.returncode == 0, again.output
    assert 'left its restore step unfinished' in again.output
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def test_dpkg_failure_puts_the_host_back_on_its_state_before_the_rollback(host):
    before = update_to_target(host)
    host.check_output('echo "micropvr %s postinst fail" > %s' % (baseline(host), FAULTS_FILE))
    try:
        result = rollback(host)
    finally:
        host.run('rm -f %s' % FAULTS_FILE)
    assert result.returncode != 0
    assert 'restore of backup set %s failed at configure the packages' % baseline_id(host) in result.output
    assert 'dpkg --configure of the saved packages failed' in result.output
    assert 'The host was put back on backup set' in result.output and 'and its services run' in result.output
    assert_healthy_on(host, target(host))
    assert_state(host, before)
    # The cause gone, the same rollback goes through.
    again = rollback(host)
    assert again.returncode == 0, again.output
    assert_healthy_on(host, baseline(host))
    assert_data_as_before(host)


def test_sqlite_failure_is_recovered_by_the_next_update(host):
    strict_only(host)
    new_data(host)
    # A directory where SQLite's journal would be: the restore cannot clear it.
    host.check_output('mkdir -p /etc/micropvr/records.db-journal/stuck')
    try:
        result = rollback(host)
        # SQLite may not read the database either (its journal is not a file): then there is no
        # set of the host to fall back on, and the run says so before it restores.
        assert_unfinished(host, result, 'restore the SQLite databases: IsADirectoryError', fell_back_in_vain=False)
    finally:
        host.run('rm -rf /etc/micropvr/records.db-journal')
    rerun = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert rerun.returncode == 0, rerun.output
    assert 'was interrupted during its restore step' in rerun.output
    assert_healthy_on(host, target(host))
    recovery = [e for e in history(host) if e['event'] == 'recovery'][-1]
    assert recovery['interrupted_step']['name'] == 'restore'
    assert recovery['backup_id'] == baseline_id(host)


def test_configuration_failure_is_recovered_by_the_next_rollback(host):
    strict_only(host)
    new_data(host)
    # An immutable file (the platform has CAP_LINUX_IMMUTABLE): the restore cannot replace it.
    conf = '/usr/local/nginx-micropvr/conf/nginx.conf'
    host.check_output('touch %s && chattr +i %s' % (conf, conf))
    try:
        result = rollback(host)
        assert_unfinished(host, result, 'restore the configuration: PermissionError')
    finally:
        host.run('chattr -i %s' % conf)
    assert_recovered_by_rollback(host)


def test_external_database_failure_is_recovered_by_the_next_rollback(host):
    strict_only(host)
    new_data(host)
    # The account may still read and dump its database, but no longer drop and create it: the
    # restore imports into a scratch database, but cannot swap it in, and says the old one stays.
    host.check_output("mysql -e \"REVOKE DROP, CREATE ON middleware.* FROM 'micropvr'@'localhost'\"")
    try:
        result = rollback(host)
        assert_unfinished(host, result, 'restore the external databases: mysql database middleware was not restored, '
                                        'its old contents are still in place: the swap of middleware failed')
    finally:
        host.check_output("mysql -e \"GRANT ALL ON middleware.* TO 'micropvr'@'localhost'\"")
    assert_recovered_by_rollback(host)


# Waits for the JSON-RPC port to be free (micropvr stopped by the restore), then holds it.
PORT_HOLDER = r'''
import socket, sys, time
port = int(sys.argv[1])
while True:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
        break
    except OSError:
        s.close()
        time.sleep(0.05)
s.listen()
time.sleep(3600)
'''


def test_service_start_failure_is_recovered_by_the_next_rollback(host):
    strict_only(host)
    new_data(host)
    host.check_output('cat > /root/port-holder.py <<"EOF"\n%sEOF' % PORT_HOLDER)
    host.check_output('setsid nohup python3 /root/port-holder.py %d >/dev/null 2>&1 </dev/null &'
                      % host_profile(host)['rpc_port'])
    try:
        result = rollback(host)
        assert_unfinished(host, result, 'start the services: micropvr does not start')
    finally:
        host.run('pkill -f "[p]ort-holder.py"')
    assert_recovered_by_rollback(host)
