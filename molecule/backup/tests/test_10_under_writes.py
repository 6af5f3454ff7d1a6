"""A backup taken while the daemon keeps writing: complete, consistent, verified, root-only."""

import time

import pytest

from micropvr_testlib import BACKUP_ROOT, backup_ids, manifest, run_playbook

WRITER_LOG = '/run/standin-writer.log'
STOP_FILE = '/run/standin-writer.stop'


def _writes(host):
    lines = host.file(WRITER_LOG).content_string.splitlines()
    return [(float(line.split()[0]), line.split()[1]) for line in lines]


@pytest.fixture(scope='module')
def backup(host):
    host.run('rm -f %s %s' % (WRITER_LOG, STOP_FILE))
    host.check_output('setsid nohup /usr/local/bin/standin-writer --log %s --stop-file %s '
                      '>/dev/null 2>&1 < /dev/null &' % (WRITER_LOG, STOP_FILE))
    deadline = time.time() + 30
    while time.time() < deadline and (not host.file(WRITER_LOG).exists or len(_writes(host)) < 50):
        time.sleep(0.5)
    before = set(backup_ids(host))
    started = float(host.check_output('date +%s.%N'))
    result = run_playbook(host, 'backup.yml', micropvr_backup_reason='molecule under writes')
    finished = float(host.check_output('date +%s.%N'))
    time.sleep(1)
    host.check_output('touch %s' % STOP_FILE)
    time.sleep(1)
    new = sorted(set(backup_ids(host)) - before)
    return dict(result=result, started=started, finished=finished, new=new, writes=_writes(host))


def test_playbook_succeeds_with_one_new_set(backup):
    assert backup['result'].returncode == 0, backup['result'].output
    assert len(backup['new']) == 1
    assert 'Backup set %s' % backup['new'][0] in backup['result'].output


def test_daemon_kept_writing_during_the_backup(backup):
    writes = backup['writes']
    assert not [w for w in writes if w[1] != 'ok'], 'the writer saw errors'
    during = [t for t, status in writes if backup['started'] < t < backup['finished']]
    after = [t for t, status in writes if t > backup['finished']]
    assert len(during) >= 5 and after


def test_manifest_describes_the_set(host, backup):
    data = manifest(host, backup['new'][0])
    assert data['format_version'] == 2
    # Sealed with the host's key, not an unkeyed checksum anyone could recompute.
    assert data['seal']['algorithm'] == 'hmac-sha256' and 'manifest_sha256' not in data
    assert data['backup_id'] == backup['new'][0]
    assert data['reason'] == 'molecule under writes'
    assert data['host'] == host.check_output('hostname -f')
    assert data['created_at'].endswith('Z') and data['verified_at']
    assert {name: p['version'] for name, p in data['packages'].items()} == \
        {'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}
    paths = sorted(f['path'] for f in data['files'])
    assert paths == ['config.tar', 'packages/micropvr_1.9.0-1_amd64.deb', 'packages/micropvs_1.9.0-1_amd64.deb',
                     'sqlite/records.db', 'sqlite/tasks.db']


def test_every_checksum_verifies(host, backup):
    set_dir = '%s/%s' % (BACKUP_ROOT, backup['new'][0])
    for entry in manifest(host, backup['new'][0])['files']:
        path = '%s/%s' % (set_dir, entry['path'])
        assert host.check_output('sha256sum %s' % path).split()[0] == entry['sha256'], entry['path']
        assert host.file(path).size == entry['size']


def test_config_archive_keeps_owner_mode_mtime(host, backup):
    set_dir = '%s/%s' % (BACKUP_ROOT, backup['new'][0])
    listing = host.check_output('tar -tf %s/config.tar' % set_dir).split()
    for wanted in ('etc/micropvr/micropvr.conf', 'usr/local/nginx-micropvr/conf/nginx.conf',
                   'etc/init.d/micropvr', 'etc/init.d/micropvs'):
        assert wanted in listing
    assert not [name for name in listing if name.endswith('.db') or name.endswith('-journal')]
    entries = {e['path']: e for e in manifest(host, backup['new'][0])['config']['entries']}
    for path in ('/etc/micropvr/micropvr.conf', '/etc/init.d/micropvr', '/usr/local/nginx-micropvr/conf/nginx.conf'):
        original = host.file(path)
        assert entries[path]['mode'] == '%04o' % original.mode
        assert entries[path]['uid'] == original.uid and entries[path]['gid'] == original.gid
        assert entries[path]['mtime'] == int(original.mtime.timestamp())
        archived = host.check_output("tar -xOf %s/config.tar %s | sha256sum" % (set_dir, path.lstrip('/')))
        assert archived.split()[0] == host.check_output('sha256sum %s' % path).split()[0]


def test_sqlite_copies_are_one_consistent_snapshot(host, backup):
    set_dir = '%s/%s' % (BACKUP_ROOT, backup['new'][0])
    for name in ('records.db', 'tasks.db'):
        assert host.check_output('sqlite3 %s/sqlite/%s "PRAGMA integrity_check"' % (set_dir, name)) == 'ok'
    # Every create_new_task writes a task and its record in one transaction across
    # both databases: a consistent snapshot has each task's record and no other.
    tasks = host.check_output('sqlite3 %s/sqlite/tasks.db "SELECT id FROM tasks ORDER BY id"' % set_dir).split()
    records = host.check_output(
        'sqlite3 %s/sqlite/records.db "SELECT task_id FROM records ORDER BY task_id"' % set_dir).split()
    assert tasks and tasks == records
    live = int(host.check_output('sqlite3 /etc/micropvr/tasks.db "SELECT count(*) FROM tasks"'))
    assert live > len(tasks), 'the writer kept writing after the snapshot'
    info = {s['file']: s for s in manifest(host, backup['new'][0])['sqlite']}
    # No per-table digests at backup time: a rollback that compares takes them of the copy.
    assert 'tables' not in info['sqlite/tasks.db'] and 'tables' not in info['sqlite/records.db']
    assert info['sqlite/tasks.db']['user_version'] == 1
    assert manifest(host, backup['new'][0])['sqlite_check'] == 'quick'


@pytest.mark.parametrize('package', ['micropvr', 'micropvs'])
def test_saved_deb_is_the_installed_version(host, backup, package):
    deb = '%s/%s/packages/%s_1.9.0-1_amd64.deb' % (BACKUP_ROOT, backup['new'][0], package)
    assert host.check_output('dpkg-deb -f %s Package Version' % deb).split() == \
        ['Package:', package, 'Version:', '1.9.0-1']


def test_set_is_root_only(host, backup):
    assert host.file(BACKUP_ROOT).mode == 0o700
    set_dir = '%s/%s' % (BACKUP_ROOT, backup['new'][0])
    dirs = host.check_output('find %s -type d -printf "%%m %%u %%g\\n" | sort -u' % set_dir)
    files = host.check_output('find %s -type f -printf "%%m %%u %%g\\n" | sort -u' % set_dir)
    assert dirs == '700 root root'
    assert files == '600 root root'


def test_no_incomplete_directory_left(host, backup):
    assert host.check_output('ls -A %s' % BACKUP_ROOT).count('.incomplete') == 0
