"""extensions/awx: the job templates and the workflow are what awx.awx's modules take.

No controller is available here, so each definition is rendered with Ansible's own templating
(as apply.yml renders it) and validated with ansible-core's ArgumentSpecValidator against the
argument spec that the installed awx.awx module itself builds; surveys are checked with the
rules AWX applies when a survey spec is saved (awx/api/views JobTemplateSurveySpec), and their
variables against the argument specs of the roles each playbook runs.
"""

import copy
import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
AWX = os.path.join(ROOT, 'extensions', 'awx')
BIN = os.path.dirname(sys.executable)
# Play-level variables of playbooks/update.yml: they shape the play (serial), so no role reads them.
PLAY_VARIABLES = {'micropvr_canary', 'micropvr_serial', 'micropvr_max_fail_percentage'}
# The settings resources.yml leaves empty on purpose (apply.yml refuses to run without them).
REQUIRED_SETTINGS = dict(micropvr_awx_project_scm_url='https://git.example.com/ops/micropvr.git',
                         micropvr_awx_execution_environment_image='registry.example.com/micropvr-ee:0.1.0')
# AWX's JobTemplateSurveySpec.ALLOWED_TYPES: question type -> type its default must have.
SURVEY_TYPES = {'text': str, 'textarea': str, 'password': str, 'multiplechoice': str, 'multiselect': str,
                'integer': int, 'float': (float, int)}
# unified_job_template.type values the awx.awx.workflow_job_template documentation lists.
UJT_TYPES = ('job_template', 'project', 'inventory_source', 'system_job_template', 'workflow_approval',
             'workflow_job_template')
LIFECYCLE = ('backup', 'backup_verify', 'update', 'rollback', 'restore_host')


class _Captured(Exception):
    pass


class _CaptureModule:
    """Stands in for ControllerAPIModule only long enough to receive the module's argument spec."""

    def __init__(self, **kwargs):
        raise _Captured(kwargs)


def awx_module_spec(name):
    """The argument spec awx.awx.<name> really runs with: its main()'s spec plus the auth options."""
    module = importlib.import_module('ansible_collections.awx.awx.plugins.modules.' + name)
    real = module.ControllerAPIModule
    module.ControllerAPIModule = _CaptureModule
    try:
        module.main()
    except _Captured as captured:
        kwargs = captured.args[0]
    finally:
        module.ControllerAPIModule = real
    spec = dict(kwargs.pop('argument_spec'))
    spec.update(real.AUTH_ARGSPEC)
    return spec, kwargs


def validate(module_name, params):
    spec, kwargs = awx_module_spec(module_name)
    result = ArgumentSpecValidator(spec, **kwargs).validate(copy.deepcopy(params))
    return [str(error) for error in result.errors]


def _render(files, extra=None):
    """Load vars files as apply.yml does (trusted, relative to extensions/awx) and template them."""
    init_plugin_loader()
    loader = DataLoader()
    loader.set_basedir(AWX)
    variables = {}
    for name in files:
        variables.update(loader.load_from_file(os.path.join(AWX, name), trusted_as_template=True))
    variables.update(extra or REQUIRED_SETTINGS)
    templar = Templar(loader=loader, variables=variables)
    return json.loads(json.dumps(templar.template(variables)))


RENDERED = _render(['resources.yml', 'job_templates.yml', 'workflow.yml'])
TEMPLATES = RENDERED['micropvr_awx_job_templates']
WORKFLOW = RENDERED['micropvr_awx_workflow']
BY_NAME = dict((template['name'], template) for template in TEMPLATES)


def _role_options(role, entry_points=None, seen=None):
    """Options a role declares (every entry point, or the named ones) plus its dependencies' main."""
    seen = set() if seen is None else seen
    if role in seen:
        return set()
    seen.add(role)
    role_dir = os.path.join(ROOT, 'roles', role)
    with open(os.path.join(role_dir, 'meta', 'argument_specs.yml')) as handle:
        specs = yaml.safe_load(handle)['argument_specs']
    options = set()
    for entry, spec in specs.items():
        if entry_points is None or entry in entry_points:
            options |= set(spec.get('options') or {})
    with open(os.path.join(role_dir, 'meta', 'main.yml')) as handle:
        for dependency in yaml.safe_load(handle).get('dependencies') or []:
            name = dependency['role'] if isinstance(dependency, dict) else dependency
            options |= _role_options(name.split('.')[-1], ['main'], seen)
    return options


def _playbook_roles(playbook):
    """(role, entry point) pairs a playbook runs, from roles:, import_role and include_role."""
    with open(os.path.join(ROOT, playbook)) as handle:
        plays = yaml.safe_load(handle)
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key in ('ansible.builtin.import_role', 'ansible.builtin.include_role'):
                if key in node:
                    found.append((node[key]['name'], node[key].get('tasks_from', 'main')))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for play in plays:
        for role in play.get('roles') or []:
            found.append((role['role'] if isinstance(role, dict) else role, 'main'))
        walk(play)
    return [(name.split('.')[-1], entry) for name, entry in found if name.startswith('microimpuls.micropvr.')]


def _playbook_variables(playbook):
    options = set()
    for role, entry in _playbook_roles(playbook):
        options |= _role_options(role, [entry])
    if playbook == 'playbooks/update.yml':
        options |= PLAY_VARIABLES
    return options


def check_survey(survey):
    """AWX's checks when a survey spec is saved, plus the ones it makes on the defaults at launch."""
    errors = []
    for field, kind in (('name', str), ('description', str), ('spec', list)):
        if not isinstance(survey.get(field), kind):
            errors.append('%s missing or not a %s' % (field, kind.__name__))
    questions = survey.get('spec') or []
    if not questions:
        errors.append("'spec' doesn't contain any items")
    variables = [q.get('variable') for q in questions]
    if len(set(variables)) != len(variables):
        errors.append('duplicated variable')
    for question in questions:
        for field in ('type', 'question_name', 'variable'):
            if not isinstance(question.get(field), str):
                errors.append('%s: %s missing or not a string' % (question.get('variable'), field))
        if not isinstance(question.get('required'), bool):
            errors.append('%s: required is not a boolean' % question.get('variable'))
        kind = question.get('type')
        if kind not in SURVEY_TYPES:
            errors.append('%s: type %s is not an AWX question type' % (question.get('variable'), kind))
            continue
        if 'default' in question and not isinstance(question['default'], SURVEY_TYPES[kind]):
            errors.append('%s: default %r is not a %s' % (question['variable'], question['default'], kind))
            continue
        for limit in ('min', 'max'):
            if question.get(limit) is not None and not isinstance(question[limit], int):
                errors.append('%s: %s is not an integer' % (question['variable'], limit))
        if kind in ('multiplechoice', 'multiselect'):
            if 'choices' not in question:
                errors.append('%s: no choices' % question['variable'])
            elif question.get('default') not in ('', None) and question['default'] not in question['choices']:
                errors.append('%s: default not among the choices' % question['variable'])
        if kind in ('integer', 'float') and 'default' in question:
            if not question.get('min', question['default']) <= question['default'] <= question.get('max', question['default']):
                errors.append('%s: default outside min..max' % question['variable'])
        if kind in ('text', 'textarea') and question.get('default'):
            if not question.get('min', 0) <= len(question['default']) <= question.get('max', 1024):
                errors.append('%s: default length outside min..max' % question['variable'])
    return errors


# -- job templates ---------------------------------------------------------------------------

@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_template_is_valid_for_awx_job_template(template):
    assert validate('job_template', template) == []
    # What AWX itself needs to save and launch a job template without prompting.
    for field in ('organization', 'project', 'playbook', 'inventory', 'execution_environment', 'credentials',
                  'job_type'):
        assert template.get(field), (template['name'], field)
    assert not any(value for key, value in template.items() if key.startswith('ask_') and key != 'ask_limit_on_launch')


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_template_runs_a_playbook_of_the_collection(template):
    assert os.path.isfile(os.path.join(ROOT, template['playbook'])), template['playbook']


@pytest.mark.parametrize('template', [t for t in TEMPLATES if t.get('survey_enabled')],
                         ids=[t['name'] for t in TEMPLATES if t.get('survey_enabled')])
def test_survey_is_valid_and_asks_for_variables_the_playbook_reads(template):
    survey = template['survey_spec']
    assert check_survey(survey) == []
    known = _playbook_variables(template['playbook'])
    unknown = [q['variable'] for q in survey['spec'] if q['variable'] not in known]
    assert unknown == [], '%s asks for variables %s reads nowhere' % (template['name'], template['playbook'])


def test_every_lifecycle_playbook_has_a_run_template_and_update_rollback_a_check_one():
    # backup_verify.yml has two: the local sets, and the off-host copies.
    runs = sorted(set(t['playbook'] for t in TEMPLATES if t['job_type'] == 'run' and t.get('survey_enabled')))
    assert runs == sorted('playbooks/%s.yml' % name for name in LIFECYCLE)
    checks = sorted(t['playbook'] for t in TEMPLATES if t['job_type'] == 'check')
    assert checks == ['playbooks/rollback.yml', 'playbooks/update.yml']


def test_the_validator_refuses_what_awx_job_template_does_not_take():
    """The checks above can fail: the old 'survey' key and a bad job_type are refused."""
    template = dict(BY_NAME['MicroPVR backup'])
    template['survey'] = template.pop('survey_spec')
    assert any('survey' in error for error in validate('job_template', template))
    assert validate('job_template', dict(BY_NAME['MicroPVR backup'], job_type='scan'))
    assert check_survey(dict(BY_NAME['MicroPVR backup']['survey_spec'], spec=[])) != []
    question = dict(BY_NAME['MicroPVR update']['survey_spec']['spec'][1], default='1')
    assert check_survey(dict(BY_NAME['MicroPVR update']['survey_spec'], spec=[question])) != []


# _render() again: Ansible warns that its collection finder is set up already, which is harmless here.
@pytest.mark.filterwarnings('ignore:AnsibleCollectionFinder has already been configured')
def test_recovery_and_offsite_verify_take_the_repository_password_from_a_credential():
    """restore_host.yml and the off-host verification: the surveys the README describes, and the restic
    password only ever as a secret credential input injected as micropvr_offsite_password."""
    recover, verify = BY_NAME['MicroPVR disaster recovery'], BY_NAME['MicroPVR off-host verify']
    assert recover['playbook'] == 'playbooks/restore_host.yml' and recover['ask_limit_on_launch'] is True
    asked = dict((q['variable'], q) for q in recover['survey_spec']['spec'])
    assert asked['micropvr_recover_host']['required'] is True and asked['micropvr_recover_host']['min'] >= 1
    assert asked['micropvr_backup_id']['required'] is False
    assert (asked['micropvr_recover_force']['choices'], asked['micropvr_recover_force']['default']) == (['true', 'false'], 'false')
    assert verify['playbook'] == 'playbooks/backup_verify.yml'
    assert [q['variable'] for q in verify['survey_spec']['spec']] == ['micropvr_backup_id', 'micropvr_offsite_read_data_subset']
    secrets = {'micropvr_offsite_password', 'micropvr_offsite_password_file', 'micropvr_offsite_backend_env'}
    for template in TEMPLATES + [WORKFLOW]:
        assert not secrets & set(q['variable'] for q in (template.get('survey_spec') or {}).get('spec', [])), template['name']
        assert not secrets & set(template.get('extra_vars') or {}), template['name']
    assert not any('MicroPVR restic repository' in t['credentials'] for t in TEMPLATES)  # off by default
    enabled = _render(['resources.yml', 'job_templates.yml'],
                      dict(REQUIRED_SETTINGS, micropvr_awx_offsite_credential_enabled=True))['micropvr_awx_job_templates']
    assert all('MicroPVR restic repository' in t['credentials'] for t in enabled)
    play = DataLoader().load_from_file(os.path.join(AWX, 'apply.yml'))[0]
    (kind,) = [task['awx.awx.credential_type'] for task in play['tasks'] if 'awx.awx.credential_type' in task
               and 'micropvr_offsite_password' in task['awx.awx.credential_type']['injectors']['extra_vars']]
    assert validate('credential_type', kind) == []
    (field,) = kind['inputs']['fields']
    assert field['secret'] is True and kind['inputs']['required'] == [field['id']]
    assert kind['injectors']['extra_vars'] == {'micropvr_offsite_password': '{{ %s }}' % field['id']}


def test_every_survey_file_is_used():
    used = {json.dumps(t['survey_spec'], sort_keys=True) for t in TEMPLATES if t.get('survey_spec')}
    used.add(json.dumps(WORKFLOW['survey_spec'], sort_keys=True))
    for name in os.listdir(os.path.join(AWX, 'surveys')):
        with open(os.path.join(AWX, 'surveys', name)) as handle:
            assert json.dumps(json.load(handle), sort_keys=True) in used, name


# -- the workflow ----------------------------------------------------------------------------

def test_workflow_is_valid_for_awx_workflow_job_template():
    assert validate('workflow_job_template', WORKFLOW) == []
    assert check_survey(WORKFLOW['survey_spec']) == []
    assert WORKFLOW['survey_enabled'] is True


def _nodes():
    return dict((node['identifier'], node) for node in WORKFLOW['workflow_nodes'])


def test_workflow_nodes_have_the_shape_the_module_reads():
    """workflow_job_template's create_workflow_nodes() reads these keys (its docs list the suboptions)."""
    module = importlib.import_module('ansible_collections.awx.awx.plugins.modules.workflow_job_template')
    doc = yaml.safe_load(module.DOCUMENTATION)
    node_spec = doc['options']['workflow_nodes']['suboptions']
    ujt_spec = node_spec['unified_job_template']['suboptions']
    related_spec = node_spec['related']['suboptions']
    identifiers = [node['identifier'] for node in WORKFLOW['workflow_nodes']]
    assert len(set(identifiers)) == len(identifiers)
    for node in WORKFLOW['workflow_nodes']:
        assert set(node) <= set(node_spec), node['identifier']
        ujt = node['unified_job_template']
        assert set(ujt) <= set(ujt_spec), node['identifier']
        assert ujt['name'] and ujt['type'] in UJT_TYPES, node['identifier']
        for relation, targets in (node.get('related') or {}).items():
            assert relation in related_spec, relation
            for target in targets:
                assert target['identifier'] in identifiers, target
        if ujt['type'] == 'job_template':
            assert ujt['name'] in BY_NAME, ujt['name']
            assert ujt['organization']['name'] == BY_NAME[ujt['name']]['organization']


def test_workflow_is_backup_approval_update_and_rollback_on_failure():
    nodes = _nodes()
    kind = dict((key, (node['unified_job_template']['type'], node['unified_job_template']['name']))
                for key, node in nodes.items())

    def after(identifier, relation):
        return [kind[t['identifier']] for t in (nodes[identifier].get('related') or {}).get(relation, [])]

    assert kind['micropvr-backup'] == ('job_template', 'MicroPVR backup')
    assert after('micropvr-backup', 'success_nodes') == [('workflow_approval', 'MicroPVR update approval')]
    assert after('micropvr-approve', 'success_nodes') == [('job_template', 'MicroPVR update')]
    assert after('micropvr-update', 'failure_nodes') == [('job_template', 'MicroPVR rollback (workflow)')]
    assert after('micropvr-update', 'success_nodes') == []
    # Nothing starts the approval, update or rollback but the edges above.
    children = [t['identifier'] for node in nodes.values() for targets in (node.get('related') or {}).values()
                for t in targets]
    assert sorted(set(nodes) - set(children)) == ['micropvr-backup']


def test_workflow_node_answers_are_questions_of_the_template_survey():
    """AWX accepts a node's extra_data only for variables its template's survey asks."""
    for node in WORKFLOW['workflow_nodes']:
        if node.get('extra_data'):
            survey = BY_NAME[node['unified_job_template']['name']]['survey_spec']
            asked = dict((q['variable'], q) for q in survey['spec'])
            for variable, value in node['extra_data'].items():
                assert variable in asked, variable
                if asked[variable]['type'] == 'multiplechoice':
                    assert value in asked[variable]['choices']
    update_survey = dict((q['variable'], q) for q in BY_NAME['MicroPVR update']['survey_spec']['spec'])
    for question in WORKFLOW['survey_spec']['spec']:
        assert question['variable'] in update_survey


def test_workflow_rollback_restores_each_hosts_own_set(tmp_path):
    """The rollback template's micropvr_backup_id resolves per host from micropvr_backup_sets.

    Run for real through ansible-runner, as AWX runs a job: the template's extra vars plus the
    artifact the backup node published, on two hosts, one of them missing from the artifact.
    """
    import ansible_runner

    expression = BY_NAME['MicroPVR rollback (workflow)']['extra_vars']['micropvr_backup_id']
    assert '{{' in expression  # sent to AWX unrendered (!unsafe), rendered in the job
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'show.yml').write_text(
        '- hosts: all\n  gather_facts: false\n  tasks:\n'
        '    - ansible.builtin.debug:\n        msg: "{{ micropvr_backup_id }}"\n')
    inventory = ''.join('%s ansible_connection=local ansible_python_interpreter=%s\n' % (host, sys.executable)
                        for host in ('h1', 'h2'))
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path), playbook='show.yml', inventory=inventory, quiet=True,
        envvars=dict(PATH=BIN + os.pathsep + os.environ['PATH'], ANSIBLE_NOCOLOR='1'),
        extravars=dict(micropvr_backup_id=expression,
                       micropvr_backup_sets=dict(h1=dict(backup_id='20260101T010203Z', status='verified'))))
    ids = dict((e['event_data']['host'], e['event_data']['res']['msg']) for e in runner.events
               if e['event'] == 'runner_on_ok')
    assert runner.status == 'successful', runner.stdout.read()
    assert ids == {'h1': '20260101T010203Z', 'h2': ''}


# -- apply.yml ---------------------------------------------------------------------------------

def test_apply_playbook_passes_the_definitions_unchanged():
    play = DataLoader().load_from_file(os.path.join(AWX, 'apply.yml'))[0]
    tasks = dict((task['name'], task) for task in play['tasks'])
    assert play['vars_files'] == ['resources.yml', 'job_templates.yml', 'workflow.yml']
    templates = [t for t in tasks.values() if 'awx.awx.job_template' in t]
    workflows = [t for t in tasks.values() if 'awx.awx.workflow_job_template' in t]
    assert [t['args'] for t in templates] == ['{{ item }}'] and templates[0]['loop'] == '{{ micropvr_awx_job_templates }}'
    assert [t['args'] for t in workflows] == ['{{ micropvr_awx_workflow }}']
    # Every task that passes a secret to a module hides it.
    secret_tasks = [name for name, task in tasks.items()
                    if any(secret in json.dumps(args) for module, args in task.items() if module.startswith('awx.awx.')
                           for secret in ('micropvr_awx_ssh_private_key', 'micropvr_awx_seal_key }}',
                                          'micropvr_awx_offsite_password }}'))]
    assert secret_tasks and all(tasks[name].get('no_log') is True for name in secret_tasks)


def test_apply_playbook_syntax_and_lint_coverage():
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ['PATH'], ANSIBLE_NOCOLOR='1')
    playbook = os.path.join(AWX, 'apply.yml')
    syntax = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '--syntax-check', playbook], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # `make lint` runs ansible-lint --profile production over the repository (22 s; not repeated
    # here): extensions/awx must not be excluded from it.
    with open(os.path.join(ROOT, '.ansible-lint')) as handle:
        config = yaml.safe_load(handle)
    assert config['profile'] == 'production' and not config.get('skip_list') and not config.get('warn_list')
    assert not any('extensions/awx/'.startswith(path.rstrip('/') + '/') for path in config.get('exclude_paths', []))


def test_apply_playbook_stops_without_the_required_settings():
    """Run for real: with resources.yml's empty URL and image it fails naming them, before any API call."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ['PATH'], ANSIBLE_NOCOLOR='1',
               CONTROLLER_HOST='https://127.0.0.1:9')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), os.path.join(AWX, 'apply.yml')], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert 'Set micropvr_awx_project_scm_url' in proc.stdout
    assert 'micropvr_awx_execution_environment_image' in proc.stdout
