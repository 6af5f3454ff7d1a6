"""What every module's documentation must have for Galaxy and Automation Hub (issue 14): a
maintainer as "Name (@github_handle)", the shared attributes, a sample for every return value,
and examples that register the result and use it."""

import ast
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES_DIR = os.path.join(ROOT, 'plugins', 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and name != '__init__.py')


def docs(name):
    with open(os.path.join(MODULES_DIR, name + '.py')) as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], 'id', None) in (
                'DOCUMENTATION', 'EXAMPLES', 'RETURN'):
            found[node.targets[0].id] = yaml.safe_load(node.value.value)
    return found


def without_sample(returns, prefix=''):
    """Dotted names of return values with neither a sample nor sub-values that have one."""
    missing = []
    for key, value in returns.items():
        if 'contains' in value:
            missing.extend(without_sample(value['contains'], prefix + key + '.'))
        elif 'sample' not in value:
            missing.append(prefix + key)
    return missing


@pytest.mark.parametrize('name', MODULES)
def test_author_is_a_name_and_a_github_handle(name):
    authors = docs(name)['DOCUMENTATION']['author']
    assert authors and all(re.match(r'^[^()@]+ \(@[A-Za-z0-9-]+\)$', author) for author in authors), authors


@pytest.mark.parametrize('name', MODULES)
def test_attributes_come_from_the_shared_fragments(name):
    doc = docs(name)['DOCUMENTATION']
    fragments = doc['extends_documentation_fragment']
    assert 'ansible.builtin.action_common_attributes' in fragments
    assert 'microimpuls.micropvr.attributes.action_group' in fragments
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert doc['attributes']['platform'] == {'platforms': 'debian'}


@pytest.mark.parametrize('name', MODULES)
def test_shared_options_are_documented_by_their_fragment_only(name):
    """backup_root, state_dir and the RPC address come from their doc fragments, never repeated."""
    doc = docs(name)['DOCUMENTATION']
    own = doc.get('options') or {}
    for option, fragment in (('backup_root', 'backup_root'), ('state_dir', 'state_dir'), ('rpc_host', 'rpc'),
                             ('rpc_port', 'rpc'), ('databases', 'databases'), ('seal_key', 'seal')):
        assert option not in own, '%s documents %s itself instead of using the %s fragment' % (name, option, fragment)


@pytest.mark.parametrize('name', MODULES)
def test_every_return_value_has_a_sample(name):
    assert without_sample(docs(name)['RETURN']) == []


@pytest.mark.parametrize('name', MODULES)
def test_examples_register_the_result_and_use_it(name):
    tasks = docs(name)['EXAMPLES']
    registered = [task['register'] for task in tasks if 'register' in task]
    assert registered, '%s: no example registers its result' % name
    # A use is a reference in any task's arguments or conditions (its name and register aside).
    uses = [str(dict((k, v) for k, v in task.items() if k not in ('name', 'register'))) for task in tasks]
    assert any(re.search(r'\b%s\.' % re.escape(var), text) or re.search(r"'var': '%s\b" % re.escape(var), text)
               for var in registered for text in uses), '%s: no example uses a registered result' % name


@pytest.mark.parametrize('name', MODULES)
def test_diff_mode_is_documented_as_the_module_does_it(name):
    with open(os.path.join(MODULES_DIR, name + '.py')) as handle:
        returns_diff = 'text_diff(' in handle.read()
    support = docs(name)['DOCUMENTATION']['attributes']['diff_mode']['support']
    assert support == ('full' if returns_diff else 'none'), name


def fragment_options(name):
    with open(os.path.join(ROOT, 'plugins', 'doc_fragments', name + '.py')) as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'DOCUMENTATION':
            return yaml.safe_load(node.value.value)['options']
    raise AssertionError('no DOCUMENTATION in doc fragment %s' % name)


def test_the_health_fragment_documents_the_probe_options():
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import health
    documented = fragment_options('health')['health']['suboptions']
    spec = health.probe_argument_spec()
    assert sorted(documented) == sorted(spec)
    for name, option in documented.items():
        assert (option['type'], option.get('default')) == (spec[name]['type'], spec[name]['default']), name


WITH_HEALTH_OPTION = [name for name in MODULES if 'health' in (docs(name)['DOCUMENTATION'].get('options') or {})]


def test_the_modules_that_check_health_after_their_change():
    assert WITH_HEALTH_OPTION == ['micropvr_install', 'micropvr_restore']


@pytest.mark.parametrize('name', WITH_HEALTH_OPTION)
def test_a_health_option_takes_its_suboptions_from_the_fragment(name):
    """The module documents health's description and type only; the probe options come from the
    health fragment (Ansible merges them under it)."""
    doc = docs(name)['DOCUMENTATION']
    assert 'microimpuls.micropvr.health' in doc['extends_documentation_fragment'], name
    health = doc['options']['health']
    assert health['type'] == 'dict' and 'suboptions' not in health, name
