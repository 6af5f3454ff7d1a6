"""Unit tests for the deb_version test plugin (plugins/test/deb_version.py)."""

import inspect
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils.debversion import OPERATORS
from ansible_collections.microimpuls.micropvr.plugins.test import deb_version as plugin
from ansible_collections.microimpuls.micropvr.plugins.test.deb_version import deb_version

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
DOC_PATH = os.path.join(ROOT, 'plugins', 'test', 'deb_version.yml')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN = os.path.dirname(sys.executable)

OPERATOR_LIST = '<<, <=, =, >=, >>, ==, !=, lt, le, eq, ne, ge, gt'


def test_test_module_exposes_the_function():
    assert plugin.TestModule().tests() == {'deb_version': deb_version}


@pytest.mark.parametrize('version, operator, other, expected', [
    ('1.10.0-1', '>=', '1.9.0-1', True),
    ('1.10.0-1', '>>', '1.9.0-1', True),
    ('1.10.0-1', 'gt', '1.9.0-1', True),
    ('1.10.0-1', 'lt', '1.9.0-1', False),
    ('1.10.0-1', '<<', '1.9.0-1', False),
    ('1.0~rc1', '<<', '1.0', True),
    ('1.0~rc1', 'le', '1.0', True),
    ('1.0', '=', '1.00', True),
    ('1.0', '==', '0:1.0', True),
    ('1.0', 'eq', '1.0-0', True),
    ('1.0', '!=', '1.00', False),
    ('1.0', 'ne', '1.0.0', True),
    ('1.0', '<=', '1.0', True),
    ('1.0', 'ge', '1.0', True),
    ('1:0.1', '>>', '9.9', True),
    ('1.0-1~bpo1', 'lt', '1.0-1', True),
])
def test_deb_version(version, operator, other, expected):
    assert deb_version(version, operator, other) is expected
    assert plugin.TestModule().tests()['deb_version'](version, operator, other) is expected


@pytest.mark.parametrize('operator', OPERATORS)
def test_every_documented_operator_works(operator):
    assert isinstance(deb_version('1.0', operator, '2.0'), bool)


@pytest.mark.parametrize('operator', ['=>', '<>', 'GT', '', 'lt-nl'])
def test_unknown_operator(operator):
    with pytest.raises(AnsibleFilterError) as excinfo:
        deb_version('1.0', operator, '1.0')
    assert excinfo.value.message == 'deb_version: unknown comparison operator %r (use one of %s)' % (operator,
                                                                                                 OPERATOR_LIST)


@pytest.mark.parametrize('version, other, message', [
    ('abc', '1.0', "deb_version: version 'abc': the upstream version must start with a digit"),
    ('1.0', ':1', "deb_version: version ':1' has an empty epoch"),
    ('1.0 1', '1.0', "deb_version: version '1.0 1' has embedded spaces"),
    (None, '1.0', 'deb_version: version must be a string, got NoneType'),
])
def test_malformed_version(version, other, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        deb_version(version, '>=', other)
    assert excinfo.value.message == message


def test_a_malformed_version_is_reported_before_an_unknown_operator():
    with pytest.raises(AnsibleFilterError) as excinfo:
        deb_version('abc', '=>', '1.0')
    assert excinfo.value.message == "deb_version: version 'abc': the upstream version must start with a digit"


# --- documentation -------------------------------------------------------------------------------

def load_doc():
    with open(DOC_PATH) as handle:
        return yaml.safe_load(handle)


def test_doc_sidecar():
    doc = load_doc()
    assert sorted(doc) == ['DOCUMENTATION', 'EXAMPLES', 'RETURN']
    documentation = doc['DOCUMENTATION']
    assert documentation['name'] == 'deb_version'
    assert documentation['short_description']
    assert 'microimpuls.micropvr.deb_version' in doc['EXAMPLES']
    yaml.safe_load(doc['EXAMPLES'])
    assert doc['RETURN']['_value']['type'] == 'boolean'


def test_doc_options_match_the_signature_and_operators():
    documentation = load_doc()['DOCUMENTATION']
    parameters = list(inspect.signature(deb_version).parameters)
    assert [p.strip() for p in documentation['positional'].split(',')] == parameters[1:]
    assert sorted(documentation['options']) == sorted(['_input'] + parameters[1:])
    assert all(option['required'] is True for option in documentation['options'].values())
    assert documentation['options']['operator']['choices'] == list(OPERATORS)


def ansible_env(tmp_path):
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'), ANSIBLE_RETRY_FILES_ENABLED='0')


def test_ansible_doc(tmp_path):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'test', 'microimpuls.micropvr.deb_version'],
                          cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'microimpuls.micropvr.deb_version' in proc.stdout
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'test', '--json',
                           'microimpuls.micropvr.deb_version'],
                          cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)['microimpuls.micropvr.deb_version']
    assert doc['doc']['name'] == 'deb_version'
    assert doc['doc']['options']['operator']['choices'] == list(OPERATORS)
    assert doc['examples'] and doc['return']


# --- rendered by Ansible -------------------------------------------------------------------------

PLAYBOOK = '''
- name: The deb_version test rendered by Ansible
  hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - name: Use the test
      ansible.builtin.set_fact:
        newer: "{{ '1.10.0-1' is microimpuls.micropvr.deb_version('>=', '1.9.0-1') }}"
        older: "{{ '1.10.0-1' is microimpuls.micropvr.deb_version('lt', '1.9.0-1') }}"
        tilde: "{{ '1.0~rc1' is microimpuls.micropvr.deb_version('<<', '1.0') }}"
        not_newer: "{{ '1.0' is not microimpuls.micropvr.deb_version('>>', '1.0') }}"
        from_facts: "{{ packages.micropvr.version is microimpuls.micropvr.deb_version('>=', '1.10.0') }}"
        selected: "{{ versions | select('microimpuls.micropvr.deb_version', '>=', '1.10') | list }}"

    - name: Used in a condition
      ansible.builtin.set_fact:
        by_when: true
      when: packages.micropvr.version is microimpuls.micropvr.deb_version('>=', '1.10.0')

    - name: An unknown operator
      ansible.builtin.debug:
        msg: "{{ '1.0' is microimpuls.micropvr.deb_version('=>', '1.0') }}"
      ignore_errors: true
      register: err_operator

    - name: A malformed version
      ansible.builtin.debug:
        msg: "{{ '1.0' is microimpuls.micropvr.deb_version('>=', 'x1') }}"
      ignore_errors: true
      register: err_version

    - name: Save the results
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ {'newer': newer, 'older': older, 'tilde': tilde, 'not_newer': not_newer,
                      'from_facts': from_facts, 'selected': selected, 'by_when': by_when | default(false),
                      'err_operator': err_operator, 'err_version': err_version} | to_json }}"
'''


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('deb-version-play')
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    extra = dict(packages={'micropvr': {'installed': True, 'version': '1.10.0-1'}},
                 versions=['1.9.0-1', '1.10~rc1-1', '1.10-1', '1:0.1', '1.10'],
                 out=str(tmp_path / 'out.json'), ansible_python_interpreter=sys.executable)
    (tmp_path / 'vars.json').write_text(json.dumps(extra))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', 'play.yml',
                           '-e', '@vars.json'], cwd=str(tmp_path), env=ansible_env(tmp_path),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(tmp_path / 'out.json')) as handle:
        return json.load(handle)


def test_rendered_results(rendered):
    assert rendered['newer'] is True
    assert rendered['older'] is False
    assert rendered['tilde'] is True
    assert rendered['not_newer'] is True
    assert rendered['from_facts'] is True
    assert rendered['selected'] == ['1.10-1', '1:0.1', '1.10']
    assert rendered['by_when'] is True


@pytest.mark.parametrize('key, message', [
    ('err_operator', "deb_version: unknown comparison operator '=>' (use one of %s)" % OPERATOR_LIST),
    ('err_version', "deb_version: version 'x1': the upstream version must start with a digit"),
])
def test_rendered_errors(rendered, key, message):
    assert rendered[key]['failed'] is True
    assert message in rendered[key]['msg']
    assert 'microimpuls.micropvr.deb_version' in rendered[key]['msg']
