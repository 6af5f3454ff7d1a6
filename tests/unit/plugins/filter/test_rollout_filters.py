"""The rollout_* filters: thin wrappers over module_utils/rollout.py, here against real hostvars
in an ansible-playbook run (the logic itself: tests/unit/plugins/module_utils/test_rollout.py)."""

import json
import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.filter import rollout as plugin
from ansible_collections.microimpuls.micropvr.plugins.filter.rollout import rollout_progress, rollout_report, rollout_summary

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN = os.path.dirname(sys.executable)
RESULT = dict(outcome='updated', from_versions={'micropvr': '1.9.0-1'}, to_versions={'micropvr': '1.10.0-1'},
              backup_id='20261126T221500Z', target='1.10.0-1')


def test_filter_module_exposes_the_functions():
    assert plugin.FilterModule().filters() == {
        'rollout_progress': rollout_progress, 'rollout_summary': rollout_summary, 'rollout_report': rollout_report}


def test_reads_the_playbooks_host_state():
    hostvars = {'a': {'__micropvr_rollout_tried': True, 'micropvr_update_result': RESULT},
                'b': {'__micropvr_rollout_tried': True, '__micropvr_rollout_message': 'boom',
                      'micropvr_update_result': dict(RESULT, outcome='rolled back')},
                'c': {}}
    assert rollout_progress(['a', 'b', 'c'], hostvars, 50) == dict(
        stopped=False, tried=['a', 'b'], failed=['b'], failed_percentage=50.0)
    summary = rollout_summary(['a', 'b', 'c'], hostvars)
    assert [entry['outcome'] for entry in summary.values()] == ['updated', 'rolled back', 'not attempted']


@pytest.mark.parametrize('call, message', [
    (lambda: rollout_progress('a', {}), "rollout_progress: expected a list of host names (e.g. groups['micropvr']), got 'a'"),
    (lambda: rollout_progress(['a'], []), 'rollout_progress: expected hostvars as the argument, got []'),
    (lambda: rollout_summary(['x'], {}), 'rollout_summary: host x is not in the inventory'),
    (lambda: rollout_progress(['a'], {'a': {}}, 'x'),
     "rollout_progress: micropvr_max_fail_percentage must be a number from 0 to 100, got 'x'"),
    (lambda: rollout_summary(['a'], {'a': {'micropvr_update_result': 'ok'}}),
     "rollout_summary: host a: micropvr_update_result must be a dict, got 'ok'"),
    (lambda: rollout_report('x'), "rollout_report: expected the rollout summary"),
])
def test_bad_input_is_an_ansible_filter_error(call, message):
    with pytest.raises(AnsibleFilterError) as info:
        call()
    assert str(info.value).startswith(message)


INVENTORY = {'micropvr': {'hosts': {
    'pvr1': {'__micropvr_rollout_tried': True, 'micropvr_update_result': RESULT},
    'pvr2': {'__micropvr_rollout_tried': True},
    'pvr3': {'__micropvr_rollout_tried': True, '__micropvr_rollout_message': 'Update of pvr3 FAILED',
             'micropvr_update_result': dict(RESULT, outcome='rolled back')},
    'pvr4': {},
}}}

PLAYBOOK = '''
- name: Use the rollout filters on real hostvars
  hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - name: Use them
      ansible.builtin.set_fact:
        progress: "{{ groups['micropvr'] | microimpuls.micropvr.rollout_progress(hostvars, '50%') }}"
        strict: "{{ groups['micropvr'] | microimpuls.micropvr.rollout_progress(hostvars) }}"
        summary: "{{ groups['micropvr'] | microimpuls.micropvr.rollout_summary(hostvars) }}"
        report: "{{ groups['micropvr'] | microimpuls.micropvr.rollout_summary(hostvars) | microimpuls.micropvr.rollout_report }}"

    - name: A bad limit
      ansible.builtin.debug:
        msg: "{{ groups['micropvr'] | microimpuls.micropvr.rollout_progress(hostvars, 'half') }}"
      ignore_errors: true
      register: err_limit

    - name: Save what the filters returned
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ {'progress': progress, 'strict': strict, 'summary': summary, 'report': report,
                      'err_limit': err_limit} | to_json }}"
'''


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('rollout-play')
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    inventory = dict(INVENTORY, all={'hosts': {'localhost': {'ansible_python_interpreter': sys.executable}}})
    (tmp_path / 'inventory.json').write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'), ANSIBLE_RETRY_FILES_ENABLED='0')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'inventory.json', 'play.yml',
                           '-e', 'out=%s' % (tmp_path / 'out.json')], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(tmp_path / 'out.json')) as handle:
        return json.load(handle)


def test_rendered_progress(rendered):
    # pvr2 (tried, no result: unreachable) and pvr3 (rolled back) failed out of three tried.
    assert rendered['progress']['tried'] == ['pvr1', 'pvr2', 'pvr3']
    assert rendered['progress']['failed'] == ['pvr2', 'pvr3']
    assert rendered['progress']['stopped'] is True
    assert rendered['strict']['stopped'] is True


def test_rendered_summary(rendered):
    assert rendered['summary'] == {
        'pvr1': {'outcome': 'updated', 'from': {'micropvr': '1.9.0-1'}, 'to': {'micropvr': '1.10.0-1'},
                 'backup_id': '20261126T221500Z'},
        'pvr2': {'outcome': 'unreachable', 'from': {}, 'to': {}, 'backup_id': None},
        'pvr3': {'outcome': 'rolled back', 'from': {'micropvr': '1.9.0-1'}, 'to': {'micropvr': '1.10.0-1'},
                 'backup_id': '20261126T221500Z'},
        'pvr4': {'outcome': 'not attempted', 'from': {}, 'to': {}, 'backup_id': None},
    }
    assert rendered['report'][0] == 'pvr1: UPDATED (micropvr 1.9.0-1 -> 1.10.0-1; backup 20261126T221500Z)'


def test_rendered_error_names_the_filter_and_the_variable(rendered):
    assert rendered['err_limit']['failed'] is True
    assert ("rollout_progress: micropvr_max_fail_percentage must be a number from 0 to 100, got 'half'"
            in rendered['err_limit']['msg'])
