"""Root without sudo: the Debian 13 host has no sudo and ansible_become: false (molecule.yml host_vars).

The whole scenario runs against it that way; here: sudo really is absent, and the override is what
makes the playbooks work there.
"""

import pytest

from micropvr_testlib import run_playbook


def _without_sudo(host):
    become = host.ansible.get_variables().get('ansible_become', True)
    return str(become).lower() in ('false', 'no', '0')


@pytest.fixture
def rootonly(host):
    if not _without_sudo(host):
        pytest.skip('this host is reached with become (sudo)')
    return host


def test_sudo_is_absent_and_the_connection_is_root(rootonly):
    assert rootonly.run('command -v sudo').rc != 0
    status = rootonly.run("dpkg-query -W -f '${db:Status-Status}' sudo").stdout
    assert status in ('', 'not-installed', 'config-files')
    assert rootonly.check_output('id -u') == '0'


def test_playbooks_run_as_root_without_sudo(rootonly):
    result = run_playbook(rootonly, 'facts.yml')
    assert result.returncode == 0, result.output


def test_without_the_override_become_fails_for_want_of_sudo(rootonly):
    # Extra vars beat the inventory: this is the play's become: true, as on a host without the override.
    result = run_playbook(rootonly, 'facts.yml', ansible_become=True)
    assert result.returncode != 0, result.output
    assert 'sudo' in result.output, result.output
