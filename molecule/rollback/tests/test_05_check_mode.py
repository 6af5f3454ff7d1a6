"""rollback.yml --check is a dry run: the set is verified for real, the restore is reported, nothing changes.

Runs on the converged (updated) host before test_rollback.py rolls it back for real. Versions, backup
root, state directory and packages come from the host's inventory variables and the set's manifest.
"""

import hashlib
import json

import pytest

from micropvr_testlib import flip_byte, run_playbook

# An id older than any real set: never chosen as "the newest pre-update set".
COPY_ID = '20000102T000000Z'


def _var(host, name, default):
    return host.ansible.get_variables().get(name, default)


def _backup_root(host):
    return _var(host, 'micropvr_backup_root', '/var/backups/micropvr')


def _state_dir(host):
    return _var(host, 'micropvr_state_dir', '/var/lib/microimpuls-micropvr')


def _packages(host):
    return list(_var(host, 'micropvr_packages', ['micropvr', 'micropvs']))


def _manifest(host, backup_id):
    return json.loads(host.file('%s/%s/manifest.json' % (_backup_root(host), backup_id)).content_string)


def _listing(host, path):
    """Every entry under ``path`` (hidden and partial ones too), with size and mtime.

    Not ``path``'s own mtime: the damaged-set test adds and removes a set there itself.
    """
    return host.run('find %s -mindepth 1 -printf "%%P %%s %%T@\\n" 2>/dev/null | sort', path).stdout


def _databases(host):
    paths = host.check_output('find /etc/micropvr -name "*.db" -type f | sort').split()
    return dict((path, host.check_output('sqlite3 %s .dump', path)) for path in paths)


def _state(host):
    """What a dry run must leave exactly as it was."""
    history = host.file('%s/history.jsonl' % _state_dir(host))
    return dict(
        versions=dict((name, host.check_output("dpkg-query -W -f '${Version}' %s", name))
                      for name in _packages(host)),
        dpkg=host.check_output('dpkg -l'),
        holds=host.check_output('apt-mark showhold'),
        backup_root=_listing(host, _backup_root(host)),
        state_dir=_listing(host, _state_dir(host)),
        history=hashlib.sha256(history.content).hexdigest() if history.exists else None,
        lock=host.file('%s/update.lock' % _state_dir(host)).exists,
        config=host.check_output('find /etc/micropvr -name "*.conf" -type f -exec sha256sum {} + | sort'),
        databases=_databases(host),
        policy=host.file('/usr/sbin/policy-rc.d').exists,
    )


@pytest.fixture(scope='module')
def pre_update_set(host):
    """Id of the newest pre-update set, the one rollback.yml restores by default."""
    target = _var(host, 'micropvr_version', None)
    root = _backup_root(host)
    ids = sorted(host.check_output('ls -1 %s', root).split(), reverse=True)
    for backup_id in ids:
        if not host.file('%s/%s/manifest.json' % (root, backup_id)).exists:
            continue
        if _manifest(host, backup_id)['reason'] == 'pre-update to %s' % target:
            return backup_id
    pytest.fail('no pre-update set in %s: %s' % (root, ids))


@pytest.fixture(scope='module')
def before(host):
    state = _state(host)
    assert not state['lock']
    return state


@pytest.mark.parametrize('named', [False, True], ids=['newest-pre-update', 'named'])
def test_check_mode_reports_the_restore_and_changes_nothing(host, pre_update_set, before, named):
    extra = dict(micropvr_backup_id=pre_update_set) if named else {}
    result = run_playbook(host, 'rollback.yml', '--check', **extra)
    assert result.returncode == 0, result.output
    saved = dict((name, pkg['version']) for name, pkg in _manifest(host, pre_update_set)['packages'].items())
    assert saved != before['versions'], 'converge updated the host'
    message = 'Check mode: %s would roll back to backup set %s' % (host.backend.get_hostname(), pre_update_set)
    assert message in result.output, result.output
    assert '-> %s)' % ', '.join('%s %s' % item for item in sorted(saved.items())) in result.output, result.output
    assert 'would restore: ' in result.output
    for name in saved:
        assert '%s %s installed, the set has %s' % (name, before['versions'][name], saved[name]) in result.output
    assert _state(host) == before


def test_check_mode_of_a_missing_set_fails_with_the_message(host, before):
    result = run_playbook(host, 'rollback.yml', '--check', micropvr_backup_id='20000101T000000Z')
    assert result.returncode != 0, result.output
    assert 'no backup set 20000101T000000Z in %s' % _backup_root(host) in result.output, result.output
    assert _state(host) == before


def test_check_mode_of_a_damaged_set_fails_with_the_message(host, pre_update_set, before):
    root = _backup_root(host)
    copy = '%s/%s' % (root, COPY_ID)
    host.check_output('cp -a %s/%s %s', root, pre_update_set, copy)
    try:
        flip_byte(host, '%s/config.tar' % copy, 600)
        damaged = _state(host)
        result = run_playbook(host, 'rollback.yml', '--check', micropvr_backup_id=COPY_ID)
        after = _state(host)
    finally:
        host.check_output('rm -rf %s', copy)
    assert result.returncode != 0, result.output
    assert 'refusing to restore from backup set %s: it does not verify, nothing was changed' % COPY_ID \
        in result.output, result.output
    assert after == damaged
    assert _state(host) == before
