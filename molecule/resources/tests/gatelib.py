"""Helpers of the gate suite: what "nothing changed" means on a MicroPVR host."""

import json

from micropvr_testlib import (
    BACKUP_ROOT, backup_ids, backup_root, baseline, db_dump, flip_byte, host_profile, installed_version, packages,
    run_module, run_playbook, service_status)

# Re-exported for the suite, with the helpers below.
__all__ = ['BASELINE', 'PACKAGES', 'TARGET', 'HISTORY', 'LOCK', 'STATE_DIR', 'assert_unchanged', 'flip_byte', 'history',
           'host_state', 'run_module', 'run_playbook', 'set_file', 'take_backup']

# The default stand-in's values; a host of another variant: micropvr_testlib.host_profile
# (baseline(host), target(host), packages(host)).
PACKAGES = ('micropvr', 'micropvs')
SERVICES = ('micropvr', 'micropvs')
STATE_DIR = '/var/lib/microimpuls-micropvr'
HISTORY = STATE_DIR + '/history.jsonl'
LOCK = STATE_DIR + '/update.lock'
BASELINE = '1.9.0-1'
TARGET = '1.10.0-1'


def history(host):
    """Every event of the host history, oldest first ([] when there is none yet)."""
    history_file = host.file(HISTORY)
    if not history_file.exists:
        return []
    return [json.loads(line) for line in history_file.content_string.splitlines() if line.strip()]


def held_packages(host):
    return sorted(host.check_output('apt-mark showhold').split())


def host_state(host):
    """Everything a refused update must leave exactly as it was."""
    return dict(
        versions=dict((name, installed_version(host, name)) for name in packages(host)),
        databases=db_dump(host),
        services=dict((name, service_status(host, name)) for name in host_profile(host)['services']),
        held=held_packages(host),
        backup_ids=backup_ids(host),
        history=history(host),
        locked=host.file(LOCK).exists,
        dpkg_audit=host.check_output('dpkg --audit'),
    )


def assert_unchanged(host, before, history_may_grow=False):
    """The host is as ``before`` and still stand-in 1.9.0, running, with nothing held."""
    after = host_state(host)
    if history_may_grow:
        assert after['history'][:len(before['history'])] == before['history']
        after['history'] = before['history']
    assert after == before
    assert after['versions'] == dict((name, baseline(host)) for name in packages(host))
    assert after['services'] == {'micropvr': 0, 'micropvs': 0}, 'a MicroPVR service is not running'
    assert after['held'] == []
    assert not after['locked'], 'the update lock was left behind'
    assert after['dpkg_audit'] == ''
    return after


def take_backup(host, reason):
    """Run backup.yml; return the id of the one set it took."""
    before = set(backup_ids(host))
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason=reason)
    assert result.returncode == 0, result.output
    (new,) = sorted(set(backup_ids(host)) - before)
    return new


def set_file(backup_id, relpath, host=None):
    """Path of ``relpath`` in a backup set (under ``host``'s backup root when given)."""
    return '%s/%s/%s' % (backup_root(host) if host is not None else BACKUP_ROOT, backup_id, relpath)
