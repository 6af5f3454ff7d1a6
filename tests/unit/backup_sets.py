"""Real, small backup sets on disk for unit tests: format 2, sealed with a test key.

``make_set`` writes what micropvr_backup writes: a real ``config.tar`` (tarfile, from a small
configuration tree), a real SQLite copy, fake ``.deb`` files, a MariaDB dump, and a manifest that
passes ``confine.manifest_problems`` and is sealed with ``KEYS`` (or the keys given).
``reseal`` / ``reseal_unkeyed`` / ``write_raw`` change a manifest on disk the way an attacker
with, or without, the key would.
"""

import binascii
import hashlib
import json
import os
import sqlite3
import tarfile

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils.backupset import (
    FORMAT_VERSION,
    MANIFEST,
    SealKeys,
    file_entry,
    load_manifest,
    write_manifest,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import describe
from ansible_collections.microimpuls.micropvr.plugins.module_utils.takeset import _tar_entries

TEST_KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
TEST_KEY_HEX = binascii.hexlify(TEST_KEY).decode('ascii')
OTHER_KEY_HEX = binascii.hexlify(OTHER_KEY).decode('ascii')
KEYS = SealKeys(TEST_KEY)
OTHER_KEYS = SealKeys(OTHER_KEY)

# name -> (version, file in the set)
PACKAGES = {
    'micropvr': ('1.9.0-1', 'packages/micropvr_1.9.0-1_amd64.deb'),
    'micropvs': ('1:2.0-1', 'packages/micropvs_1%3a2.0-1_amd64.deb'),
}
# What dpkg-deb --field says about each of them (see DebModule in the tests).
DEB_FIELDS = dict((os.path.basename(path), dict(Package=name, Version=version, Architecture='amd64'))
                  for name, (version, path) in PACKAGES.items())
MYSQL_DUMP = b'CREATE TABLE x (id int);\n-- Dump completed on 2026-11-26 22:15:03\n'
SQLITE_FILE = 'sqlite/records.db'
DUMP_FILE = 'databases/mysql-mw.sql'


def config_tree(host_dir):
    """``<host_dir>/etc/micropvr``: a configuration directory with a file, a subdirectory and a
    relative symbolic link inside it (made once; every set of a root saves the same tree)."""
    top = os.path.join(str(host_dir), 'etc', 'micropvr')
    if not os.path.isdir(top):
        os.makedirs(os.path.join(top, 'conf.d'))
        with open(os.path.join(top, 'micropvr.conf'), 'w') as handle:
            handle.write('{"records-db-path": "%s"}\n' % os.path.join(top, 'records.db'))
        os.chmod(os.path.join(top, 'micropvr.conf'), 0o640)
        with open(os.path.join(top, 'conf.d', 'local.json'), 'w') as handle:
            handle.write('{"port": 8080}\n')
        os.symlink('micropvr.conf', os.path.join(top, 'current.conf'))
    return top


def tar_entries(path):
    """The manifest's config.entries for the archive at ``path``: micropvr_backup's own record."""
    return _tar_entries(str(path))


def _write(path, content):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as handle:
        handle.write(content)


def make_set(root, backup_id, keys=KEYS, pinned=False, verified=True, reason='manual', manifest_id=None,
             packages=True, databases=True, host_dir=None):
    """Write the complete set ``<root>/<backup_id>`` and seal its manifest; (directory, manifest).

    The configuration tree it archives lives in ``host_dir`` (default ``<root>/.host``, a name
    that is no set and no incomplete set). ``packages=False`` leaves out the .deb files (then no
    dpkg-deb is needed to verify it), ``databases=False`` the MariaDB dump.
    """
    root = str(root)
    directory = os.path.join(root, backup_id)
    os.makedirs(directory)
    top = config_tree(host_dir if host_dir is not None else os.path.join(root, '.host'))
    files = []

    archive = os.path.join(directory, 'config.tar')
    with tarfile.open(archive, 'w', format=tarfile.PAX_FORMAT) as tar:
        tar.add(top, arcname=top.lstrip('/'), recursive=True)
    files.append(file_entry(directory, 'config.tar', 'config'))

    os.makedirs(os.path.join(directory, 'sqlite'))
    conn = sqlite3.connect(os.path.join(directory, SQLITE_FILE))
    conn.execute('CREATE TABLE records (id INTEGER PRIMARY KEY, name TEXT)')
    conn.executemany('INSERT INTO records (name) VALUES (?)', [('r%d' % i,) for i in range(20)])
    conn.commit()
    conn.close()
    # As micropvr_backup records it: the schema version, no digests (a restore takes them).
    sqlite_info = dict(user_version=describe(os.path.join(directory, SQLITE_FILE))['user_version'],
                       source=os.path.join(top, 'records.db'))
    sqlite_info.update(file=SQLITE_FILE, journal_mode='delete', mode='0640', uid=0, gid=0)
    files.append(file_entry(directory, SQLITE_FILE, 'sqlite', source=sqlite_info['source']))

    package_info = {}
    if packages:
        for name, (version, relpath) in sorted(PACKAGES.items()):
            _write(os.path.join(directory, relpath), b'!<arch>\npretend deb of ' + name.encode() + b'\n')
            package_info[name] = dict(version=version, architecture='amd64', file=relpath, source='apt-cache')
            files.append(file_entry(directory, relpath, 'package', package=name, version=version,
                                    architecture='amd64'))

    database_info = []
    if databases:
        _write(os.path.join(directory, DUMP_FILE), MYSQL_DUMP)
        database_info.append(dict(engine='mysql', database='mw', file=DUMP_FILE, format='sql', tables={}))
        files.append(file_entry(directory, DUMP_FILE, 'database', format='sql'))

    manifest = dict(
        format_version=FORMAT_VERSION,
        backup_id=manifest_id or backup_id,
        created_at='2026-11-26T22:15:00Z',
        host='pvr1.example.net',
        reason=reason,
        pinned=pinned,
        packages=package_info,
        services=dict(micropvr='running'),
        config=dict(archive='config.tar', paths=[top], entries=tar_entries(archive)),
        sqlite=[sqlite_info],
        databases=database_info,
        files=files,
        verified_at='2026-11-26T22:15:07Z' if verified else None,
    )
    problems = confine.manifest_problems(manifest)
    assert problems == [], problems
    write_manifest(directory, manifest, keys)
    return directory, manifest


def write_raw(directory, manifest):
    """Write ``manifest`` as manifest.json exactly as given (no seal added or changed)."""
    with open(os.path.join(str(directory), MANIFEST), 'w') as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)


def reseal(directory, edit, keys=KEYS):
    """Load the manifest, ``edit(manifest)``, seal it with ``keys`` and write it; the manifest."""
    manifest = load_manifest(str(directory))
    edit(manifest)
    write_manifest(str(directory), manifest, keys)
    return manifest


def unkeyed_seal(manifest):
    """The seal of format 1 (before keyed seals): a sha256 anyone can recompute."""
    manifest.pop('seal', None)
    body = dict((k, v) for k, v in manifest.items() if k != 'manifest_sha256')
    manifest['manifest_sha256'] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(',', ':')).encode('utf-8')).hexdigest()
    return manifest


def reseal_unkeyed(directory, edit):
    """Edit the manifest and seal it the old way, as anyone who can write the backup root can."""
    manifest = load_manifest(str(directory))
    edit(manifest)
    unkeyed_seal(manifest)
    write_raw(directory, manifest)
    return manifest


def count_verifications(monkeypatch):
    """Count every full verification of a set (backupset.verify_set), by its SQLite check level;
    the list of levels, which grows as the code under test reads sets."""
    calls = []
    real = backupset.verify_set

    def counting(module, directory, backup_id, keys, sqlite_check='full', **kwargs):
        calls.append(sqlite_check)
        return real(module, directory, backup_id, keys, sqlite_check=sqlite_check, **kwargs)

    monkeypatch.setattr(backupset, 'verify_set', counting)
    return calls


def count_calls(monkeypatch, owner, name):
    """The first argument of every call of ``owner.name`` (say each path backupset.sha256_file
    reads), in a list that grows as the code under test calls it."""
    calls = []
    real = getattr(owner, name)

    def counting(first, *args, **kwargs):
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
