#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_backup_info
short_description: List MicroPVR backup sets and verify them
version_added: 0.1.0
description:
  - Lists the backup sets under O(backup_root) with their id, creation time, reason, package
    versions, size, pin and status, newest first.
  - With O(verify=true), re-reads every file of the selected sets and checks it against the
    manifest (size and sha256), checks the manifest's shape and paths, runs SQLite's check
    (O(sqlite_check), by default the full C(integrity_check)) on every database copy, C(pg_restore --list) on PostgreSQL dumps, the
    completion trailer of MariaDB dumps, the control fields of every C(.deb), and that the
    configuration archive holds exactly the manifest's entries.
  - Every listing checks the manifest's keyed seal (see O(seal_key)). A set whose seal does not
    verify is C(tampered) - it was changed by someone without the key, or comes from another host,
    or predates keyed seals. A set with any other problem is C(damaged). Neither is ever reported
    as good. Without O(verify), the status comes from the manifest alone (C(verified) when the
    set was verified when it was taken and its seal verifies).
  - Read-only; it never changes a set.
options:
  backup_id:
    description:
      - Only this set. It must exist; an id that is not of the form C(YYYYMMDDTHHMMSSZ), or that
        names a path, is refused.
    type: str
  verify:
    description: Verify the content of the selected sets, not only their manifests.
    type: bool
    default: false
  sqlite_check:
    description:
      - How O(verify=true) checks the SQLite copies beyond their checksums.
      - V(full) runs C(PRAGMA integrity_check), which also checks that every index matches its
        table, split per table over the CPU cores. This is the periodic check
        (C(playbooks/backup_verify.yml)) behind the quicker V(quick) default of
        M(microimpuls.micropvr.micropvr_backup).
      - V(quick) runs C(PRAGMA quick_check) (every page, b-tree, cell and record format, the
        freelist; not indexes against tables).
    type: str
    choices: [quick, full]
    default: full
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
seealso:
  - module: microimpuls.micropvr.micropvr_backup
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.seal
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: List the backup sets
  microimpuls.micropvr.micropvr_backup_info:
  register: backups

- name: Show the newest set
  ansible.builtin.debug:
    msg: "{{ backups.sets[0].id }}: {{ backups.sets[0].reason }}, {{ backups.sets[0].status }}"
  when: backups.sets | length > 0

- name: Verify one set
  microimpuls.micropvr.micropvr_backup_info:
    backup_id: 20261126T221500Z
    verify: true
  register: checked
  failed_when: checked.damaged | length > 0
'''

RETURN = r'''
sets:
  description: The selected backup sets, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Backup id (directory name).
      type: str
      sample: 20261126T221500Z
    path:
      description: Directory of the set.
      type: str
      sample: /var/backups/micropvr/20261126T221500Z
    created_at:
      description: UTC creation time from the manifest.
      type: str
      sample: '2026-11-26T22:15:00Z'
    reason:
      description: Why the set was taken.
      type: str
      sample: pre-update to 1.10.0-1
    host:
      description: Host name recorded in the manifest.
      type: str
      sample: pvr1.example.net
    packages:
      description: Package versions saved in the set.
      type: dict
      sample: {micropvr: 1.9.0-1, micropvs: 1.9.0-1}
    size:
      description: Bytes the set takes.
      type: int
      sample: 182044
    pinned:
      description: Whether retention keeps the set whatever its age.
      type: bool
      sample: true
    verified_at:
      description: When the set was verified at backup time.
      type: str
      sample: '2026-11-26T22:15:04Z'
    status:
      description: C(verified), C(unverified), C(damaged) or C(tampered).
      type: str
      sample: verified
    verified:
      description: Whether the content was verified by this run (O(verify=true)).
      type: bool
      sample: false
    problems:
      description: What is wrong with a damaged set.
      type: list
      elements: str
      sample: ["sqlite/tasks.db: sha256 does not match the manifest"]
damaged:
  description: Ids of the sets found damaged.
  returned: always
  type: list
  elements: str
  sample: [20261120T030000Z]
tampered:
  description: Ids of the sets whose seal does not verify.
  returned: always
  type: list
  elements: str
  sample: []
incomplete:
  description: Leftover C(.incomplete-*) directories (a backup that is running or crashed).
  returned: always
  type: list
  elements: str
  sample: [.incomplete-20261126T230000Z]
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import DEFAULT_BACKUP_ROOT
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import CHECK_LEVELS


def collect(module):
    params = module.params
    root = params['backup_root']
    try:
        safepath.check_private_dir(root, 'micropvr_backup_root')
        safepath.check_private_dir(params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    keys = backupset.module_seal_keys(module)
    ids, incomplete = backupset.list_set_dirs(root)
    if params['backup_id'] is not None:
        try:
            wanted = backupset.validate_backup_id(params['backup_id'])
        except backupset.BackupSetError as exc:
            module.fail_json(msg='backup_id: %s' % exc)
        if wanted not in ids:
            module.fail_json(msg='backup_id: no backup set %s in %s (sets there: %s)'
                             % (wanted, root, ', '.join(ids) or 'none'))
        ids = [wanted]
    sets = []
    for backup_id in reversed(ids):  # newest first
        directory = os.path.join(root, backup_id)
        summary = backupset.summarize(directory, backup_id, keys)
        summary['verified'] = False
        if params['verify']:
            dummy, problems, status = backupset.verify_set(module, directory, backup_id, keys,
                                                           sqlite_check=params['sqlite_check'])
            summary.update(verified=True, problems=problems, status=status)
        sets.append(summary)
    return dict(sets=sets, damaged=[s['id'] for s in sets if s['status'] == backupset.STATUS_DAMAGED],
                tampered=[s['id'] for s in sets if s['status'] == backupset.STATUS_TAMPERED],
                incomplete=incomplete)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_root=dict(type='path', default=DEFAULT_BACKUP_ROOT),
            backup_id=dict(type='str'),
            verify=dict(type='bool', default=False),
            sqlite_check=dict(type='str', default='full', choices=list(CHECK_LEVELS)),
            state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
            **backupset.seal_argument_spec()
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **collect(module))


if __name__ == '__main__':
    main()
