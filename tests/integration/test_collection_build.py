"""The built collection tarball holds the collection only, installs, documents its plugins and
runs its playbooks by FQCN."""

import fnmatch
import glob
import json
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)

# What the tarball may hold (galaxy.yml build_ignore leaves out everything else): the content
# Galaxy shows and AWX runs, its documentation and licence, the changelog data. A new top-level
# file or directory must be added here on purpose, or to build_ignore.
ALLOWED = (
    'MANIFEST.json', 'FILES.json',  # written by ansible-galaxy itself
    'README.md', 'COPYING', 'CHANGELOG.md',
    'changelogs', 'changelogs/changelog.yaml', 'changelogs/config.yaml',
    'plugins', 'plugins/*',
    'roles', 'roles/*',
    'playbooks', 'playbooks/*',
    'meta', 'meta/*',
    'docs', 'docs/*',
    'extensions', 'extensions/*',
)
# Never inside, wherever they are: byte code, dot files (caches, editor and tool state).
FORBIDDEN = ('*/__pycache__', '*/__pycache__/*', '*.pyc', '.*', '*/.*')


def run(args, env=None, cwd=None):
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, '%s failed (rc=%d):\n%s\n%s' % (' '.join(args), proc.returncode,
                                                                proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """Build the tarball and install it into an empty collections path."""
    build_dir = tmp_path_factory.mktemp('build')
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(build_dir), ROOT])
    tarballs = glob.glob(str(build_dir / 'microimpuls-micropvr-*.tar.gz'))
    assert len(tarballs) == 1
    collections = tmp_path_factory.mktemp('collections')
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '--force', '-p', str(collections), tarballs[0]])
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1')
    with tarfile.open(tarballs[0]) as tar:
        members = sorted(member.name for member in tar.getmembers())
    return dict(tarball=tarballs[0], collections=collections, env=env, members=members)


def test_tarball_holds_the_collection_only(installed):
    outside = [name for name in installed['members']
               if not any(fnmatch.fnmatchcase(name, pattern) for pattern in ALLOWED)]
    assert not outside, 'outside the allow-list (galaxy.yml build_ignore): %s' % outside
    forbidden = [name for name in installed['members']
                 if any(fnmatch.fnmatchcase(name, pattern) for pattern in FORBIDDEN)]
    assert not forbidden, 'must never ship: %s' % forbidden


def test_tarball_holds_every_part_of_the_collection(installed):
    """The allow-list cannot be met by leaving content out: every git-tracked file of the
    shipped directories is in the tarball."""
    tracked = run(['git', 'ls-files', '-z', '--', 'plugins', 'roles', 'playbooks', 'meta', 'docs',
                   'extensions', 'README.md', 'COPYING', 'CHANGELOG.md',
                   'changelogs/changelog.yaml', 'changelogs/config.yaml'], cwd=ROOT)
    if not tracked:
        pytest.skip('not a git checkout: no list of tracked files to compare with')
    tracked = {name for name in tracked.split('\0') if name and os.path.exists(os.path.join(ROOT, name))}
    missing = sorted(tracked - set(installed['members']))
    assert not missing, 'tracked but not in the tarball: %s' % missing
    for name in ('plugins/modules/micropvr_facts.py', 'roles/update/meta/argument_specs.yml',
                 'playbooks/update.yml', 'meta/runtime.yml', 'changelogs/changelog.yaml',
                 'extensions/ee/execution-environment.yml'):
        assert name in installed['members'], name


def test_installed_collection_is_the_one_used(installed):
    out = run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'list', 'microimpuls.micropvr',
               '--format', 'json'], env=installed['env'])
    paths = json.loads(out)
    assert any(path.startswith(str(installed['collections'])) for path in paths), paths


def test_every_module_answers_ansible_doc(installed):
    modules = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py')))
    assert modules
    for module in modules:
        out = run([os.path.join(BIN, 'ansible-doc'), '--json', 'microimpuls.micropvr.%s' % module],
                  env=installed['env'])
        doc = json.loads(out)['microimpuls.micropvr.%s' % module]
        assert doc['doc']['short_description'], module
        assert doc['examples'].strip(), module


def test_playbook_runs_by_fqcn(installed, tmp_path):
    """facts.yml from the installed tarball runs against this machine, where MicroPVR is absent."""
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text('micropvr:\n  hosts:\n    localhost:\n      ansible_connection: local\n'
                         '      ansible_python_interpreter: %s\n' % sys.executable)
    out = run([os.path.join(BIN, 'ansible-playbook'), '-i', str(inventory), 'microimpuls.micropvr.facts',
               '-e', 'micropvr_backup_root=%s' % (tmp_path / 'backups')],
              env=installed['env'], cwd=str(tmp_path))
    assert 'packages: micropvr not installed, micropvs not installed' in out
    assert 'services: micropvr absent, micropvs absent' in out
    assert 'failed=0' in out


def test_module_defaults_group_reaches_every_module(installed, tmp_path):
    """meta/runtime.yml's action group: module_defaults for group/microimpuls.micropvr.micropvr
    set an option of a module that the task itself does not name."""
    state_dir = tmp_path / 'state'
    playbook = tmp_path / 'group.yml'
    playbook.write_text(
        '- hosts: localhost\n'
        '  gather_facts: false\n'
        '  module_defaults:\n'
        '    group/microimpuls.micropvr.micropvr:\n'
        '      state_dir: %s\n'
        '  tasks:\n'
        '    - microimpuls.micropvr.micropvr_history:\n'
        '        event: group-defaults-test\n' % state_dir)
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n'
                         '      ansible_python_interpreter: %s\n' % sys.executable)
    run([os.path.join(BIN, 'ansible-playbook'), '-i', str(inventory), str(playbook)],
        env=installed['env'], cwd=str(tmp_path))
    lines = (state_dir / 'history.jsonl').read_text().splitlines()
    assert [json.loads(line)['event'] for line in lines] == ['group-defaults-test']
