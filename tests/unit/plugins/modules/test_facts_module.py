"""micropvr_facts: the packages and the backup tools come from one dpkg-query; a tool that dpkg
does not list, or lists in a state other than installed, is reported as not installed."""

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_facts

from module_runner import run_main

DPKG = {
    'micropvr': 'install ok installed',
    'micropvs': 'install ok installed',
    'dpkg-repack': 'install ok installed',
    # Removed, its configuration kept: dpkg lists it, but its files are gone.
    'restic': 'deinstall ok config-files',
}


@pytest.fixture
def host(monkeypatch, tmp_path):
    calls = []

    def run_command(self, args, **kwargs):
        calls.append(list(args))
        if os.path.basename(args[0]) == 'dpkg-query':
            names = args[args.index('--') + 1:]
            listed = [name for name in names if name in DPKG]
            return (1 if len(listed) < len(names) else 0), ''.join(
                '%s\t1.0-1\tamd64\t10\t%s\n' % (name, DPKG[name]) for name in listed), ''
        return 3, '', ''  # init.d status: stopped

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, *a, **k: '/usr/bin/' + name)
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{"records-db-path": "%s"}\n' % (tmp_path / 'records.db'))
    return dict(calls=calls, config_file=str(conf), backup_root=str(tmp_path / 'backups'))


def facts(capsys, host, **args):
    code, result = run_main(micropvr_facts.main, capsys, config_file=host['config_file'],
                            backup_root=host['backup_root'], services=[], **args)
    assert code == 0, result
    assert result['changed'] is False
    return result['ansible_facts']['micropvr']


def test_tools_are_reported_from_the_same_dpkg_query_as_the_packages(capsys, host):
    found = facts(capsys, host, tools=['dpkg-repack', 'restic', 'postgresql-client', 'micropvr'])
    queries = [call for call in host['calls'] if call[0].endswith('dpkg-query')]
    assert len(queries) == 1
    # A name in both lists is asked once.
    assert queries[0][queries[0].index('--') + 1:] == ['micropvr', 'micropvs', 'dpkg-repack', 'restic',
                                                        'postgresql-client']
    assert dict((name, info['installed']) for name, info in found['tools'].items()) == {
        'dpkg-repack': True, 'restic': False, 'postgresql-client': False, 'micropvr': True}
    assert found['tools']['restic']['state'] == 'config-files'
    assert found['tools']['postgresql-client']['state'] == 'not-installed'
    assert sorted(found['packages']) == ['micropvr', 'micropvs']
    assert found['installed'] is True


def test_without_tools_none_are_reported(capsys, host):
    found = facts(capsys, host)
    assert found['tools'] == {}
    queries = [call for call in host['calls'] if call[0].endswith('dpkg-query')]
    assert queries[0][queries[0].index('--') + 1:] == ['micropvr', 'micropvs']


def test_a_tool_name_that_looks_like_an_option_stays_a_name(capsys, host):
    found = facts(capsys, host, tools=['--help'])
    assert found['tools']['--help']['installed'] is False
