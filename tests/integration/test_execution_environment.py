"""The collection and its execution environment as ansible-builder sees them.

- Introspection: every EE build that includes this collection runs ansible-builder's
  introspection over the installed collection (meta/execution-environment.yml is where a
  collection declares its dependencies). It must succeed and report what is declared.
- extensions/ee/execution-environment.yml turns into a build context that installs the
  locally built tarball (no Galaxy).
- The image builds with the docker engine from a Debian 12 base made here (no registry is
  reachable), and the collection answers inside it.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
BUILDER = os.path.join(BIN, 'ansible-builder')
EE_DIR = os.path.join(ROOT, 'extensions', 'ee')
# The local test-bed image (tests/testbed/build-images.sh): Debian 12 with python3 and apt lists.
BASE_IMAGE = 'micropvr-testbed:debian12'
TEST_TAG = 'micropvr-ee-test:latest'


def run(args, cwd=None, timeout=None):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)
    assert proc.returncode == 0, '%s failed (rc=%d):\n%s\n%s' % (' '.join(args), proc.returncode,
                                                                proc.stdout[-6000:], proc.stderr[-6000:])
    return proc.stdout


def galaxy_version():
    with open(os.path.join(ROOT, 'galaxy.yml')) as f:
        return yaml.safe_load(f)['version']


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp('tarball')
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), ROOT])
    (path,) = glob.glob(str(out / 'microimpuls-micropvr-*.tar.gz'))
    return path


@pytest.fixture(scope='module')
def collections(tarball, tmp_path_factory):
    path = tmp_path_factory.mktemp('collections')
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(path), tarball])
    return path


@pytest.fixture(scope='module')
def ee_tree(tarball, tmp_path_factory):
    """extensions/ee and the tarball where `make tarball` puts it, in a tree shaped like the repo."""
    tree = tmp_path_factory.mktemp('repo')
    shutil.copytree(EE_DIR, tree / 'extensions' / 'ee')
    (tree / 'build' / 'collection').mkdir(parents=True)
    shutil.copy(tarball, tree / 'build' / 'collection')
    return tree


def declared_dependencies(collection_dir):
    """(python, system) lines the collection declares the way introspection reads them."""
    meta = os.path.join(collection_dir, 'meta', 'execution-environment.yml')
    files = {}
    if os.path.exists(meta):
        with open(meta) as f:
            files = (yaml.safe_load(f) or {}).get('dependencies') or {}
    else:
        files = {kind: name for kind, name in (('python', 'requirements.txt'), ('system', 'bindep.txt'))
                 if os.path.exists(os.path.join(collection_dir, name))}
    result = []
    for kind in ('python', 'system'):
        lines = []
        if files.get(kind):
            with open(os.path.join(collection_dir, files[kind])) as f:
                lines = [line.split('#')[0].strip() for line in f]
        result.append([line for line in lines if line])
    return result


def test_introspection_of_the_installed_collection(collections):
    collection_dir = os.path.join(str(collections), 'ansible_collections', 'microimpuls', 'micropvr')
    out = run([BUILDER, 'introspect', str(collections)])
    data = yaml.safe_load(out)
    python, system = declared_dependencies(collection_dir)
    assert data['python'] == ['%s  # from collection microimpuls.micropvr' % line for line in python], out
    assert data['system'] == ['%s  # from collection microimpuls.micropvr' % line for line in system], out


def test_collection_declares_no_dependencies_beyond_ansible_core():
    """The modules run on the hosts with the standard library; the controller-side plugins need
    ansible-core only. A dependency added later must be declared in meta/execution-environment.yml
    (and this test changed with it)."""
    assert declared_dependencies(ROOT) == [[], []]
    assert not os.path.exists(os.path.join(ROOT, 'requirements.txt'))
    assert not os.path.exists(os.path.join(ROOT, 'bindep.txt'))


def test_ee_requirements_name_the_tarball_of_this_version():
    with open(os.path.join(EE_DIR, 'requirements.yml')) as f:
        collections = yaml.safe_load(f)['collections']
    assert collections == [{'name': 'collections/microimpuls-micropvr-%s.tar.gz' % galaxy_version(), 'type': 'file'}]


def test_ansible_builder_create(ee_tree, tarball, tmp_path):
    context = tmp_path / 'context'
    run([BUILDER, 'create', '--file', str(ee_tree / 'extensions' / 'ee' / 'execution-environment.yml'),
         '--context', str(context), '--output-filename', 'Containerfile'], cwd=str(ee_tree))
    containerfile = (context / 'Containerfile').read_text()
    assert 'quay.io/centos/centos:stream9' in containerfile
    assert 'microimpuls.micropvr execution environment' in containerfile
    assert 'ansible-galaxy collection install' in containerfile
    build = context / '_build'
    copied = build / 'collections' / os.path.basename(tarball)
    assert copied.read_bytes() == open(tarball, 'rb').read()
    assert yaml.safe_load((build / 'requirements.yml').read_text())['collections'][0]['type'] == 'file'
    bindep = (build / 'bindep.txt').read_text()
    assert 'openssh-clients [platform:rpm]' in bindep and 'openssh-client [platform:dpkg]' in bindep


def docker_image_exists(name):
    if not shutil.which('docker'):
        return False
    return subprocess.run(['docker', 'image', 'inspect', name], capture_output=True, check=False).returncode == 0


def test_ansible_builder_build_with_docker(ee_tree, tmp_path):
    """The shipped definition, with only its base image swapped for a local Debian 12 one (no
    registry is reachable here; quay.io's CentOS Stream 9 cannot be pulled), builds, and the
    image holds the collection, ansible-runner and an SSH client."""
    if os.environ.get('MICROPVR_SKIP_EE_BUILD'):
        pytest.skip('MICROPVR_SKIP_EE_BUILD is set: the image build (about 3 minutes the first time) is skipped')
    if not docker_image_exists(BASE_IMAGE):
        pytest.skip('no local base image %s (make images builds it) or no docker engine: '
                    'the shipped base image is on quay.io, which this machine cannot reach' % BASE_IMAGE)
    ee_dir = ee_tree / 'extensions' / 'ee'
    with open(ee_dir / 'execution-environment.yml') as f:
        definition = yaml.safe_load(f)
    # Debian instead of CentOS: apt-get instead of dnf, Debian's python3 and its pip (installed
    # without the compilers it recommends) instead of python3.11 and ensurepip, which Debian
    # disables; everything else as shipped.
    definition['images']['base_image']['name'] = BASE_IMAGE
    definition['dependencies']['python_interpreter'] = {'python_path': '/usr/bin/python3'}
    definition.setdefault('options', {}).update(package_manager_path='/usr/bin/apt-get', skip_pip_install=True)
    # The CAs this machine trusts on top of Debian's (a TLS-inspecting proxy in front of PyPI, for
    # one) must be trusted inside the build too, or pip cannot reach PyPI from the image.
    local_ca = ee_dir / 'local-ca'
    local_ca.mkdir()
    (local_ca / 'README').write_text('CA certificates of the build machine (*.crt)\n')
    for crt in glob.glob('/usr/local/share/ca-certificates/*.crt'):
        shutil.copy(crt, local_ca)
    definition['additional_build_files'].append({'src': 'local-ca/*', 'dest': 'local-ca'})
    definition['additional_build_steps']['prepend_base'] = [
        'COPY _build/local-ca/ /usr/local/share/ca-certificates/',
        'RUN update-ca-certificates && apt-get update'
        ' && apt-get install -y --no-install-recommends python3-pip',
    ]
    local = ee_dir / 'execution-environment-debian.yml'
    local.write_text(yaml.safe_dump(definition))
    previous = subprocess.run(['docker', 'image', 'inspect', '--format', '{{.Id}}', TEST_TAG],
                              capture_output=True, text=True, check=False).stdout.strip()
    run([BUILDER, 'build', '--file', str(local), '--context', str(tmp_path / 'context'),
         '--container-runtime', 'docker', '--tag', TEST_TAG, '-v', '3'], cwd=str(ee_tree), timeout=1200)
    out = run(['docker', 'run', '--rm', TEST_TAG, 'ansible-galaxy', 'collection', 'list', 'microimpuls.micropvr'])
    assert '/usr/share/ansible/collections/ansible_collections' in out and galaxy_version() in out, out
    out = run(['docker', 'run', '--rm', TEST_TAG, 'ansible-doc', '--json', 'microimpuls.micropvr.micropvr_facts'])
    doc = json.loads(out)['microimpuls.micropvr.micropvr_facts']['doc']
    assert doc['short_description'].startswith('Gather facts about MicroPVR'), doc['short_description']
    run(['docker', 'run', '--rm', TEST_TAG, 'ansible-runner', '--version'])
    run(['docker', 'run', '--rm', TEST_TAG, 'ssh', '-V'])
    run(['docker', 'run', '--rm', TEST_TAG, 'sshpass', '-V'])
    # The image stays tagged so that its layers speed up the next run; the one it replaced goes.
    current = run(['docker', 'image', 'inspect', '--format', '{{.Id}}', TEST_TAG]).strip()
    if previous and previous != current:
        subprocess.run(['docker', 'image', 'rm', previous], capture_output=True, check=False)
