"""The built collection tarball installs, documents its plugins and runs its playbooks by FQCN."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


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
    return dict(tarball=tarballs[0], collections=collections, env=env)


def test_tarball_leaves_out_development_files(installed):
    listing = run(['tar', '-tzf', installed['tarball']])
    for unwanted in ('.venv/', '.cache/', 'build/', '.git/', '.ci/'):
        assert not any(name.startswith(unwanted) for name in listing.split()), unwanted
    assert 'plugins/modules/micropvr_facts.py' in listing.split()


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
