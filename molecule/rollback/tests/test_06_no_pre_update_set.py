"""rollback.yml without micropvr_backup_id on a backup root that has no verified pre-update set:
micropvr_restore chooses the set itself and refuses, naming the root and what to do; nothing on
the host changes and the host lock is released.

Runs on the converged (updated) host before test_rollback.py rolls it back for real."""

import json

from forgery import FORGE_SCRIPT, install_forge
from gatelib import LOCK, STATE_DIR, history
from micropvr_testlib import (
    backup_ids, backup_root, installed_version, manifest, packages, rpc, run_module, run_playbook, target)

# A root with two sets, neither of them a verified pre-update set: copies of the real pre-update
# set, their manifests edited and sealed again with the host's own key by the suite's forger (so
# that they verify as sets): one no longer verified (verified_at removed), one verified but of
# another reason. If the choice ignored either condition, it would take one of them.
ROOT = '/root/no-pre-update-sets'
EDITS = (('20000101T000000Z', [dict(op='unverified')]), ('20000102T000000Z', [dict(op='reason', value='manual')]))


def test_no_pre_update_set_is_refused_and_nothing_changes(host):
    newest = backup_ids(host)[-1]
    assert manifest(host, newest)['reason'].startswith('pre-update'), 'converge took a pre-update set'
    host.check_output('rm -rf %s && install -d -m 0700 %s', ROOT, ROOT)
    install_forge(host)
    for copy_id, edit in EDITS:
        host.check_output('cp -a %s/%s %s/%s', backup_root(host), newest, ROOT, copy_id)
        host.check_output('python3 %s %s/%s host-key %s %s', FORGE_SCRIPT, ROOT, copy_id, STATE_DIR, json.dumps(edit))
    # The copies are sound sets: the listing calls them unverified and verified.
    statuses = run_module(host, 'micropvr_backup_info', backup_root=ROOT)[1]['sets']
    assert sorted((s['id'], s['status'], s['reason']) for s in statuses) == [
        ('20000101T000000Z', 'unverified', manifest(host, newest)['reason']),
        ('20000102T000000Z', 'verified', 'manual')], statuses
    events_before = len(history(host))
    listing_before = host.check_output('find %s -printf "%%P %%s %%T@\\n" | sort', ROOT)

    result = run_playbook(host, 'rollback.yml', micropvr_backup_root=ROOT)

    assert result.returncode != 0, result.output
    assert 'no verified pre-update backup set in %s' % ROOT in result.output, result.output
    assert 'micropvr_backup_id=<id>' in result.output, result.output
    for package in packages(host):
        assert installed_version(host, package) == target(host), package
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert len(history(host)) == events_before, history(host)[events_before:]
    assert not host.file(LOCK).exists, 'the failed rollback left the host lock'
    assert host.check_output('find %s -printf "%%P %%s %%T@\\n" | sort', ROOT) == listing_before
    host.check_output('rm -rf %s %s', ROOT, FORGE_SCRIPT)
