"""The backup installs only the tools that are missing. With them installed, apt is not on a
backup's path: an unreachable repository and a stale package index do not stop a backup (the
vendor's rule is a backup before every update, and the update may be what fixes the sources).
The backup module itself tells which are missing: backup.yml gathers no facts for that."""

import re

from micropvr_testlib import backup_ids, run_playbook

TOOL = 'dpkg-repack'
UNREACHABLE_SOURCE = '/etc/apt/sources.list.d/zz-unreachable.list'
INSTALL_TASK = r'TASK \[microimpuls\.micropvr\.backup : Install backup tools\] \*+\n'
TOOLS_INCLUDE = r'TASK \[microimpuls\.micropvr\.backup : Install the missing backup tools, then take the set\] \*+\n'
TAKEN = r'TASK \[microimpuls\.micropvr\.backup : Take a backup set of MicroPVR\] \*+\nchanged: '
# backup.yml turns the shared role's facts off: the task is skipped, no module runs.
FACTS_SKIPPED = r'TASK \[microimpuls\.micropvr\.micropvr : Gather MicroPVR facts\] \*+\nskipping: '


def test_check_mode_names_a_missing_tool_and_installs_nothing(host):
    host.check_output('DEBIAN_FRONTEND=noninteractive apt-get remove -y -q %s' % TOOL)
    before = backup_ids(host)
    result = run_playbook(host, 'backup.yml', '--check')
    assert result.returncode == 0, result.output
    assert 'Check mode: would install %s, then back up micropvr 1.9.0-1, micropvs 1.9.0-1' % TOOL in result.output
    assert not host.package(TOOL).is_installed
    assert backup_ids(host) == before


def test_a_missing_tool_is_installed(host):
    host.check_output('DEBIAN_FRONTEND=noninteractive apt-get remove -y -q %s' % TOOL)
    assert not host.package(TOOL).is_installed
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason='molecule tool missing')
    assert result.returncode == 0, result.output
    assert re.search(INSTALL_TASK + r'changed: ', result.output), result.output
    assert host.package(TOOL).is_installed
    # The first attempt found the tool missing and took nothing; the one after the install did.
    assert re.search(r'Take a backup set of MicroPVR\] \*+\nok: ', result.output), result.output
    assert len(re.findall(TAKEN, result.output)) == 1, result.output
    assert re.search(FACTS_SKIPPED, result.output), result.output


def test_installed_tools_need_no_repository(host):
    # A refresh of apt's index now would fail: a source nothing answers on, and an index older
    # than the role's cache_valid_time (one day).
    host.check_output("echo 'deb http://127.0.0.1:9/debian nowhere main' > %s" % UNREACHABLE_SOURCE)
    host.check_output('touch -d "3 days ago" /var/lib/apt/lists; '
                      'if [ -e /var/lib/apt/periodic/update-success-stamp ]; then '
                      'touch -d "3 days ago" /var/lib/apt/periodic/update-success-stamp; fi')
    try:
        result = run_playbook(host, 'backup.yml', micropvr_backup_reason='molecule repository unreachable')
    finally:
        host.check_output('rm -f %s' % UNREACHABLE_SOURCE)
    assert result.returncode == 0, result.output
    assert re.search(TOOLS_INCLUDE + r'skipping: ', result.output), result.output
    assert not re.search(INSTALL_TASK, result.output), result.output
    # One remote task: the backup module (no facts task, no apt task).
    assert re.search(FACTS_SKIPPED, result.output), result.output
    assert len(re.findall(TAKEN, result.output)) == 1, result.output
