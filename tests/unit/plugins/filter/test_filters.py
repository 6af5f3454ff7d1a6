"""Unit tests for the filter plugins: deb_version_compare, micropvr_config, backup_gate and backup_pick.

(backup_fetch_files has its own tests in test_backup_fetch_files.py; its documentation is checked here.)

Called directly, through FilterModule().filters(), and rendered by Ansible's own templating in a
real ansible-playbook run; their YAML documentation is checked with ansible-doc.
"""

import datetime
import inspect
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.filter import backup_gate as backup_gate_plugin
from ansible_collections.microimpuls.micropvr.plugins.filter import deb_version_compare as compare_plugin
from ansible_collections.microimpuls.micropvr.plugins.filter import micropvr_config as config_plugin
from ansible_collections.microimpuls.micropvr.plugins.filter.backup_fetch_files import backup_fetch_files
from ansible_collections.microimpuls.micropvr.plugins.filter.backup_gate import backup_gate, backup_pick
from ansible_collections.microimpuls.micropvr.plugins.filter.deb_version_compare import deb_version_compare
from ansible_collections.microimpuls.micropvr.plugins.filter.micropvr_config import micropvr_config
from ansible_collections.microimpuls.micropvr.plugins.filter.rollout import rollout_progress, rollout_report, rollout_summary

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
FILTER_DIR = os.path.join(ROOT, 'plugins', 'filter')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN = os.path.dirname(sys.executable)

INSTALLED = {'micropvr': '1.9.0-1', 'micropvs': '2.3-1'}
FACTS = {'micropvr': {'installed': True, 'version': '1.9.0-1'}, 'micropvs': {'installed': True, 'version': '2.3-1'}}

CONF_TEXT = '''{
  // where the API listens
  "json-rpc-listen-port": 4089,
  /* recordings
     database */
  "records-db-path": "/var/lib/micropvr/records.db",
  "url": "http://example.com//path"
}
'''

CONF_MISSING_COMMA = '{\n  "json-rpc-listen-port": 4089\n  "records-db-path": "/x"\n}\n'


def iso_ago(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def make_set(backup_id, age=600, status='verified', packages=None, problems=None):
    return dict(id=backup_id, status=status, created_at=iso_ago(age), problems=problems or [],
                packages=dict(INSTALLED) if packages is None else packages, pinned=False)


def sets_info():
    """A micropvr_backup_info result: oldest first, the newest one taken from a different version."""
    return dict(changed=False, root='/var/backups/micropvr', sets=[
        make_set('20261126T200000Z', age=7200),
        make_set('20261126T210000Z', age=1200),
        make_set('20261126T210000Z-2', age=1100),
        make_set('20261126T211500Z', age=600, packages={'micropvr': '1.8.0-1', 'micropvs': '2.3-1'}),
    ])


# --- FilterModule --------------------------------------------------------------------------------

def test_filter_modules_expose_the_functions():
    assert compare_plugin.FilterModule().filters() == {'deb_version_compare': deb_version_compare}
    assert config_plugin.FilterModule().filters() == {'micropvr_config': micropvr_config}
    assert backup_gate_plugin.FilterModule().filters() == {'backup_gate': backup_gate, 'backup_pick': backup_pick}


# --- deb_version_compare -------------------------------------------------------------------------

@pytest.mark.parametrize('version, other, expected', [
    ('1.0~rc1', '1.0', -1),
    ('1.9.0-1', '1.10.0-1', -1),
    ('1.00', '1.0', 0),
    ('0:1.0-0', '1.0', 0),
    ('1:0.9', '2.0', 1),
    ('1.0-1+deb12u1', '1.0-1', 1),
])
def test_deb_version_compare(version, other, expected):
    assert deb_version_compare(version, other) == expected
    assert compare_plugin.FilterModule().filters()['deb_version_compare'](version, other) == expected


@pytest.mark.parametrize('version, other, message', [
    ('abc', '1.0', "deb_version_compare: version 'abc': the upstream version must start with a digit"),
    ('1.0', '1.0-', "deb_version_compare: version '1.0-' has an empty revision after \"-\""),
    ('', '1.0', 'deb_version_compare: version is empty'),
    ('1.0', 'a:1', "deb_version_compare: version 'a:1' has a non-numeric epoch 'a'"),
    (None, '1.0', 'deb_version_compare: version must be a string, got NoneType'),
    ('1.0', 1.9, 'deb_version_compare: version must be a string, got float'),
])
def test_deb_version_compare_errors(version, other, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        deb_version_compare(version, other)
    assert excinfo.value.message == message


# --- micropvr_config -----------------------------------------------------------------------------

def test_micropvr_config():
    assert micropvr_config(CONF_TEXT) == {'json-rpc-listen-port': 4089,
                                          'records-db-path': '/var/lib/micropvr/records.db',
                                          'url': 'http://example.com//path'}
    assert config_plugin.FilterModule().filters()['micropvr_config']('{"a": 1}', 'x.conf') == {'a': 1}


@pytest.mark.parametrize('text, path, message', [
    (CONF_MISSING_COMMA, None,
     "micropvr_config: micropvr.conf:3: Expecting ',' delimiter (is a comma missing at the end of line 2?)"),
    (CONF_MISSING_COMMA, '/etc/micropvr/micropvr.conf',
     "micropvr_config: /etc/micropvr/micropvr.conf:3: Expecting ',' delimiter "
     "(is a comma missing at the end of line 2?)"),
    ('', None, 'micropvr_config: micropvr.conf: the file is empty'),
    ('// only a comment\n', None, 'micropvr_config: micropvr.conf: the file is empty'),
    ('[1, 2]', None, 'micropvr_config: micropvr.conf:1: expected a JSON object at the top level, found list'),
    ('{\n/* open', None, 'micropvr_config: micropvr.conf:2: unterminated /* comment'),
    (1, None, 'micropvr_config: expected the text of micropvr.conf, got int'),
    (b'{}', None, 'micropvr_config: expected the text of micropvr.conf, got bytes'),
    ({'a': 1}, None, 'micropvr_config: expected the text of micropvr.conf, got dict'),
    (None, None, 'micropvr_config: expected the text of micropvr.conf, got NoneType'),
])
def test_micropvr_config_errors(text, path, message):
    args = (text,) if path is None else (text, path)
    with pytest.raises(AnsibleFilterError) as excinfo:
        micropvr_config(*args)
    assert excinfo.value.message == message


# --- backup_gate ---------------------------------------------------------------------------------

def test_backup_gate_qualifying_set():
    assert backup_gate(make_set('20261126T210000Z'), INSTALLED, 3600) == []
    assert backup_gate(make_set('20261126T210000Z'), FACTS, '3600') == []


def test_backup_gate_reasons():
    entry = make_set('20261126T210000Z', status='damaged', problems=['seal mismatch'], age=7200,
                     packages={'micropvr': '1.8.0-1'})
    problems = backup_gate(entry, INSTALLED, 3600)
    assert problems[0] == 'backup set 20261126T210000Z is damaged: seal mismatch'
    assert problems[1].startswith('backup set 20261126T210000Z was taken 72')  # 7200 s, give or take a second
    assert problems[1].endswith(' s ago, more than micropvr_backup_max_age (3600 s)')
    assert problems[2:] == ['backup set 20261126T210000Z has micropvr 1.8.0-1, but 1.9.0-1 is installed',
                            'backup set 20261126T210000Z does not contain micropvs']


def test_backup_gate_float_max_age_is_truncated():
    assert backup_gate(make_set('20261126T210000Z', age=95), INSTALLED, 100.9) == []
    problems = backup_gate(make_set('20261126T210000Z', age=200), INSTALLED, 100.9)
    assert len(problems) == 1 and problems[0].endswith('more than micropvr_backup_max_age (100 s)')


@pytest.mark.parametrize('backup', ['20261126T210000Z', None, [], {'status': 'verified'}])
def test_backup_gate_needs_one_set(backup):
    with pytest.raises(AnsibleFilterError) as excinfo:
        backup_gate(backup, INSTALLED, 3600)
    assert excinfo.value.message == 'backup_gate: expected one set from micropvr_backup_info, got %r' % (backup,)


@pytest.mark.parametrize('max_age, message', [
    ('an hour', "max_age must be a number of seconds, got 'an hour'"),
    (None, 'max_age must be a number of seconds, got None'),
    ([3600], 'max_age must be a number of seconds, got [3600]'),
    (-1, 'max_age must not be negative, got -1'),
    ('-5', 'max_age must not be negative, got -5'),
])
@pytest.mark.parametrize('name', ['backup_gate', 'backup_pick'])
def test_bad_max_age(name, max_age, message):
    function = backup_gate_plugin.FilterModule().filters()[name]
    first = make_set('20261126T210000Z') if name == 'backup_gate' else [make_set('20261126T210000Z')]
    with pytest.raises(AnsibleFilterError) as excinfo:
        function(first, INSTALLED, max_age)
    assert message in excinfo.value.message


@pytest.mark.parametrize('name', ['backup_gate', 'backup_pick'])
def test_bad_max_age_names_the_filter(name):
    function = backup_gate_plugin.FilterModule().filters()[name]
    first = make_set('20261126T210000Z') if name == 'backup_gate' else [make_set('20261126T210000Z')]
    with pytest.raises(AnsibleFilterError) as excinfo:
        function(first, INSTALLED, 'an hour')
    assert excinfo.value.message == "%s: max_age must be a number of seconds, got 'an hour'" % name


# --- backup_pick ---------------------------------------------------------------------------------

def test_backup_pick_from_the_whole_result():
    info = sets_info()
    assert backup_pick(info, INSTALLED, 3600) is info['sets'][2]  # -2 of 21:00:00; 21:15 has another version


def test_backup_pick_from_the_sets_list_and_facts():
    info = sets_info()
    assert backup_pick(info['sets'], FACTS, 3600)['id'] == '20261126T210000Z-2'


def test_backup_pick_none():
    assert backup_pick(sets_info(), INSTALLED, 60) is None
    assert backup_pick([], INSTALLED, 3600) is None
    assert backup_pick({'sets': []}, INSTALLED, 3600) is None


@pytest.mark.parametrize('sets', ['20261126T210000Z', None, {'changed': False}, {'id': '20261126T210000Z'}, 3])
def test_backup_pick_needs_the_sets(sets):
    with pytest.raises(AnsibleFilterError) as excinfo:
        backup_pick(sets, INSTALLED, 3600)
    assert excinfo.value.message == 'backup_pick: expected the sets of micropvr_backup_info, got %r' % (sets,)


# --- rendered by Ansible -------------------------------------------------------------------------

PLAYBOOK = '''
- name: Filters rendered by Ansible
  hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - name: Use every filter
      ansible.builtin.set_fact:
        cmp_lt: "{{ '1.0~rc1' | microimpuls.micropvr.deb_version_compare('1.0') }}"
        cmp_eq: "{{ '1.00' | microimpuls.micropvr.deb_version_compare('1.0') }}"
        cmp_gt: "{{ '1.10.0-1' | microimpuls.micropvr.deb_version_compare('1.9.0-1') }}"
        cmp_is_newer: "{{ '1.10.0-1' | microimpuls.micropvr.deb_version_compare(installed.micropvr) > 0 }}"
        conf: "{{ conf_text | microimpuls.micropvr.micropvr_config }}"
        port: "{{ (conf_text | microimpuls.micropvr.micropvr_config)['json-rpc-listen-port'] }}"
        gate_ok: "{{ backups.sets[2] | microimpuls.micropvr.backup_gate(facts, 3600) }}"
        gate_bad: "{{ backups.sets[3] | microimpuls.micropvr.backup_gate(installed, 3600) }}"
        picked: "{{ backups | microimpuls.micropvr.backup_pick(facts, 3600) }}"
        picked_id: "{{ (backups.sets | microimpuls.micropvr.backup_pick(installed, 3600)).id }}"
        picked_none: "{{ backups | microimpuls.micropvr.backup_pick(installed, 60) }}"

    - name: A malformed version
      ansible.builtin.debug:
        msg: "{{ 'abc' | microimpuls.micropvr.deb_version_compare('1.0') }}"
      ignore_errors: true
      register: err_compare

    - name: A configuration without a comma
      ansible.builtin.debug:
        msg: "{{ conf_missing_comma | microimpuls.micropvr.micropvr_config('/etc/micropvr/micropvr.conf') }}"
      ignore_errors: true
      register: err_config

    - name: Not a set
      ansible.builtin.debug:
        msg: "{{ 'x' | microimpuls.micropvr.backup_gate(installed, 3600) }}"
      ignore_errors: true
      register: err_gate

    - name: Not the sets
      ansible.builtin.debug:
        msg: "{{ 42 | microimpuls.micropvr.backup_pick(installed, 3600) }}"
      ignore_errors: true
      register: err_pick

    - name: Save what the filters returned
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ {'cmp_lt': cmp_lt, 'cmp_eq': cmp_eq, 'cmp_gt': cmp_gt, 'cmp_is_newer': cmp_is_newer,
                      'conf': conf, 'port': port, 'gate_ok': gate_ok, 'gate_bad': gate_bad,
                      'picked': picked, 'picked_id': picked_id, 'picked_none': picked_none,
                      'err_compare': err_compare, 'err_config': err_config, 'err_gate': err_gate,
                      'err_pick': err_pick} | to_json }}"
'''


def ansible_env(tmp_path):
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'), ANSIBLE_RETRY_FILES_ENABLED='0')


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('filters-play')
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    extra = dict(conf_text=CONF_TEXT, conf_missing_comma=CONF_MISSING_COMMA, installed=INSTALLED, facts=FACTS,
                 backups=sets_info(), out=str(tmp_path / 'out.json'), ansible_python_interpreter=sys.executable)
    (tmp_path / 'vars.json').write_text(json.dumps(extra))
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', 'play.yml',
                           '-e', '@vars.json'], cwd=str(tmp_path), env=ansible_env(tmp_path),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(tmp_path / 'out.json')) as handle:
        return json.load(handle)


def test_rendered_deb_version_compare(rendered):
    assert (rendered['cmp_lt'], rendered['cmp_eq'], rendered['cmp_gt']) == (-1, 0, 1)
    assert rendered['cmp_is_newer'] is True


def test_rendered_micropvr_config(rendered):
    assert rendered['conf'] == micropvr_config(CONF_TEXT)
    assert rendered['port'] == 4089


def test_rendered_backup_gate_and_pick(rendered):
    assert rendered['gate_ok'] == []
    assert rendered['gate_bad'] == ['backup set 20261126T211500Z has micropvr 1.8.0-1, but 1.9.0-1 is installed']
    assert rendered['picked']['id'] == '20261126T210000Z-2'
    assert rendered['picked']['packages'] == INSTALLED
    assert rendered['picked_id'] == '20261126T210000Z-2'
    assert rendered['picked_none'] is None


@pytest.mark.parametrize('key, name, message', [
    ('err_compare', 'deb_version_compare',
     "deb_version_compare: version 'abc': the upstream version must start with a digit"),
    ('err_config', 'micropvr_config',
     "micropvr_config: /etc/micropvr/micropvr.conf:3: Expecting ',' delimiter (is a comma missing at the end of "
     "line 2?)"),
    ('err_gate', 'backup_gate', "backup_gate: expected one set from micropvr_backup_info, got 'x'"),
    ('err_pick', 'backup_pick', 'backup_pick: expected the sets of micropvr_backup_info, got 42'),
])
def test_rendered_errors_fail_the_task_with_the_message(rendered, key, name, message):
    result = rendered[key]
    assert result['failed'] is True
    assert message in result['msg']
    assert 'microimpuls.micropvr.%s' % name in result['msg']


# --- documentation -------------------------------------------------------------------------------

DOCS = {
    'deb_version_compare': deb_version_compare,
    'micropvr_config': micropvr_config,
    'backup_gate': backup_gate,
    'backup_pick': backup_pick,
    'backup_fetch_files': backup_fetch_files,
    'rollout_progress': rollout_progress,
    'rollout_summary': rollout_summary,
    'rollout_report': rollout_report,
}


def load_doc(name):
    with open(os.path.join(FILTER_DIR, name + '.yml')) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('name', sorted(DOCS))
def test_doc_sidecar(name):
    doc = load_doc(name)
    assert sorted(doc) == ['DOCUMENTATION', 'EXAMPLES', 'RETURN']
    documentation = doc['DOCUMENTATION']
    assert documentation['name'] == name
    assert documentation['short_description']
    assert documentation['version_added'] == '0.1.0'
    assert '_input' in documentation['options']
    assert 'microimpuls.micropvr.%s' % name in doc['EXAMPLES']
    yaml.safe_load(doc['EXAMPLES'])  # the examples are YAML themselves
    assert list(doc['RETURN']) == ['_value']
    assert doc['RETURN']['_value']['description']


@pytest.mark.parametrize('name', sorted(DOCS))
def test_doc_options_match_the_signature(name):
    documentation = load_doc(name)['DOCUMENTATION']
    parameters = list(inspect.signature(DOCS[name]).parameters.values())
    positional = [p.strip() for p in documentation.get('positional', '').split(',') if p.strip()]
    assert positional == [p.name for p in parameters[1:]]
    assert sorted(documentation['options']) == sorted(['_input'] + positional)
    for parameter in parameters[1:]:
        option = documentation['options'][parameter.name]
        if parameter.default is inspect.Parameter.empty:
            assert option.get('required') is True, parameter.name
        else:
            assert option.get('default') == parameter.default, parameter.name


@pytest.mark.parametrize('name', sorted(DOCS))
def test_ansible_doc(name, tmp_path):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'filter', 'microimpuls.micropvr.' + name],
                          cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'microimpuls.micropvr.' + name in proc.stdout
    for option in load_doc(name)['DOCUMENTATION']['options']:
        assert option in proc.stdout
    assert 'RETURN VALUES' in proc.stdout and 'EXAMPLES' in proc.stdout


def test_ansible_doc_json(tmp_path):
    names = ['microimpuls.micropvr.' + name for name in sorted(DOCS)]
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'filter', '--json'] + names,
                          cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == names
    for name in DOCS:
        entry = docs['microimpuls.micropvr.' + name]
        assert entry['doc']['name'] == name
        assert entry['doc']['collection'] == 'microimpuls.micropvr'
        assert entry['examples'] and entry['return']
