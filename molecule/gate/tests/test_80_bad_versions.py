"""A malformed or unknown target version is refused in pre-flight, before any backup is taken."""

import pytest

from gatelib import TARGET, assert_unchanged, host_state
from micropvr_testlib import run_playbook

BACKUP_TASK = 'Back up exactly what is installed (pinned)'


@pytest.mark.parametrize('version, reason', [
    ('1.10.0 -1', "micropvr_version: version '1.10.0 -1' has embedded spaces"),
    ('abc', "micropvr_version: version 'abc': the upstream version must start with a digit"),
    ('9.9.9-1', 'micropvr_version: micropvr 9.9.9-1 is not available from the apt sources (they offer: '),
])
def test_bad_target_version_is_refused_in_preflight(host, version, reason):
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=version)
    assert result.returncode != 0, result.output
    assert reason in result.output, result.output
    assert 'TASK [%s]' % BACKUP_TASK not in result.output
    assert 'Install the target version behind the backup gate' not in result.output
    assert_unchanged(host, before)  # no new backup set, no lock, no history


def test_unknown_version_lists_what_the_sources_offer(host):
    result = run_playbook(host, 'update.yml', micropvr_version='9.9.9-1')
    assert result.returncode != 0
    assert 'they offer: 1.10.1-1, %s, 1.9.0-1)' % TARGET in result.output, result.output
