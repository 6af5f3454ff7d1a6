#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_restore
short_description: Restore MicroPVR packages, configuration and data from a backup set
version_added: 0.1.0
description:
  - Puts the host back into the state recorded in backup set O(backup_id) - the package versions,
    the configuration archive, the SQLite databases and the external databases - and starts the
    services again.
  - Verifies the set first (every checksum, SQLite integrity, dumps, package control fields) and
    refuses a damaged set before touching anything.
  - Compares the host with the set first; when packages, configuration files and database
    contents already match, it changes nothing.
  - "Order: stop O(services); install the saved C(.deb) files with C(dpkg -i) (downgrades allowed
    here, and only here) while a C(policy-rc.d) keeps maintainer scripts from starting daemons on
    data they do not understand; extract C(config.tar) with owners, modes and mtimes; put the
    SQLite copies back (stale journals removed); restore external databases; hold the packages;
    start the services."
  - Packages left half-installed or half-configured by an interrupted update are replaced by the
    saved ones like any other difference.
  - The saved C(.deb) files are used, never the apt sources, so a rollback works when the vendor
    repository no longer serves the old version or cannot be reached.
  - Files that exist now in the configuration trees but not in the set (for example C(*.dpkg-dist)
    left by an update) are reported in RV(extra_files) and left alone.
options:
  backup_id:
    description: The backup set to restore.
    type: str
    required: true
  backup_root:
    description: Directory that holds the backup sets.
    type: path
    default: /var/backups/micropvr
  services:
    description: Init scripts stopped before and started after the restore, in this order.
    type: list
    elements: str
    default: [micropvr, micropvs]
  hold:
    description: Hold the restored packages so that a routine C(apt upgrade) cannot move them.
    type: bool
    default: true
  state_dir:
    description: Directory of the host's lock.
    type: path
    default: /var/lib/microimpuls-micropvr
  lock_owner:
    description:
      - Run id that holds the host lock (M(microimpuls.micropvr.micropvr_lock)). The restore is then
        a step of that run, so that a run killed during the restore is recognised by the next one.
      - Without it, a host locked by any run is refused.
    type: str
attributes:
  check_mode:
    support: full
    details: Verifies the set and reports what differs; changes nothing.
  diff_mode:
    support: none
seealso:
  - module: microimpuls.micropvr.micropvr_backup
  - module: microimpuls.micropvr.micropvr_install
notes:
  - The connection settings in O(databases) are matched to the set's dumps by C(engine) and
    C(name); a dump without settings there is restored through the local socket as root.
extends_documentation_fragment:
  - microimpuls.micropvr.databases
author:
  - microimpuls.micropvr maintainers
'''

EXAMPLES = r'''
- name: Roll back to the pre-update set
  microimpuls.micropvr.micropvr_restore:
    backup_id: 20261126T221500Z
'''

RETURN = r'''
differences:
  description: What differed from the set before the restore (empty when nothing did).
  returned: always
  type: list
  elements: str
  sample: ["micropvr 1.10.0-1 installed, the set has 1.9.0-1", "/etc/micropvr/tasks.db: contents differ"]
from_versions:
  description: Package versions before the restore.
  returned: always
  type: dict
to_versions:
  description: Package versions of the set.
  returned: always
  type: dict
extra_files:
  description: Files in the configuration trees that the set does not have (left in place).
  returned: always
  type: list
  elements: str
'''

import os
import shutil
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import (
    DEFAULT_BACKUP_ROOT,
    DEFAULT_SERVICES,
    INIT_DIR,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    database_argument_spec,
    digest_differences,
    live_digests,
    restore,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import dpkg_audit, package_versions
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import (
    SIDE_FILES,
    belongs_to_database,
    describe,
)

POLICY_RC_D = '/usr/sbin/policy-rc.d'
# policy-rc.d's "action forbidden" answer: maintainer scripts may not start or stop daemons.
POLICY_DENY = '#!/bin/sh\n# Written by microimpuls.micropvr.micropvr_restore while it installs packages.\nexit 101\n'
MIB = 1024 * 1024


def config_differences(entries):
    """Paths whose content, type, owner or mode differ from the archived entries."""
    differ = []
    for entry in entries:
        path = entry['path']
        if not os.path.lexists(path):
            differ.append('%s: missing' % path)
            continue
        st = os.lstat(path)
        kind = entry.get('type')
        if kind == 'symlink':
            if not os.path.islink(path) or os.readlink(path) != entry.get('target'):
                differ.append('%s: symlink differs' % path)
            continue
        if (st.st_uid, st.st_gid, '%04o' % (st.st_mode & 0o7777)) != (entry['uid'], entry['gid'], entry['mode']):
            differ.append('%s: owner or mode differs' % path)
        elif kind == 'file':
            if not os.path.isfile(path) or os.path.islink(path) or st.st_size != entry['size'] \
                    or backupset.sha256_file(path) != entry['sha256']:
                differ.append('%s: content differs' % path)
            elif int(st.st_mtime) != entry['mtime']:
                differ.append('%s: mtime differs' % path)
    return differ


def extra_config_files(manifest):
    archived = set(entry['path'] for entry in manifest['config']['entries'])
    extra = []
    for top in manifest['config']['paths']:
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if path not in archived and not belongs_to_database(path, [s['source'] for s in manifest['sqlite']]):
                    extra.append(path)
    return sorted(extra)


def sqlite_differences(manifest):
    differ = []
    for saved in manifest['sqlite']:
        source = saved['source']
        if not os.path.isfile(source):
            differ.append('%s: missing' % source)
            continue
        try:
            live = describe(source)
        except Exception as exc:  # pylint: disable=broad-except
            differ.append('%s: unreadable (%s)' % (source, exc))
            continue
        if live['user_version'] != saved['user_version'] or live['tables'] != saved['tables']:
            differ.append('%s: contents differ' % source)
    return differ


def differences(module, manifest, installed):
    found = []
    for name, saved in sorted(manifest['packages'].items()):
        if installed[name]['version'] != saved['version'] or not installed[name]['installed']:
            found.append('%s %s installed, the set has %s' % (name, installed[name]['version'] or 'not',
                                                              saved['version']))
    found.extend(config_differences(manifest['config']['entries']))
    found.extend(sqlite_differences(manifest))
    work = tempfile.mkdtemp(prefix='micropvr-restore-')
    try:
        for saved in manifest.get('databases', []):
            label = '%s database %s' % (saved['engine'], saved['database'])
            # Sets from before content digests were recorded cannot be compared: restore them.
            if not saved.get('tables'):
                found.append('%s: no recorded contents, restored from its dump' % label)
                continue
            live = live_digests(module, database_settings(module, saved), work)
            found.extend('%s: %s' % (label, problem) for problem in digest_differences(saved['tables'], live))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return found


def run_service(module, name, action):
    script = os.path.join(INIT_DIR, name)
    if not os.access(script, os.X_OK):
        module.fail_json(msg='services: %s has no init script %s' % (name, script))
    rc, out, err = module.run_command([script, action])
    return rc, (out + err).strip()


class PolicyDeny(object):
    """A policy-rc.d that forbids maintainer scripts to start or stop daemons, while it lasts."""

    def __init__(self):
        self.saved = POLICY_RC_D + '.micropvr-saved'

    def __enter__(self):
        # A deny left by a restore that was killed is ours: replace it, do not "save" it.
        if os.path.lexists(POLICY_RC_D) and not self.is_ours():
            os.rename(POLICY_RC_D, self.saved)
        fd = os.open(POLICY_RC_D, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
        with os.fdopen(fd, 'w') as handle:
            handle.write(POLICY_DENY)
        return self

    @staticmethod
    def is_ours():
        try:
            with open(POLICY_RC_D) as handle:
                return handle.read() == POLICY_DENY
        except (IOError, OSError, UnicodeDecodeError):
            return False

    def __exit__(self, *exc):
        os.unlink(POLICY_RC_D)
        if os.path.lexists(self.saved):
            os.rename(self.saved, POLICY_RC_D)


def install_packages(module, set_dir, manifest, installed):
    changed = [name for name, saved in sorted(manifest['packages'].items())
               if installed[name]['version'] != saved['version'] or not installed[name]['installed']]
    if not changed:
        return
    module.run_command([module.get_bin_path('apt-mark', required=True), 'unhold'] + changed, check_rc=True)
    debs = [os.path.join(set_dir, manifest['packages'][name]['file']) for name in changed]
    rc, out, err = module.run_command([module.get_bin_path('dpkg', required=True), '--install',
                                       '--force-confdef', '--force-confold'] + debs,
                                      environ_update=dict(DEBIAN_FRONTEND='noninteractive'))
    if rc != 0:
        module.fail_json(msg='dpkg --install of the saved packages failed (rc=%d): %s'
                             % (rc, '\n'.join((err or out).strip().splitlines()[-8:])), dpkg_audit=dpkg_audit(module))


def restore_config(set_dir, manifest):
    with tarfile.open(os.path.join(set_dir, manifest['config']['archive'])) as archive:
        members = archive.getmembers()
        for member in members:
            target = '/' + member.name
            # tarfile does not replace a file by a symlink or a directory by a file; make room.
            if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)):
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
        kwargs = {}
        if hasattr(tarfile, 'fully_trusted_filter'):
            # Owners, modes and absolute-looking paths are exactly what must come back.
            kwargs['filter'] = 'fully_trusted'
        archive.extractall(path='/', members=members, numeric_owner=True, **kwargs)


def restore_sqlite(set_dir, manifest):
    for saved in manifest['sqlite']:
        source = saved['source']
        directory = os.path.dirname(source)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.restore-' % os.path.basename(source))
        try:
            with os.fdopen(fd, 'wb') as out, open(os.path.join(set_dir, saved['file']), 'rb') as copy:
                shutil.copyfileobj(copy, out, MIB)
                out.flush()
                os.fsync(out.fileno())
            if 'mode' in saved:
                os.chown(tmp, saved['uid'], saved['gid'])
                os.chmod(tmp, int(saved['mode'], 8))
            elif os.path.exists(source):
                st = os.stat(source)
                os.chown(tmp, st.st_uid, st.st_gid)
                os.chmod(tmp, st.st_mode & 0o7777)
            # A journal left by the version being rolled back would be replayed into the copy.
            for side in SIDE_FILES:
                if os.path.lexists(source + side):
                    os.unlink(source + side)
            os.rename(tmp, source)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def database_settings(module, saved):
    """Connection settings for a database of the set: from O(databases), else the local socket."""
    for db in module.params['databases']:
        if (db['engine'], db['name']) == (saved['engine'], saved['database']):
            return db
    return dict(engine=saved['engine'], name=saved['database'])


def restore_databases(module, set_dir, manifest):
    """Restore every external database, then check its rows against the set's digests."""
    work = tempfile.mkdtemp(prefix='micropvr-restore-')
    try:
        for saved in manifest.get('databases', []):
            db = database_settings(module, saved)
            restore(module, db, os.path.join(set_dir, saved['file']), work)
            if saved.get('tables'):
                problems = digest_differences(saved['tables'], live_digests(module, db, work))
                if problems:
                    module.fail_json(msg='%s database %s was restored but does not match the backup set: %s'
                                         % (saved['engine'], saved['database'], '; '.join(problems)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def restore_everything(module, set_dir, manifest, installed, result):
    """Stop the services, put back packages, configuration and data, start the services."""
    params = module.params
    for name in params['services']:
        rc, output = run_service(module, name, 'stop')
        if rc != 0:
            module.fail_json(msg='could not stop %s before the restore (rc=%d): %s' % (name, rc, output), **result)
    with PolicyDeny():
        install_packages(module, set_dir, manifest, installed)
    restore_config(set_dir, manifest)
    restore_sqlite(set_dir, manifest)
    restore_databases(module, set_dir, manifest)
    if params['hold']:
        module.run_command([module.get_bin_path('apt-mark', required=True), 'hold'] + sorted(manifest['packages']),
                           check_rc=True)
    for name in params['services']:
        rc, output = run_service(module, name, 'start')
        if rc != 0:
            module.fail_json(msg='restored backup set %s, but %s does not start (rc=%d): %s'
                                 % (params['backup_id'], name, rc, output), **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_id=dict(type='str', required=True),
            backup_root=dict(type='path', default=DEFAULT_BACKUP_ROOT),
            services=dict(type='list', elements='str', default=list(DEFAULT_SERVICES)),
            databases=dict(type='list', elements='dict', default=[], options=database_argument_spec()),
            hold=dict(type='bool', default=True),
            state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
            lock_owner=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    os.umask(0o077)
    try:
        set_dir = backupset.set_path(params['backup_root'], params['backup_id'])
    except backupset.BackupSetError as exc:
        module.fail_json(msg='micropvr_backup_id: %s' % exc)
    if not os.path.isdir(set_dir):
        ids, dummy = backupset.list_set_dirs(params['backup_root'])
        module.fail_json(msg='micropvr_backup_id: no backup set %s in %s (sets there: %s)'
                             % (params['backup_id'], params['backup_root'], ', '.join(ids) or 'none'))
    manifest, problems = backupset.verify_set(module, set_dir, params['backup_id'])
    if problems:
        module.fail_json(msg='refusing to restore from backup set %s: it does not verify, nothing was changed: %s'
                             % (params['backup_id'], '; '.join(problems)), problems=problems)

    installed = package_versions(module, sorted(manifest['packages']))
    result = dict(
        from_versions=dict((n, i['version']) for n, i in installed.items()),
        to_versions=dict((n, p['version']) for n, p in manifest['packages'].items()),
        differences=differences(module, manifest, installed),
        extra_files=extra_config_files(manifest),
    )
    if not result['differences'] or module.check_mode:
        module.exit_json(changed=bool(result['differences']), **result)

    try:
        with hoststate.step(params['state_dir'], params['lock_owner'], 'restore', backup_id=params['backup_id']):
            restore_everything(module, set_dir, manifest, installed, result)
    except hoststate.LockError as exc:
        module.fail_json(msg='refusing to restore backup set %s: %s' % (params['backup_id'], exc), **result)
    module.exit_json(changed=True, **result)


if __name__ == '__main__':
    main()
