"""micropvr_backup_fetch copies the set to the controller and verifies it there."""

import hashlib
import json
import os
import stat

from micropvr_testlib import run_playbook


def test_fetched_set_matches_manifest(host, tmp_path):
    result = run_playbook(host, 'backup.yml', micropvr_backup_fetch=True, micropvr_backup_fetch_dir=str(tmp_path))
    assert result.returncode == 0, result.output
    host_dir = tmp_path / host.backend.get_hostname()
    (set_dir,) = list(host_dir.iterdir())
    data = json.loads((set_dir / 'manifest.json').read_text())
    assert data['backup_id'] == set_dir.name
    for entry in data['files']:
        local = set_dir / entry['path']
        assert hashlib.sha256(local.read_bytes()).hexdigest() == entry['sha256']
        assert stat.S_IMODE(os.stat(local).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(set_dir).st_mode) == 0o700
    assert 'copied to %s and verified there' % set_dir in result.output
