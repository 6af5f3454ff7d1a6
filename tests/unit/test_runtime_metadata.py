"""meta/runtime.yml: every module is in the action group that module_defaults uses
(group/microimpuls.micropvr.micropvr), and each module's docs name that group."""

import ast
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES_DIR = os.path.join(ROOT, 'plugins', 'modules')


def modules():
    return sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and name != '__init__.py')


def runtime():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as handle:
        return yaml.safe_load(handle)


def documentation(name):
    with open(os.path.join(MODULES_DIR, name + '.py')) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'DOCUMENTATION' for t in node.targets):
            return yaml.safe_load(node.value.value)
    raise AssertionError('%s has no DOCUMENTATION' % name)


def test_every_module_is_in_the_micropvr_action_group():
    group = runtime()['action_groups']['micropvr']
    assert sorted(group) == modules()
    assert len(group) == len(set(group))


def test_requires_ansible_is_kept():
    assert runtime()['requires_ansible'].startswith('>=')


def test_every_module_documents_its_group_membership():
    for name in modules():
        fragments = documentation(name).get('extends_documentation_fragment', [])
        assert 'microimpuls.micropvr.attributes.action_group' in fragments, name
