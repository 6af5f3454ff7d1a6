"""The roles' public interface: argument specs, defaults, module defaults and README agree."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.microimpuls.micropvr.plugins.module_utils import common

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tools'))
import role_docs  # noqa: E402  pylint: disable=wrong-import-position

SPECS = role_docs.load_specs()


def _defaults(role):
    path = os.path.join(role_docs.ROOT, 'roles', role, 'defaults', 'main.yml')
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def test_every_role_has_argument_specs():
    roles = sorted(os.listdir(os.path.join(role_docs.ROOT, 'roles')))
    assert roles and sorted(SPECS) == roles


def test_public_defaults_live_in_the_micropvr_role_only():
    """ansible-lint wants a role's variables prefixed with its name; every public
    variable is micropvr_*, so all of them are defined (once) by the micropvr role."""
    for role in SPECS:
        if role != 'micropvr':
            assert _defaults(role) == {}, '%s: public defaults belong in roles/micropvr/defaults' % role


def test_defaults_are_documented_with_the_same_value():
    options = SPECS['micropvr']['main']['options']
    defaults = _defaults('micropvr')
    for name, value in defaults.items():
        assert name in options, '%s is in defaults/main.yml but not in argument_specs' % name
        assert options[name].get('default') == value, 'default of %s differs' % name
    for name, option in options.items():
        assert name.startswith('micropvr_'), 'public variable %s lacks the micropvr_ prefix' % name
        assert ('default' in option) == (name in defaults), \
            '%s: documented default and defaults/main.yml disagree' % name


ENTRY_POINTS = sorted((role, entry) for role in SPECS if role != 'micropvr' for entry in SPECS[role])


def test_every_other_role_is_generated():
    assert sorted(role_docs.ROLES) == sorted(set(SPECS) - {'micropvr'})


@pytest.mark.parametrize('role, entry', ENTRY_POINTS)
def test_role_spec_declares_exactly_what_the_role_reads(role, entry):
    """A micropvr_* variable a role's tasks, vars or included roles read must be in its spec, and
    its spec must not declare one it never reads (the result facts it reads are outputs)."""
    declared = set(SPECS[role][entry]['options'])
    read = role_docs.role_reads(role, entry)
    assert not read - declared, '%s/%s reads %s, which its argument spec does not declare' % (
        role, entry, sorted(read - declared))
    assert not declared - read, '%s/%s declares %s, which it never reads' % (role, entry, sorted(declared - read))


@pytest.mark.parametrize('role, entry', ENTRY_POINTS)
def test_role_spec_takes_types_and_defaults_from_the_micropvr_role(role, entry):
    shared = SPECS['micropvr']['main']['options']
    defaults = _defaults('micropvr')
    for name, option in SPECS[role][entry]['options'].items():
        assert name in shared, '%s: %s is not a variable of the micropvr role' % (role, name)
        assert option['type'] == shared[name]['type'], '%s: type of %s differs' % (role, name)
        if option.get('required'):
            assert name not in defaults, '%s: required %s has a default' % (role, name)
        else:
            assert option.get('default') == defaults.get(name), '%s: default of %s differs from defaults/main.yml' % (
                role, name)


def test_micropvr_role_reads_only_declared_variables():
    declared = set(SPECS['micropvr']['main']['options'])
    assert role_docs.role_reads('micropvr') <= declared


def test_every_public_variable_is_read_by_some_role():
    read = set()
    for role in SPECS:
        for entry in SPECS[role]:
            read |= role_docs.role_reads(role, entry)
    unused = set(SPECS['micropvr']['main']['options']) - read
    assert not unused, 'public variables no role reads: %s' % sorted(unused)


def test_update_reads_what_backup_and_rollback_read_except_what_it_sets():
    update = role_docs.role_reads('update')
    assert role_docs.role_reads('rollback') - {'micropvr_backup_id'} <= update
    assert role_docs.role_reads('backup') - {'micropvr_backup_reason', 'micropvr_backup_pin'} <= update
    assert not update & {'micropvr_backup_id', 'micropvr_backup_reason', 'micropvr_backup_pin'}


ROLE = {
    'meta/main.yml': 'dependencies:\n  - role: microimpuls.micropvr.base\n',
    'vars/main.yml': '__demo_path: "{{ micropvr_via_role_vars }}/x"\n__demo_unused: "{{ micropvr_never }}"\n',
    'tasks/main.yml': """
- name: A template
  ansible.builtin.debug:
    msg: "{{ micropvr_in_template | default(micropvr_in_default) }} {{ __demo_path }}"
- name: A bare condition
  ansible.builtin.debug:
  when: micropvr_in_when | bool
- name: Tasks of a file
  ansible.builtin.import_tasks: other.yml
- name: A block
  block:
    - name: An included role, given one of its variables
      ansible.builtin.include_role:
        name: microimpuls.micropvr.base
        tasks_from: extra
      vars:
        micropvr_given: "{{ micropvr_in_vars }}"
  rescue:
    - name: Read a result fact, not an input
      ansible.builtin.assert:
        that: micropvr_backup_result.backup_id is defined
""",
    'tasks/other.yml': '- name: Other\n  ansible.builtin.debug:\n    msg: "{% for x in micropvr_in_loop %}{{ x }}{% endfor %}"\n',
}
BASE = {
    'tasks/main.yml': '- name: Base\n  ansible.builtin.debug:\n    msg: "{{ micropvr_of_dependency }}"\n',
    'tasks/extra.yml': '- name: Extra\n  ansible.builtin.debug:\n    msg: "{{ micropvr_given }} {{ micropvr_of_extra }}"\n',
}


def test_role_reads_follows_every_way_a_variable_is_read(tmp_path):
    """The scanner behind the spec test finds reads it must not miss, so that test can fail."""
    for role, files in (('demo', ROLE), ('base', BASE)):
        for name, text in files.items():
            path = tmp_path / 'roles' / role / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('---\n' + text)
    assert role_docs.role_reads('demo', root=str(tmp_path)) == {
        'micropvr_in_template', 'micropvr_in_default', 'micropvr_via_role_vars', 'micropvr_in_when',
        'micropvr_in_loop', 'micropvr_in_vars', 'micropvr_of_extra', 'micropvr_of_dependency'}


def test_generated_role_docs_are_current():
    """Argument specs of the other roles, every roles/*/README.md, the README section, the example inventory."""
    assert role_docs.stale_files() == [], 'run: python3 tests/tools/role_docs.py --write'


def test_every_role_has_a_readme():
    for role in SPECS:
        path = os.path.join(role_docs.ROOT, 'roles', role, 'README.md')
        with open(path) as handle:
            text = handle.read()
        assert text.startswith('# microimpuls.micropvr.%s\n' % role)
        for section in ('## Role variables', '## Result', '## Example playbook'):
            assert section in text, '%s: %s missing' % (path, section)
        example = yaml.safe_load(text.split('```yaml\n', 1)[1].split('```', 1)[0])
        assert [play['roles'][0]['role'] for play in example] == ['microimpuls.micropvr.%s' % role]


def test_module_defaults_match_role_defaults():
    options = SPECS['micropvr']['main']['options']
    spec = common.host_argument_spec()
    assert options['micropvr_config_paths']['default'] == common.DEFAULT_CONFIG_PATHS
    mapping = {'packages': 'micropvr_packages', 'services': 'micropvr_services',
               'config_file': 'micropvr_config_file', 'nginx_config': 'micropvr_nginx_config',
               'sqlite_databases': 'micropvr_sqlite_databases', 'backup_root': 'micropvr_backup_root'}
    assert sorted(mapping) == sorted(spec)
    for module_option, variable in mapping.items():
        assert spec[module_option]['default'] == options[variable]['default'], variable


def test_example_group_vars_change_no_default():
    # Every line is a comment: the example inventory changes no default.
    with open(role_docs.EXAMPLE_GROUP_VARS) as handle:
        assert yaml.safe_load(handle) is None


def test_ansible_doc_documents_every_role_entry_point(tmp_path):
    """What `ansible-doc -t role` shows is what each role reads (e.g. every variable of the update)."""
    names = ['microimpuls.micropvr.%s' % role for role in SPECS]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(role_docs.ROOT, '.cache', 'collections'),
               ANSIBLE_LOCAL_TEMP=str(tmp_path))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '-t', 'role', '--json'] + names,
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    docs = json.loads(proc.stdout)
    for role in SPECS:
        entry_points = docs['microimpuls.micropvr.%s' % role]['entry_points']
        assert sorted(entry_points) == sorted(SPECS[role])
        if role != 'micropvr':
            for entry in entry_points:
                assert set(entry_points[entry]['options']) == role_docs.role_reads(role, entry), (role, entry)


def _includes_without_validation():
    """(including role, included role, variables the include sets) of every include_role that
    turns the included role's argument spec validation off."""
    found = []
    for role in SPECS:
        tasks_dir = os.path.join(role_docs.ROOT, 'roles', role, 'tasks')
        for name in sorted(os.listdir(tasks_dir)):
            with open(os.path.join(tasks_dir, name)) as handle:
                stack = list(yaml.safe_load(handle) or [])
            while stack:
                task = stack.pop()
                for key in ('block', 'rescue', 'always'):
                    stack.extend(task.get(key) or [])
                include = task.get('ansible.builtin.include_role') or task.get('ansible.builtin.import_role')
                if include and include.get('rolespec_validate') is False:
                    found.append((role, include['name'].split('.')[-1], set(task.get('vars') or {})))
    return found


def test_a_role_included_without_validation_was_validated_by_its_caller():
    """rolespec_validate: false is only right where the including role's own spec (validated
    when it started) declares every variable the included role reads, with the same type."""
    includes = _includes_without_validation()
    assert ('update', 'backup', {'micropvr_backup_reason', 'micropvr_backup_pin', '__backup_lock_owner'}) in includes
    for caller, included, given in includes:
        caller_options = SPECS[caller]['main']['options']
        for name in role_docs.role_reads(included) - given:
            assert name in caller_options, '%s includes %s unvalidated, but does not validate %s' % (
                caller, included, name)
            assert caller_options[name]['type'] == SPECS[included]['main']['options'][name]['type'], name
