"""The update role's one pre-flight check task (roles/update/tasks/checks.yml): it passes when
dpkg is idle, micropvr.conf parses and the services run, and otherwise fails with a message that
names every failed check. Run by ansible-playbook on localhost with the inputs as variables (the
task reads only the pre-flight result, the MicroPVR facts and micropvr_update_allow_stopped); the
Molecule faults scenario runs it against real hosts."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
TASK_NAME = 'Check that dpkg is idle, micropvr.conf parses and the MicroPVR services run'

DPKG = ('Pre-flight: dpkg has not finished installing micropvr is half-configured: a package operation on this host '
        'was interrupted, not by a run of this collection. Finish it (dpkg --configure -a) or restore a backup set '
        'with playbooks/rollback.yml, then run the update again.')
CONFIG = ("Pre-flight: /etc/micropvr/micropvr.conf:7: expected a value after the key 'log-verbose-level'. "
          'Fix the file, then run the update again.')
STOPPED = ('Pre-flight: not running: micropvr. Start them and run the update again, or set '
           'micropvr_update_allow_stopped=true to update anyway.')


@pytest.fixture(scope='module')
def check_task(tmp_path_factory):
    """A task file holding only the check task, as the role has it."""
    with open(os.path.join(ROOT, 'roles', 'update', 'tasks', 'checks.yml')) as handle:
        tasks = yaml.safe_load(handle)
    task = [t for t in tasks if t['name'] == TASK_NAME]
    assert len(task) == 1, 'checks.yml has no task named %r' % TASK_NAME
    path = tmp_path_factory.mktemp('checks') / 'check.yml'
    path.write_text(yaml.safe_dump(task))
    return str(path)


def run_check(tmp_path, check_task, unfinished=None, valid=True, running=True, allow_stopped=False):
    variables = dict(
        __update_preflight=dict(unfinished=unfinished or {}),
        ansible_facts=dict(micropvr=dict(
            config=dict(valid=valid, error=None if valid else CONFIG[len('Pre-flight: '):-len(
                '. Fix the file, then run the update again.')]),
            running=running,
            services=dict(micropvr=dict(state='running' if running else 'stopped'), micropvs=dict(state='running')))),
        micropvr_update_allow_stopped=allow_stopped)
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([dict(hosts='localhost', gather_facts=False, connection='local',
                                             vars=variables,
                                             tasks=[{'ansible.builtin.import_tasks': check_task}])]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(playbook)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    return proc.returncode, result


def test_passes_when_every_check_passes(tmp_path, check_task):
    rc, result = run_check(tmp_path, check_task)
    assert rc == 0 and not result.get('failed'), result


def test_a_stopped_service_passes_when_the_operator_allows_it(tmp_path, check_task):
    rc, result = run_check(tmp_path, check_task, running=False, allow_stopped=True)
    assert rc == 0 and not result.get('failed'), result


@pytest.mark.parametrize('inputs, message', [
    (dict(unfinished={'micropvr': 'half-configured'}), DPKG),
    (dict(valid=False), CONFIG),
    (dict(running=False), STOPPED),
    (dict(unfinished={'micropvr': 'half-configured'}, valid=False, running=False), ' '.join((DPKG, CONFIG, STOPPED))),
])
def test_fails_naming_every_failed_check(tmp_path, check_task, inputs, message):
    rc, result = run_check(tmp_path, check_task, **inputs)
    assert rc != 0 and result['failed'] is True, result
    assert result['msg'] == message
