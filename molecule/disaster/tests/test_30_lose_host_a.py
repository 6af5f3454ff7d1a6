"""What A was, written down for the comparisons with B; then A is gone for good."""

import json
import subprocess

from disasterlib import (
    A, STATE_FILE, backup_ids, config_files, external_rows, manifest, set_sqlite_dumps, snapshots, versions)


def test_record_a_then_remove_it(host_a, host_b):
    newest = backup_ids(host_a)[-1]
    data = manifest(host_a, newest)
    assert newest in [s['tag_values']['set'] for s in snapshots(host_a)], 'the newest set is not off-host'
    state = dict(
        fqdn=data['host'],
        backup_id=newest,
        pre_update=[i for i in backup_ids(host_a) if manifest(host_a, i)['reason'] == 'pre-update to 1.10.0-1'][-1],
        versions=versions(host_a),
        sqlite=set_sqlite_dumps(host_a, '/var/backups/micropvr/%s' % newest),
        rows=external_rows(host_a),
        config=config_files(host_a),
    )
    assert 'lost-host-only' in state['rows']['postgresql'] and 'lost-host-only' in state['rows']['mysql']
    with open(STATE_FILE, 'w') as handle:
        json.dump(state, handle)
    subprocess.run(['docker', 'rm', '-f', A], check=True, capture_output=True)
    assert subprocess.run(['docker', 'inspect', A], capture_output=True).returncode != 0
    assert host_b.run('getent hosts %s' % A).rc != 0, 'A still answers on the network'
