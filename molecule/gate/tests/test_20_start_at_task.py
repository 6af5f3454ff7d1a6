"""update.yml cannot be started past its backup: --start-at-task and tags do not open the gate."""

import re

from gatelib import BASELINE, TARGET, assert_unchanged, host_state
from micropvr_testlib import run_playbook

INSTALL_TASK = 'Install the target version behind the backup gate'


def _task_output(output, name):
    """What the play printed for task ``name`` (up to the next task), or None when it did not run."""
    match = re.search(r'TASK \[[^\]]*%s\] \**\n(.*?)(?=\nTASK \[|\nPLAY RECAP)' % re.escape(name), output, re.S)
    return match.group(1) if match else None


def test_start_at_install_task_is_refused(host):
    """Started at the install task, the play has no pre-flight result and fails before installing."""
    before = host_state(host)
    result = run_playbook(host, 'update.yml', '--start-at-task', INSTALL_TASK, micropvr_version=TARGET)
    assert result.returncode != 0, result.output
    install = _task_output(result.output, INSTALL_TASK)
    assert install is None or not re.search(r'^(ok|changed): ', install, re.M), result.output
    assert_unchanged(host, before, history_may_grow=True)


def test_start_at_install_task_with_forged_preflight_meets_the_gate(host):
    """Even with the role's own guards satisfied by hand, the module itself refuses."""
    before = host_state(host)
    forged = dict(from_versions=dict(micropvr=BASELINE, micropvs=BASELINE),
                  to_versions=dict(micropvr=TARGET, micropvs=TARGET))
    result = run_playbook(host, 'update.yml', '--start-at-task', INSTALL_TASK, micropvr_version=TARGET,
                          __update_preflight=forged, __update_run_id='forged-run')
    assert result.returncode != 0, result.output
    install = _task_output(result.output, INSTALL_TASK)
    assert install is not None and not re.search(r'^(ok|changed): ', install, re.M), result.output
    assert 'Module failed: refusing to install %s without a backup: backup_id is not set' % TARGET in result.output
    assert_unchanged(host, before, history_may_grow=True)


def test_no_tag_separates_the_install_from_the_backup(host):
    """The update role has no tags of its own: --tags / --skip-tags select all of it or none of it."""
    listing = run_playbook(host, 'update.yml', '--list-tags', micropvr_version=TARGET)
    assert listing.returncode == 0, listing.output
    tags = set(', '.join(re.findall(r'TASK TAGS: \[(.*)\]', listing.output)).split(', ')) - {''}
    assert tags == {'always'}, listing.output
    before = host_state(host)
    result = run_playbook(host, 'update.yml', '--tags', 'install', micropvr_version=TARGET)
    assert result.returncode == 0, result.output
    assert _task_output(result.output, INSTALL_TASK) is None, result.output
    assert_unchanged(host, before)
