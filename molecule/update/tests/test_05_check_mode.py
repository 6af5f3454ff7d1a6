"""update.yml --check is a dry run: pre-flight for real, a report of what it would do, nothing changed.

Runs on the converged host (already at micropvr_version), before the other tests of the scenario.
Versions, backup root, state directory and packages come from the host's inventory variables.
"""

import hashlib
import re

import pytest

from micropvr_testlib import run_playbook


def _var(host, name, default):
    return host.ansible.get_variables().get(name, default)


def _packages(host):
    return list(_var(host, 'micropvr_packages', ['micropvr', 'micropvs']))


def _services(host):
    return list(_var(host, 'micropvr_services', ['micropvr', 'micropvs']))


def _versions(host):
    return dict((name, host.check_output("dpkg-query -W -f '${Version}' %s", name)) for name in _packages(host))


def _listing(host, path):
    """Every entry under ``path`` (hidden and partial ones too), with size and mtime."""
    return host.run('find %s -printf "%%P %%s %%T@\\n" 2>/dev/null | sort', path).stdout


def _state(host):
    """What a dry run must leave exactly as it was."""
    backup_root = _var(host, 'micropvr_backup_root', '/var/backups/micropvr')
    state_dir = _var(host, 'micropvr_state_dir', '/var/lib/microimpuls-micropvr')
    history = host.file('%s/history.jsonl' % state_dir)
    return dict(
        versions=_versions(host),
        dpkg=host.check_output('dpkg -l'),
        holds=host.check_output('apt-mark showhold'),
        backup_root=_listing(host, backup_root),
        state_dir=_listing(host, state_dir),
        history=hashlib.sha256(history.content).hexdigest() if history.exists else None,
        lock=host.file('%s/update.lock' % state_dir).exists,
        config=host.check_output('find /etc/micropvr -name "*.conf" -type f -exec sha256sum {} + | sort'),
        pids=dict((name, host.run('cat /run/%s.pid', name).stdout.strip()) for name in _services(host)),
    )


def _next_version(host):
    """The newest version the apt sources offer for every package, newer than what is installed."""
    installed = _versions(host)
    offered = None
    for name in _packages(host):
        lines = host.check_output('apt-cache madison %s', name).splitlines()
        versions = set(line.split('|')[1].strip() for line in lines if line.count('|') >= 2)
        offered = versions if offered is None else offered & versions
    newer = [v for v in offered
             if all(host.run('dpkg --compare-versions %s gt %s', v, old).rc == 0 for old in installed.values())]
    for candidate in newer:
        if all(host.run('dpkg --compare-versions %s ge %s', candidate, other).rc == 0 for other in newer):
            return candidate
    return None


@pytest.fixture(scope='module')
def before(host):
    state = _state(host)
    assert not state['lock'], 'no run should hold the lock before the dry runs'
    return state


def test_check_mode_at_target_exits_0_and_changes_nothing(host, before):
    result = run_playbook(host, 'update.yml', '--check')
    assert result.returncode == 0, result.output
    # (run_playbook limits the run to this host, so the localhost summary play does not run.)
    assert '%s: already at target (' % host.backend.get_hostname() in result.output, result.output
    assert _state(host) == before


def test_check_mode_of_a_real_update_reports_it_and_changes_nothing(host, before):
    target = _next_version(host)
    assert target, 'the apt sources offer no version newer than the installed one: %s' % before['versions']
    result = run_playbook(host, 'update.yml', '--check', micropvr_version=target)
    assert result.returncode == 0, result.output
    # The backup it would take, then the install, per host.
    assert 'Check mode: would back up' in result.output
    assert 'Check mode: would update %s to %s' % (host.backend.get_hostname(), target) in result.output
    for name, version in sorted(before['versions'].items()):
        assert '%s %s -> %s' % (name, version, target) in result.output, result.output
    assert '%s: would update (' % host.backend.get_hostname() in result.output, result.output
    assert 'FAILED' not in result.output.split('PLAY RECAP')[0], result.output
    # Nothing changed: packages, holds, no backup set (not even a partial one), no lock, no history.
    assert _state(host) == before


def test_check_mode_fails_with_the_preflight_message_for_an_unoffered_version(host, before):
    result = run_playbook(host, 'update.yml', '--check', micropvr_version='99.0.0-1')
    assert result.returncode != 0, result.output
    assert re.search(r'99\.0\.0-1 is not available from the apt sources', result.output), result.output
    assert _state(host) == before


def test_check_mode_fails_with_the_preflight_message_when_a_service_is_down(host, before):
    target = _next_version(host)
    host.check_output('/etc/init.d/micropvr stop')
    try:
        result = run_playbook(host, 'update.yml', '--check', micropvr_version=target)
        after = _state(host)
    finally:
        host.check_output('/etc/init.d/micropvr start')
    assert result.returncode != 0, result.output
    assert 'Pre-flight: not running: micropvr' in result.output, result.output
    # What the check read came from the pre-flight's facts: the shared role's facts task is skipped.
    assert re.search(r'TASK \[microimpuls\.micropvr\.micropvr : Gather MicroPVR facts\] \*+\nskipping: ',
                     result.output), result.output
    after['pids'] = before['pids']  # the test itself stopped the daemon
    assert after == before
