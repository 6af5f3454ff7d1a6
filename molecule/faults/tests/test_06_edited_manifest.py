"""Fault 6: manifest.json is edited after the backup (a package version, a checksum); the keyed
seal catches it: the set is tampered, the gate and a rollback refuse."""

import json

import pytest

from faultlib import module_args, reset, run_module, run_playbook, target
from gatelib import host_state, set_file, take_backup
from micropvr_testlib import create_tasks

EDIT = r'''
import json, sys
path, edit, version = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path) as handle:
    data = json.load(handle)
if edit == "version":
    data["packages"]["micropvs"]["version"] = version
else:
    entry = data["files"][0]
    entry["sha256"] = ("0" if entry["sha256"][0] != "0" else "1") + entry["sha256"][1:]
with open(path, "w") as handle:
    json.dump(data, handle, indent=2, sort_keys=True)
    handle.write("\n")
'''


@pytest.fixture(scope='module', autouse=True)
def prepared(host):
    reset(host)


@pytest.mark.parametrize('edit', ['version', 'checksum'])
def test_edited_manifest_is_refused_by_the_gate_and_the_rollback(host, edit):
    backup_id = take_backup(host, 'faults: to edit its manifest')
    host.check_output('python3 -c %s %s %s %s', EDIT, set_file(backup_id, 'manifest.json', host), edit, target(host))
    json.loads(host.file(set_file(backup_id, 'manifest.json', host)).content_string)  # still valid JSON
    create_tasks(host, 1, channel=50)
    before = host_state(host)

    rc, result = run_module(host, 'micropvr_install', version=target(host), backup_id=backup_id,
                            **module_args(host, 'packages', 'backup_root'))
    assert rc != 0 and result.get('changed') is False, result
    assert 'manifest.json was changed after the backup was taken (its seal does not verify)' in result['msg'], \
        result['msg']

    rollback = run_playbook(host, 'rollback.yml', micropvr_backup_id=backup_id)
    assert rollback.returncode != 0
    assert 'refusing to restore from backup set %s: it is TAMPERED' % backup_id in rollback.output, rollback.output
    assert 'manifest.json was changed after the backup was taken (its seal does not verify)' in rollback.output
    assert host_state(host) == before
