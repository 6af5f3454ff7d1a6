"""Fault 8: an unknown or malformed target version, an unknown backup id, a backup id with a
path in it: a clear error before anything changes."""

import pytest

from faultlib import backup_root, host_profile, module_args, packages, reset, run_module, run_playbook, target
from gatelib import assert_unchanged, host_state, take_backup

BACKUP_TASK = 'TASK [microimpuls.micropvr.backup'


@pytest.fixture(scope='module')
def real_set(host):
    reset(host)
    host.check_output('apt-mark unhold %s' % ' '.join(packages(host)))
    return take_backup(host, 'faults: a real set next to the bad ids')


@pytest.mark.parametrize('version, reason', [
    ('1.10.0 -1', "micropvr_version: version '1.10.0 -1' has embedded spaces"),
    ('abc', "micropvr_version: version 'abc': the upstream version must start with a digit"),
    ('9.9.9-1', 'micropvr_version: micropvr 9.9.9-1 is not available from the apt sources (they offer: '
                '{e}1.10.1-1, {e}1.10.0-1, {e}1.9.0-1)'),
    ('1.8.0-1', 'micropvr_version: micropvr 1.8.0-1 is not available from the apt sources'),
])
def test_bad_target_version_is_refused_before_the_backup(host, real_set, version, reason):
    reason = reason.format(e=host_profile(host)['epoch'])  # the versions of the host's variant
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=version)
    assert result.returncode != 0, result.output
    assert reason in result.output, result.output
    assert BACKUP_TASK not in result.output
    assert_unchanged(host, before)  # no new backup set, no lock, no history


def test_unknown_backup_id_is_refused(host, real_set):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=target(host), backup_id='20200101T000000Z',
                            **module_args(host, 'packages', 'backup_root'))
    assert rc != 0 and result['msg'] == 'refusing to install %s: no backup set 20200101T000000Z in ' \
                                        '%s' % (target(host), backup_root(host))
    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id='20200101T000000Z')
    assert rollback.returncode != 0
    assert 'micropvr_backup_id: no backup set 20200101T000000Z in %s (sets there: ' % backup_root(host) \
        in rollback.output and real_set in rollback.output
    assert_unchanged(host, before)


# {root}: the host's backup root, {name}: its last component (micropvr by default).
@pytest.mark.parametrize('template', ['../etc', '../{name}/{set}', '{set}/..', '../../..{root}/{set}'])
def test_backup_id_with_a_path_is_refused_even_when_it_leads_to_a_real_set(host, real_set, template):
    backup_id = template.format(set=real_set, root=backup_root(host), name=backup_root(host).rsplit('/', 1)[-1])
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=target(host), backup_id=backup_id,
                            **module_args(host, 'packages', 'backup_root'))
    assert rc != 0 and result['msg'] == ("refusing to install %s: backup id %r must be a plain name, not a path "
                                         "(no '/' or '..')" % (target(host), backup_id)), result['msg']
    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert rollback.returncode != 0
    assert "micropvr_backup_id: backup id %r must be a plain name, not a path" % backup_id in rollback.output, \
        rollback.output
    assert_unchanged(host, before)


@pytest.mark.parametrize('backup_id', ['latest', '2026-11-26', ' '])
def test_malformed_backup_id_is_refused(host, real_set, backup_id):
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=target(host), backup_id=backup_id,
                            **module_args(host, 'packages', 'backup_root'))
    assert rc != 0 and 'is not of the form YYYYMMDDTHHMMSSZ' in result['msg'], result['msg']
    assert_unchanged(host, before)
