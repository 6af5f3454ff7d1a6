"""What the update role records for a run (roles/update/vars/main.yml): the pre-update set and
the "updated" outcome are read from the backup role's and the install's results, not noted by
tasks of their own, and only when those results belong to this run (its run id). Run by
ansible-playbook on localhost with the role's vars file and the results as variables; the
Molecule update, gate and faults scenarios run the role against real hosts."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
RUN_ID = '20261203T020000Z-update-pvr1'
EARLIER_RUN = '20261203T015500Z-update-pvr1'
OFFSITE = {'status': 'verified', 'snapshot': 'abc123', 'repository': '/srv/restic', 'problems': [], 'removed': []}


def backup_result(verified_by, backup_id='20261203T020001Z'):
    return dict(backup_id=backup_id, status='verified', verified_by=verified_by, offsite=OFFSITE)


def install_result(lock_owner, failed=False):
    result = dict(changed=not failed, lock_owner=lock_owner, gate='passed', restarted=[], services={})
    if failed:
        result.update(failed=True, msg='apt-get install failed')
    return result


def record(tmp_path, check_mode=False, **inputs):
    """__update_record as the role templates it from ``inputs`` (with --check: ``check_mode``)."""
    variables = dict(__update_run_id=RUN_ID, __update_outcome='not attempted', micropvr_version='1.10.0-1',
                     __update_preflight=dict(from_versions={'micropvr': '1.9.0-1'}, to_versions={'micropvr': '1.10.0-1'}))
    variables.update(inputs)
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([dict(
        hosts='localhost', gather_facts=False, connection='local',
        vars_files=[os.path.join(ROOT, 'roles', 'update', 'vars', 'main.yml')], vars=variables,
        tasks=[{'name': 'record', 'ansible.builtin.debug': {'var': '__update_record'}}])]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(playbook)] + (['--check'] if check_mode else []),
                          cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']['__update_record']


def test_a_successful_install_of_this_run_is_the_outcome_updated_with_this_runs_set(tmp_path):
    got = record(tmp_path, micropvr_backup_result=backup_result(RUN_ID), __update_install=install_result(RUN_ID))
    assert got['outcome'] == 'updated'
    assert got['backup_id'] == '20261203T020001Z'
    assert got['offsite_status'] == 'verified'
    assert got['gate'] == 'passed'


@pytest.mark.parametrize('leftovers', [
    # The backup role ran before the update role in the same play (roles: [backup, update]) and
    # this run took no set (micropvr_update_without_backup, or the host is at the target).
    dict(micropvr_backup_result=backup_result(None)),
    # An earlier update of the host in the same play.
    dict(micropvr_backup_result=backup_result(EARLIER_RUN), __update_install=install_result(EARLIER_RUN)),
])
def test_results_an_earlier_run_left_are_not_this_runs(tmp_path, leftovers):
    got = record(tmp_path, **leftovers)
    assert got['outcome'] == 'not attempted'
    assert got['backup_id'] is None
    assert got['offsite_status'] == 'off'


def test_a_run_without_results_yet_has_no_set_and_no_outcome(tmp_path):
    got = record(tmp_path)
    assert (got['outcome'], got['backup_id'], got['offsite_status'], got['gate']) == (
        'not attempted', None, 'off', 'not reached')


@pytest.mark.parametrize('outcome', ['failed', 'rolled back', 'rollback failed'])
def test_a_failed_install_keeps_what_the_rescue_noted(tmp_path, outcome):
    got = record(tmp_path, __update_outcome=outcome, micropvr_backup_result=backup_result(RUN_ID),
                 __update_install=install_result(RUN_ID, failed=True))
    assert got['outcome'] == outcome
    assert got['backup_id'] == '20261203T020001Z'
    assert got['gate'] == 'passed'


AT_TARGET = dict(from_versions={'micropvr': '1.10.0-1'}, to_versions={'micropvr': '1.10.0-1'})
SKIPPED = dict(skipped=True, changed=False)


@pytest.mark.parametrize('check_mode', [False, True])
def test_a_host_at_the_target_is_already_at_target(tmp_path, check_mode):
    got = record(tmp_path, check_mode=check_mode, __update_preflight=AT_TARGET, __update_install=SKIPPED)
    assert got['outcome'] == 'already at target'


def test_a_dry_run_of_a_real_update_would_update(tmp_path):
    got = record(tmp_path, check_mode=True, __update_install=SKIPPED)
    assert got['outcome'] == 'would update'


def test_what_the_rescue_noted_comes_first(tmp_path):
    got = record(tmp_path, check_mode=True, __update_outcome='failed', __update_install=SKIPPED)
    assert got['outcome'] == 'failed'
