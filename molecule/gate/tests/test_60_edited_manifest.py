"""A manifest edited after the backup (still valid JSON) breaks its seal and does not open the gate."""

import pytest

from gatelib import TARGET, assert_unchanged, host_state, run_module, set_file, take_backup
from micropvr_testlib import manifest

EDIT = r'''
import json, sys
path, package, version = sys.argv[1:]
with open(path) as handle:
    data = json.load(handle)
data["packages"][package]["version"] = version
with open(path, "w") as handle:
    json.dump(data, handle, indent=2, sort_keys=True)
    handle.write("\n")
'''


@pytest.mark.parametrize('package, version', [('micropvs', '1.9.1-1'), ('micropvr', '1.10.0-1')])
def test_edited_package_version_is_refused(host, package, version):
    backup_id = take_backup(host, 'gate: to edit its manifest')
    host.check_output('python3 -c %s %s %s %s', EDIT, set_file(backup_id, 'manifest.json'), package, version)
    edited = manifest(host, backup_id)  # still valid JSON
    assert edited['packages'][package]['version'] == version
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id)
    assert rc != 0 and result.get('changed') is False, result
    assert 'the backup gate is closed' in result['msg']
    assert 'manifest.json was changed after the backup was taken (seal mismatch)' in result['msg'], result['msg']
    assert_unchanged(host, before)
