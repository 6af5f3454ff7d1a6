"""ansible-builder turns meta/execution-environment.yml into a build context (no image is built:
that needs a registry)."""

import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BUILDER = os.path.join(os.path.dirname(sys.executable), 'ansible-builder')


def test_ansible_builder_create(tmp_path):
    proc = subprocess.run([BUILDER, 'create', '--file', os.path.join(ROOT, 'meta', 'execution-environment.yml'),
                           '--context', str(tmp_path / 'context'), '--output-filename', 'Containerfile'],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (tmp_path / 'context' / 'Containerfile').read_text()
    assert 'quay.io/centos/centos:stream9' in containerfile
    assert 'microimpuls.micropvr execution environment' in containerfile
    build = tmp_path / 'context' / '_build'
    assert 'microimpuls.micropvr' in (build / 'requirements.yml').read_text()
    assert 'openssh-clients' in (build / 'bindep.txt').read_text()
