#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_offsite
short_description: Keep off-host copies of MicroPVR backup sets in a restic repository
version_added: 0.1.0
description:
  - Sends backup sets to a restic repository, verifies the copies, lists them, fetches a set back
    (also onto another host, for disaster recovery) and prunes the repository.
  - Each set is one snapshot of its directory, tagged C(micropvr), C(host=<host>), C(set=<id>),
    C(reason=<reason>) and C(versions=<name>=<version>;...) (values percent-encoded, since restic
    splits tags on commas), with restic's C(--host) set to the host. The manifest, with its seal,
    travels inside the snapshot.
  - restic encrypts, deduplicates and checks the repository; a second, nearly identical set
    adds little to it.
options:
  state:
    description:
      - C(sent) sends set O(backup_id) from O(backup_root), once it verifies locally. A set that
        already has a snapshot of this host in the repository is left as it is (not changed).
      - C(verified) runs C(restic check) reading O(read_data_subset) of the data, restores the
        set's C(manifest.json) from its snapshot and compares it byte for byte with the local one
        (with no local set, checks the restored manifest's seal instead). Reports RV(offsite_status);
        fails only when the repository cannot be used at all.
      - C(listed) lists the snapshots of sets of O(host) (of every host when O(host) is not given).
      - C(fetched) restores a set of O(host) - O(backup_id), or the newest - into O(backup_root),
        through a C(.incomplete-) directory, and keeps it only when restic read it fully and it
        verifies, its seal included (a set of another host needs that host's key in
        O(trusted_seal_keys) or as O(seal_key)). A set already there that verifies is not changed.
      - C(pruned) runs C(restic forget --prune) on the sets of O(host) with O(keep_last),
        O(keep_daily) and O(keep_monthly). Never removes set O(backup_id), the pre-update set of
        this host's last successful update (from its history in O(state_dir)), nor a snapshot an
        operator tagged C(micropvr-protected).
    type: str
    required: true
    choices: [sent, verified, listed, fetched, pruned]
  backup_id:
    description:
      - The set, C(YYYYMMDDTHHMMSSZ). Required for O(state=sent) and O(state=verified); for
        O(state=fetched) the newest set of O(host) when not given; for O(state=pruned) the set
        that is kept whatever the policy says.
    type: str
  host:
    description:
      - The host whose sets are meant (restic's C(--host) and the C(host=) tag).
      - Defaults to the host name in the set's manifest for O(state=sent) and to this host's
        fully qualified name otherwise. Required for O(state=fetched), where it names the original
        host (a new host recovers the sets of the one it replaces).
    type: str
  init:
    description: With O(state=sent), create the repository when it does not exist yet.
    type: bool
    default: false
  read_data_subset:
    description:
      - How much of the repository's data C(restic check) reads with O(state=verified) -
        C(n/t) (for example C(1/10)), a percentage (C(10%)) or a size (C(500M)). The structure
        is always checked in full.
    type: str
    default: 10%
  keep_last:
    description: With O(state=pruned), keep the newest this many sets of the host (at least 1).
    type: int
    default: 10
  keep_daily:
    description: With O(state=pruned), keep the newest set of each of this many days (0 - no such rule).
    type: int
    default: 0
  keep_monthly:
    description: With O(state=pruned), keep the newest set of each of this many months (0 - no such rule).
    type: int
    default: 12
attributes:
  check_mode:
    support: full
    details: C(verified) and C(listed) read the repository in check mode too; C(sent), C(fetched) and
      C(pruned) only say what they would do (C(pruned) through C(restic forget --dry-run)).
  diff_mode:
    support: none
  platform:
    platforms: debian
seealso:
  - module: microimpuls.micropvr.micropvr_backup
  - module: microimpuls.micropvr.micropvr_backup_info
  - name: restic documentation
    description: Repositories, backends and their environment variables.
    link: https://restic.readthedocs.io/
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.restic
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.seal
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Send the set just taken to the off-host repository
  microimpuls.micropvr.micropvr_offsite:
    state: sent
    backup_id: "{{ backup.backup_id }}"
    repository: sftp:backup@vault.example.net:/srv/restic/micropvr
    password: "{{ vault_micropvr_restic_password }}"
    init: true
  register: sent

- name: Verify the off-host copy
  microimpuls.micropvr.micropvr_offsite:
    state: verified
    backup_id: "{{ sent.snapshot.backup_id }}"
    repository: sftp:backup@vault.example.net:/srv/restic/micropvr
    password: "{{ vault_micropvr_restic_password }}"
    read_data_subset: 5%
  register: offsite
  failed_when: offsite.offsite_status != 'verified'

- name: List the sets of the lost host in an S3 repository
  microimpuls.micropvr.micropvr_offsite:
    state: listed
    host: pvr1.example.net
    repository: s3:s3.eu-central-1.amazonaws.com/micropvr-backups
    password_file: /root/.restic-password
    backend_env:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key_id }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
  register: remote

- name: Fetch the newest set of the lost host onto its replacement
  microimpuls.micropvr.micropvr_offsite:
    state: fetched
    host: pvr1.example.net
    repository: s3:s3.eu-central-1.amazonaws.com/micropvr-backups
    password_file: /root/.restic-password
    backend_env:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key_id }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
    trusted_seal_keys:
      - "{{ vault_micropvr_seal_keys['pvr1.example.net'] }}"
  register: fetched

- name: Show what was fetched
  ansible.builtin.debug:
    msg: "{{ fetched.backup_id }} ({{ fetched.snapshot.reason }}) is in {{ fetched.path }}"

- name: Prune the repository, keeping the set of the last update
  microimpuls.micropvr.micropvr_offsite:
    state: pruned
    backup_id: "{{ last_update_backup_id }}"
    keep_last: 6
    keep_monthly: 12
    repository: sftp:backup@vault.example.net:/srv/restic/micropvr
    password: "{{ vault_micropvr_restic_password }}"
  register: pruned
'''

RETURN = r'''
repository:
  description: The repository, any password in its URL masked.
  returned: always
  type: str
  sample: sftp:backup@vault.example.net:/srv/restic/micropvr
initialized:
  description: Whether the repository was created by this run (O(init=true)).
  returned: always
  type: bool
  sample: false
snapshot:
  description: The snapshot of the set sent, verified or fetched.
  returned: when O(state) is C(sent), C(verified) or C(fetched) and the snapshot exists (C(sent) in check mode - only when it exists already)
  type: dict
  contains:
    id:
      description: Snapshot id.
      type: str
      sample: 4493564fcc4e6f276a5b9c0ec4e6e03f1799cd17232dc0dc2a2e95a3a913175a
    short_id:
      description: Its first 8 hex digits, as restic shows it.
      type: str
      sample: 4493564f
    backup_id:
      description: The set's id (tag C(set=)).
      type: str
      sample: 20261126T221500Z
    host:
      description: The host the set belongs to (tag C(host=)).
      type: str
      sample: pvr1.example.net
    reason:
      description: Why the set was taken.
      type: str
      sample: pre-update to 1.10.0-1
    versions:
      description: Package versions saved in the set.
      type: dict
      sample: {micropvr: 1.9.0-1, micropvs: 1.9.0-1}
    protected:
      description: Whether an operator tagged it C(micropvr-protected).
      type: bool
      sample: false
    time:
      description: When the snapshot was taken.
      type: str
      sample: '2026-11-26T22:15:09.123456789Z'
    hostname:
      description: restic's host field of the snapshot.
      type: str
      sample: pvr1.example.net
    tags:
      description: All tags of the snapshot, as stored.
      type: list
      elements: str
      sample: [micropvr, host=pvr1.example.net, set=20261126T221500Z, reason=manual, versions=micropvr=1.9.0-1]
snapshots:
  description: With O(state=listed), the sets in the repository, newest first (each as RV(snapshot)).
  returned: when O(state=listed)
  type: list
  elements: dict
  sample: [{id: 4493564fcc4e6f27..., short_id: 4493564f, backup_id: 20261126T221500Z, host: pvr1.example.net,
            reason: manual, versions: {micropvr: 1.9.0-1}, protected: false, time: '2026-11-26T22:15:09Z'}]
offsite_status:
  description:
    - With O(state=verified) - C(verified) (restic check found nothing and the manifest restored from
      the repository is the local one), C(missing) (no snapshot of the set), C(damaged) (restic check
      reports errors or the manifest cannot be restored) or C(differs) (the restored manifest is not
      the local one, or its seal does not verify).
  returned: when O(state=verified)
  type: str
  sample: verified
problems:
  description: What C(restic check), the restore or the comparison found (O(state=verified)).
  returned: when O(state=verified)
  type: list
  elements: str
  sample: ["pack 0ee0ec63...: does not exist"]
backup_id:
  description: The set fetched (O(state=fetched)).
  returned: when O(state=fetched)
  type: str
  sample: 20261126T221500Z
path:
  description: Directory of the set fetched.
  returned: when O(state=fetched)
  type: str
  sample: /var/backups/micropvr/20261126T221500Z
removed:
  description: With O(state=pruned), the snapshots removed (in check mode - that would be removed).
  returned: when O(state=pruned)
  type: list
  elements: dict
  sample: [{short_id: 9f9209a0, backup_id: 20261020T030000Z, host: pvr1.example.net}]
protected:
  description: With O(state=pruned), the sets kept whatever the policy says - O(backup_id) and the pre-update set
    of this host's last successful update.
  returned: when O(state=pruned)
  type: list
  elements: str
  sample: [20261126T221500Z]
kept:
  description: With O(state=pruned), the snapshots the policy keeps.
  returned: when O(state=pruned)
  type: list
  elements: dict
  sample: [{short_id: 911f91d7, backup_id: 20261126T221500Z, host: pvr1.example.net}]
'''

import os
import shutil
import socket
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils import restic
from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import DEFAULT_BACKUP_ROOT

STATES = ('sent', 'verified', 'listed', 'fetched', 'pruned')
CACHE_DIR = 'restic-cache'


class Offsite(object):
    """One run of the module: the options checked, a private work directory and the repository."""

    def __init__(self, module, work):
        self.module = module
        self.params = module.params
        self.root = self.params['backup_root']
        self.result = dict(changed=False, initialized=False, repository=restic.redact(self.params['repository']))
        binary = module.get_bin_path('restic')
        if not binary:
            module.fail_json(msg='restic is not installed on this host (Debian package restic)', **self.result)
        cache = os.path.join(self.params['state_dir'], CACHE_DIR)
        try:
            safepath.ensure_private_dir(cache, 'state_dir')
            self.repo = restic.Restic(self.run_command, binary, self.params['repository'], work,
                                      password=self.params['password'], password_file=self.params['password_file'],
                                      backend_env=self.params['backend_env'], cache_dir=cache)
        except (restic.ResticError, safepath.UnsafePathError) as exc:
            module.fail_json(msg=str(exc), **self.result)
        self.work = work

    def run_command(self, argv, env, cwd):
        return self.module.run_command(argv, environ_update=env, cwd=cwd)

    def fail(self, msg, **extra):
        result = dict(self.result)
        result.update(extra)
        self.module.fail_json(msg=msg, **result)

    def keys(self):
        return backupset.module_seal_keys(self.module)

    def host(self, manifest=None):
        if self.params['host']:
            return self.params['host']
        if manifest is not None and isinstance(manifest.get('host'), str) and manifest['host']:
            return manifest['host']
        return socket.getfqdn()

    def backup_id(self):
        if self.params['backup_id'] is None:
            return None
        try:
            return backupset.validate_backup_id(self.params['backup_id'])
        except backupset.BackupSetError as exc:
            self.fail('backup_id: %s' % exc)

    def find(self, host, backup_id):
        """The newest snapshot of set ``backup_id`` of ``host`` (or the newest set), or None."""
        found = self.repo.set_snapshots(host, backup_id)
        # Newest by the set's own id (its creation time), then by when it was sent.
        found.sort(key=lambda s: (backupset.backup_id_sort_key(s['backup_id'] or ''), s['time'] or ''))
        return found[-1] if found else None

    # --- states -------------------------------------------------------------------------------

    def sent(self):
        backup_id = self.backup_id()
        directory = os.path.join(self.root, backup_id)
        if not os.path.isdir(directory) or os.path.islink(directory):
            self.fail('backup_id: no backup set %s in %s' % (backup_id, self.root))
        keys = self.keys()
        # The SQLite copies passed their check when the set was taken; the sealed sha256 proves
        # these are the same bytes (a set fetched back is checked in full, see fetched()).
        manifest, problems, status = backupset.verify_set(self.module, directory, backup_id, keys,
                                                          sqlite_check='checksum')
        if problems:
            self.fail('set %s is %s, so it is not sent: %s' % (backup_id, status, '; '.join(problems)))
        host = self.host(manifest)
        try:
            existing = self.find(host, backup_id)
        except restic.ResticError as exc:
            if exc.kind != restic.ERROR_MISSING or not self.params['init']:
                raise
            existing = None
            self.result.update(changed=True, initialized=True)
            if not self.module.check_mode:
                self.repo.init()
        if existing is not None:
            self.result['snapshot'] = existing
            return
        self.result['changed'] = True
        if self.module.check_mode:
            return
        versions = dict((name, info.get('version')) for name, info in (manifest.get('packages') or {}).items())
        tags = restic.set_tags(host, backup_id, manifest.get('reason'), versions)
        snapshot_id = self.repo.backup(self.root, backup_id, host, tags)
        # restic 0.14 prints the short id in its summary.
        sent = [s for s in self.repo.set_snapshots(host, backup_id) if s['id'].startswith(snapshot_id)]
        self.result['snapshot'] = sent[0] if sent else dict(id=snapshot_id, short_id=snapshot_id[:8],
                                                            backup_id=backup_id, host=host)

    def verified(self):
        backup_id = self.backup_id()
        host = self.host(self._local_manifest(backup_id))
        snapshot = self.find(host, backup_id)
        self.result.update(problems=[])
        if snapshot is None:
            self.result.update(offsite_status='missing',
                               problems=['no snapshot of set %s of host %s in the repository' % (backup_id, host)])
            return
        self.result['snapshot'] = snapshot
        problems = self.repo.check(self.params['read_data_subset'])
        target = tempfile.mkdtemp(prefix='manifest-', dir=self.work)
        try:
            self.repo.restore(snapshot['id'], target, include='/%s/%s' % (backup_id, backupset.MANIFEST))
        except restic.ResticError as exc:
            if exc.kind != restic.ERROR_DAMAGED:
                raise
            problems.append(str(exc))
        if problems:
            self.result.update(offsite_status='damaged', problems=problems)
            return
        self.result.update(offsite_status='verified')
        self._compare_manifest(os.path.join(target, backup_id), backup_id)

    def _local_manifest(self, backup_id):
        try:
            return backupset.load_manifest(os.path.join(self.root, backup_id))
        except backupset.BackupSetError:
            return None

    def _compare_manifest(self, restored_dir, backup_id):
        restored = os.path.join(restored_dir, backupset.MANIFEST)
        local = os.path.join(self.root, backup_id, backupset.MANIFEST)
        if not os.path.isfile(restored):
            self.result.update(offsite_status='damaged', problems=['the snapshot holds no %s/%s'
                                                                   % (backup_id, backupset.MANIFEST)])
            return
        if os.path.isfile(local) and not os.path.islink(local):
            with open(local, 'rb') as handle:
                local_bytes = handle.read()
            with open(restored, 'rb') as handle:
                same = handle.read() == local_bytes
            if not same:
                self.result.update(offsite_status='differs', problems=[
                    'the manifest in the repository is not the local %s' % local])
            return
        # No local set (a lost host): the restored manifest must carry a seal this host accepts.
        try:
            manifest = backupset.load_manifest(restored_dir)
        except backupset.BackupSetError as exc:
            self.result.update(offsite_status='damaged', problems=[str(exc)])
            return
        seal_problem = self.keys().problem(manifest)
        if seal_problem:
            self.result.update(offsite_status='differs', problems=[seal_problem])

    def listed(self):
        found = self.repo.set_snapshots(self.params['host'])
        self.result['snapshots'] = list(reversed(found))

    def fetched(self):
        host = self.params['host']
        wanted = self.backup_id()
        snapshot = self.find(host, wanted)
        if snapshot is None:
            sets = [s['backup_id'] for s in self.repo.set_snapshots(host)]
            self.fail('no set %sof host %s in repository %s (sets of it there: %s)'
                      % (wanted + ' ' if wanted else '', host, self.result['repository'], ', '.join(sets) or 'none'))
        backup_id = snapshot['backup_id']
        try:
            backupset.validate_backup_id(backup_id)
        except backupset.BackupSetError as exc:
            self.fail('snapshot %s has a bad set tag: %s' % (snapshot['short_id'], exc))
        target = os.path.join(self.root, backup_id)
        self.result.update(snapshot=snapshot, backup_id=backup_id, path=target)
        keys = self.keys()
        if os.path.lexists(target):
            dummy, problems, status = backupset.verify_set(self.module, target, backup_id, keys)
            if problems:
                self.fail('%s already exists and is %s (%s); move it away to fetch the set again'
                          % (target, status, '; '.join(problems)))
            return
        self.result['changed'] = True
        if self.module.check_mode:
            return
        safepath.ensure_private_dir(self.root, 'backup_root')
        # Restored beside the sets, renamed into place only once read in full and verified.
        staging = tempfile.mkdtemp(prefix='%s%s-offsite-' % (backupset.INCOMPLETE_PREFIX, backup_id), dir=self.root)
        try:
            try:
                self.repo.restore(snapshot['id'], staging)
            except restic.ResticError as exc:
                self.fail('set %s of host %s was not fetched: %s' % (backup_id, host, exc), changed=False)
            restored = os.path.join(staging, backup_id)
            if not os.path.isdir(restored) or os.path.islink(restored):
                self.fail('snapshot %s holds no directory %s; not fetched' % (snapshot['short_id'], backup_id),
                          changed=False)
            dummy, problems, status = backupset.verify_set(self.module, restored, backup_id, keys)
            if problems:
                self.fail('set %s of host %s from the repository is %s, so it was not kept: %s'
                          % (backup_id, host, status, '; '.join(problems)), changed=False)
            os.rename(restored, target)
            backupset.fsync_dir(self.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def pruned(self):
        host = self.host()
        keep = dict((name, self.params[name]) for name in ('keep_last', 'keep_daily', 'keep_monthly'))
        if keep['keep_last'] < 1 or keep['keep_daily'] < 0 or keep['keep_monthly'] < 0:
            self.fail('keep_last must be at least 1, keep_daily and keep_monthly at least 0 (got %s)'
                      % ', '.join('%s=%s' % item for item in sorted(keep.items())))
        protect = []
        explicit = self.backup_id()
        if explicit:
            if self.find(host, explicit) is None:
                self.fail('backup_id: no snapshot of set %s of host %s in the repository to protect' % (explicit, host))
            protect.append(explicit)
        # The pre-update set of the host's last successful update: what a rollback of the version
        # now running restores. Only this host's own history knows it.
        if host == socket.getfqdn() or not self.params['host']:
            last_update = hoststate.last_updated_set(hoststate.read_history(self.params['state_dir']))
            if last_update and last_update not in protect:
                protect.append(last_update)
        kept, removed = self.repo.forget(host, keep_backup_ids=protect, dry_run=self.module.check_mode, **keep)
        lost = sorted(set(protect) & set(s['backup_id'] for s in removed))
        if lost:  # restic's --keep-tag must have held
            self.fail('restic would remove the protected set(s) %s; nothing was pruned' % ', '.join(lost))
        self.result.update(changed=bool(removed), kept=kept, removed=removed, protected=protect)


def run(module):
    params = module.params
    try:
        if params['state'] in ('sent', 'fetched'):
            safepath.check_private_dir(params['backup_root'], 'backup_root')
        safepath.check_private_dir(params['state_dir'], 'state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    try:
        restic.repository_kind(params['repository'])
        restic.check_read_data_subset(params['read_data_subset'])
    except restic.ResticError as exc:
        module.fail_json(msg=str(exc))
    secret = restic.url_password(params['repository'] or '')
    if secret:
        # Masked by Ansible in every result, the invocation's own copy of the options included.
        module.no_log_values.add(secret)
    try:
        with safepath.private_workdir(params['state_dir'], 'restic-') as work:
            offsite = Offsite(module, work)
            try:
                getattr(offsite, params['state'])()
            except restic.ResticError as exc:
                offsite.fail(str(exc), error=exc.kind)
            except safepath.UnsafePathError as exc:
                offsite.fail(str(exc))
            return offsite.result
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))


def main():
    argument_spec = dict(
        state=dict(type='str', required=True, choices=list(STATES)),
        backup_id=dict(type='str'),
        host=dict(type='str'),
        init=dict(type='bool', default=False),
        read_data_subset=dict(type='str', default='10%'),
        keep_last=dict(type='int', default=10),
        keep_daily=dict(type='int', default=0),
        keep_monthly=dict(type='int', default=12),
        backup_root=dict(type='path', default=DEFAULT_BACKUP_ROOT),
        state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
    )
    argument_spec.update(backupset.seal_argument_spec())
    argument_spec.update(restic.restic_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'sent', ['backup_id']), ('state', 'verified', ['backup_id']),
                     ('state', 'fetched', ['host'])],
        mutually_exclusive=[('password', 'password_file')],
        required_one_of=[('password', 'password_file')],
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
