"""The roles' public interface: argument specs, defaults, module defaults and README agree."""

import os
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


@pytest.mark.parametrize('role', sorted(set(SPECS) - {'micropvr'}))
def test_other_roles_only_tighten_shared_variables(role):
    shared = SPECS['micropvr']['main']['options']
    for name, option in (SPECS[role]['main'].get('options') or {}).items():
        assert name in shared, '%s: %s is not a variable of the micropvr role' % (role, name)
        assert 'default' not in option, '%s: %s must take its default from the micropvr role' % (role, name)
        assert option['type'] == shared[name]['type'], '%s: type of %s differs' % (role, name)


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


def test_readme_variable_tables_are_current():
    with open(role_docs.README) as handle:
        section = role_docs.readme_section(handle.read())
    assert section == role_docs.render(SPECS), 'run: python3 tests/tools/role_docs.py --write'


def test_example_group_vars_are_current():
    with open(role_docs.EXAMPLE_GROUP_VARS) as handle:
        assert handle.read() == role_docs.render_group_vars(SPECS), 'run: python3 tests/tools/role_docs.py --write'
    # Every line is a comment: the example inventory changes no default.
    with open(role_docs.EXAMPLE_GROUP_VARS) as handle:
        assert yaml.safe_load(handle) is None
