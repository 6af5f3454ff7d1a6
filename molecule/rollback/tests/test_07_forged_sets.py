"""Forged backup sets on a real host: a set edited and resealed without the key is tampered; a set
resealed WITH the host's key still cannot make a restore write outside the configuration paths.

Runs on the converged (updated) host before test_rollback.py rolls it back for real. Each forged
set is a copy of the pre-update set under an old id (never chosen as "the newest pre-update set"),
edited on the host by a small script, and removed afterwards.
"""

import json

import pytest

from forgery import FORGE_SCRIPT, install_forge
from gatelib import LOCK, STATE_DIR
from micropvr_testlib import backup_root, manifest, packages, run_module, run_playbook

FORGED_ID = '20000103T000000Z'
SENTINEL = '/root/.ssh/authorized_keys'
SENTINEL_TEXT = 'ssh-ed25519 AAAA-sentinel operator@example\n'

# What must not change when a forged set is refused: every file, link and directory outside the
# backup root and the state directory that a restore could reach (configuration included), with
# size, mode, owner and mtime; the package versions; the services. Not the live SQLite files and
# directory mtimes (the running daemon writes its databases and journals), not Ansible's own
# temporary files under /root/.ansible.
SNAPSHOT = ("find /etc /root /usr/local /usr/sbin /srv -xdev \\( -path /root/.ansible -o -path '*/pvr-backups' \\) "
            "-prune -o -type d -printf '%p d %m %U %G\\n' -o \\( -type f -o -type l \\) ! -name '*.db' "
            "! -name '*.db-*' -printf '%p %y %s %m %U %G %T@ %l\\n' | sort | sha256sum")


def _host_state(host):
    return dict(
        files=host.check_output(SNAPSHOT),
        versions=dict((name, host.check_output("dpkg-query -W -f '${Version}' %s", name)) for name in packages(host)),
        holds=host.check_output('apt-mark showhold'),
        micropvr=host.run('/etc/init.d/micropvr status').rc,
        micropvs=host.run('/etc/init.d/micropvs status').rc,
        lock=host.file(LOCK).exists,
        sentinel=host.file(SENTINEL).content_string,
    )


@pytest.fixture(scope='module')
def pre_update_id(host):
    target = host.ansible.get_variables().get('micropvr_version')
    root = backup_root(host)
    for backup_id in sorted(host.check_output('ls -1 %s', root).split(), reverse=True):
        if host.file('%s/%s/manifest.json' % (root, backup_id)).exists \
                and manifest(host, backup_id)['reason'] == 'pre-update to %s' % target:
            return backup_id
    pytest.fail('no pre-update set in %s' % root)


@pytest.fixture(scope='module', autouse=True)
def sentinel(host):
    host.check_output('install -d -m 0700 /root/.ssh && printf %s > {0} && chmod 0600 {0}'.format(SENTINEL),
                      SENTINEL_TEXT)
    install_forge(host)
    yield
    host.check_output('rm -f %s', FORGE_SCRIPT)


@pytest.fixture
def forged(host, pre_update_id):
    """forge(mode, edit) makes the forged copy; it is removed after the test."""
    root = backup_root(host)
    copy = '%s/%s' % (root, FORGED_ID)

    def forge(mode, edit):
        host.check_output('rm -rf %s && cp -a %s/%s %s', copy, root, pre_update_id, copy)
        host.check_output('python3 %s %s %s %s %s', FORGE_SCRIPT, copy, mode, STATE_DIR, json.dumps(edit))
        return FORGED_ID

    yield forge
    host.check_output('rm -rf %s', copy)


@pytest.mark.parametrize('mode', ['unkeyed', 'other-key'])
def test_a_hand_edited_and_resealed_set_is_tampered(host, forged, mode):
    """backup_verify.yml reports it TAMPERED; rollback.yml refuses it and leaves the host untouched."""
    backup_id = forged(mode, [dict(op='reason', value='pre-update to 9.9.9-1')])
    before = _host_state(host)

    verify = run_playbook(host, 'backup_verify.yml', micropvr_backup_id=backup_id)
    assert verify.returncode != 0, verify.output
    assert '%s: TAMPERED' % backup_id in verify.output, verify.output
    assert 'TAMPERED backup set(s)' in verify.output, verify.output

    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert rollback.returncode != 0, rollback.output
    assert 'refusing to restore from backup set %s: it is TAMPERED' % backup_id in rollback.output, rollback.output
    assert _host_state(host) == before


# Sealed with the host's own key, so the seal verifies: the confinement alone must stop them.
ESCAPES = {
    'member outside the entries': (
        [dict(op='member', name='etc/cron.d/micropvr-evil', kind='file', data='* * * * * root id\n', listed=False)],
        'config.tar member etc/cron.d/micropvr-evil is not in the manifest'),
    'entry outside the config paths': (
        [dict(op='member', name='etc/cron.d/micropvr-evil', kind='file', data='* * * * * root id\n')],
        "'/etc/cron.d/micropvr-evil' is not under the set's configuration paths"),
    'config path the host does not name': (
        [dict(op='config_path', value='/etc/cron.d'),
         dict(op='member', name='etc/cron.d', kind='dir'),
         dict(op='member', name='etc/cron.d/micropvr-evil', kind='file', data='* * * * * root id\n')],
        'the set restores /etc/cron.d, which is not under micropvr_config_paths'),
    'symlink out of the config paths': (
        [dict(op='member', name='etc/micropvr/ssh', kind='symlink', target='/root/.ssh'),
         dict(op='member', name='etc/micropvr/ssh/authorized_keys', kind='file', data='ssh-rsa forged\n')],
        'symbolic link /etc/micropvr/ssh points to \'/root/.ssh\', outside the configuration paths'),
}


@pytest.mark.parametrize('name', sorted(ESCAPES))
def test_a_set_sealed_with_the_host_key_cannot_write_outside_the_config_paths(host, forged, name):
    edit, message = ESCAPES[name]
    backup_id = forged('host-key', edit)
    before = _host_state(host)
    rc, result = run_module(host, 'micropvr_restore', backup_id=backup_id, backup_root=backup_root(host),
                            packages=packages(host))
    assert rc != 0, result
    assert message in result['msg'], result['msg']
    assert 'nothing was changed' in result['msg'], result['msg']
    assert _host_state(host) == before
    assert not host.file('/etc/cron.d/micropvr-evil').exists


def test_rollback_yml_refuses_a_forged_set_sealed_with_the_host_key(host, forged):
    edit, message = ESCAPES['symlink out of the config paths']
    backup_id = forged('host-key', edit)
    before = _host_state(host)
    result = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert result.returncode != 0, result.output
    assert message in result.output, result.output
    assert _host_state(host) == before
    assert host.file(SENTINEL).content_string == SENTINEL_TEXT
