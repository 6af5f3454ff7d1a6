"""extensions/awx: surveys and job templates point at what exists and ask for real variables."""

import json
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
AWX = os.path.join(ROOT, 'extensions', 'awx')
# Play-level variables of playbooks/update.yml (they shape the play, so no role defines them).
PLAY_VARIABLES = {'micropvr_canary', 'micropvr_serial', 'micropvr_max_fail_percentage', 'micropvr_drain_timeout',
                  'micropvr_drain_sessions'}


def _role_variables():
    with open(os.path.join(ROOT, 'roles', 'micropvr', 'meta', 'argument_specs.yml')) as handle:
        return set(yaml.safe_load(handle)['argument_specs']['main']['options'])


with open(os.path.join(AWX, 'job_templates.yml')) as _handle:
    TEMPLATES = yaml.safe_load(_handle)['job_templates']


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_template_points_at_a_playbook_and_a_survey(template):
    assert os.path.isfile(os.path.join(ROOT, template['playbook']))
    with open(os.path.join(AWX, template['survey'])) as handle:
        survey = json.load(handle)
    assert survey['name'] == template['name'] or survey['name'].startswith(template['name'].split(' ')[0])
    known = _role_variables() | PLAY_VARIABLES
    for question in survey['spec']:
        assert question['variable'] in known, question['variable']
        assert question['type'] in ('text', 'integer', 'multiplechoice')
        assert question['question_name'] and question['question_description']
        if question['type'] == 'multiplechoice':
            assert question['default'] in question['choices']
        if question['type'] == 'integer':
            assert question['min'] <= question['default'] <= question['max']


def test_every_lifecycle_playbook_has_a_template():
    assert sorted(t['playbook'] for t in TEMPLATES) == sorted(
        'playbooks/%s.yml' % name for name in ('backup', 'backup_verify', 'update', 'rollback'))


def test_nothing_prompts_on_launch():
    with open(os.path.join(AWX, 'job_templates.yml')) as handle:
        defaults = yaml.safe_load(handle)['defaults']
    assert all(value is False for key, value in defaults.items() if key.startswith('ask_'))
