"""micropvr_install: which dpkg states are an unfinished package operation; the state directory check."""

import os

import pytest
from ansible.module_utils import basic

from module_runner import run_main

from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import parse_dpkg_query
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_install
from ansible_collections.microimpuls.micropvr.plugins.modules.micropvr_install import unfinished_packages


def installed(*lines):
    return parse_dpkg_query(''.join('%s\t1.10.0-1\tamd64\t100\t%s\n' % line for line in lines))


@pytest.mark.parametrize('status', ['install ok half-configured', 'install reinstreq half-installed',
                                    'install ok unpacked', 'install ok triggers-pending'])
def test_interrupted_states_are_unfinished(status):
    packages = installed(('micropvr', status), ('micropvs', 'install ok installed'))
    assert unfinished_packages(packages) == {'micropvr': status.split()[-1]}


@pytest.mark.parametrize('status', ['install ok installed', 'deinstall ok config-files', 'unknown ok not-installed'])
def test_installed_or_absent_packages_are_not_unfinished(status):
    assert unfinished_packages(installed(('micropvr', status))) == {}


# --- the state directory is checked before anything else -----------------------------------------

@pytest.fixture
def no_commands(monkeypatch):
    """Any command the module would run (dpkg-query, apt-get) fails the test."""
    def refuse(self, args, **kwargs):
        raise AssertionError('the module ran %r before checking its state directory' % (args,))
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', refuse)


@pytest.mark.parametrize('args', [dict(), dict(_ansible_check_mode=True), dict(preflight=True)])
@pytest.mark.parametrize('path, reason', [
    ('/tmp', '/tmp is a system directory'),
    ('/home', '/home is a system directory'),
    ('', "'' is not set"),
    ('state', 'state is not an absolute path'),
])
def test_a_bad_state_dir_is_refused_first(capsys, no_commands, args, path, reason):
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', backup_id='20261126T220000Z',
                            state_dir=path, **args)
    assert code == 1
    assert result['msg'].startswith('refusing to install 1.10.0-1: micropvr_state_dir: %s' % reason)


def test_a_state_dir_of_another_user_is_refused(tmp_path, capsys, no_commands):
    os.chown(str(tmp_path), 54321, -1)
    code, result = run_main(micropvr_install.main, capsys, version='1.10.0-1', backup_id='20261126T220000Z',
                            state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 1
    assert 'micropvr_state_dir: %s is owned by uid 54321' % tmp_path in result['msg']
