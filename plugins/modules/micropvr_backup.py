#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_backup
short_description: Take a consistent, verified backup set of MicroPVR
version_added: 0.1.0
description:
  - Creates one backup set under O(backup_root) per run, named by its UTC creation time
    (for example C(20261126T221500Z)).
  - "The set holds: C(config.tar) with O(config_paths) and the init scripts of O(services)
    (owner, mode and mtime kept); a copy of every SQLite database taken inside one read
    transaction (page for page under its shared lock in rollback-journal mode, free pages left
    out as holes; with SQLite's online backup API in WAL mode), all databases in one snapshot, each passing SQLite's check
    (O(sqlite_check)); dumps of the external O(databases); the installed C(.deb) of every package in O(packages); and
    C(manifest.json) with every file's size and sha256, sealed with the host's key
    (see O(seal_key))."
  - The set is built in C(<backup_root>/.incomplete-<id>) on the same filesystem, verified
    (every checksum re-read, SQLite's check, dump listings, package control fields; a SQLite
    copy is hashed once, when it is finished, and re-read only if it changed since), and
    only then renamed to C(<backup_root>/<id>). A failed or interrupted run never leaves
    something that looks like a backup set; leftovers of a crashed run are removed by the
    next run.
  - Refuses to start when the free space under O(backup_root) is below an estimate of the
    set's size plus O(space_margin_mb), with a message giving both numbers.
  - Directories are created with mode 0700 and files 0600, owned by the user running the
    module (root). O(backup_root) and O(state_dir) must be private directories of their own,
    not C(/), C(/tmp), C(/home) or another system directory, owned by root and not writable by
    others; an existing directory's mode is never changed.
  - A configuration path that is a symbolic link is saved as the link and as the tree it
    leads to. A symbolic link inside the configuration that leads outside the configuration
    paths fails the backup (a restore would refuse it); add its target to O(config_paths).
  - The .deb files come from apt's cache, else from the apt sources (C(apt-get download)),
    else are rebuilt from the installed files with C(dpkg-repack), so that a rollback never
    depends on the vendor repository still serving the old version.
options:
  packages:
    description: Debian packages whose installed C(.deb) and version are saved.
    type: list
    elements: str
    default: [micropvr, micropvs]
  services:
    description: Init scripts under C(/etc/init.d) saved with the configuration.
    type: list
    elements: str
    default: [micropvr, micropvs]
  config_file:
    description: The micropvr configuration; its C(*-db-path) keys name SQLite databases.
    type: path
    default: /etc/micropvr/micropvr.conf
  config_paths:
    description:
      - Files and directory trees saved in C(config.tar). SQLite databases (and their
        journals) inside them are left out of the archive and copied as one snapshot (see above).
      - Every path must exist.
    type: list
    elements: path
    default: [/etc/micropvr, /usr/local/nginx-micropvr/conf]
  sqlite_databases:
    description:
      - SQLite databases to copy. Empty means those named by the C(*-db-path) keys of
        O(config_file) and the C(*.db) files in its directory.
      - When it is empty and O(config_file) cannot be parsed, the backup is refused with the
        file, line and reason. The databases the file names cannot be known, and a set without
        them would verify but not restore the host. Naming the databases here takes the backup
        anyway.
    type: list
    elements: path
    default: []
  reason:
    description: Why the set is taken, recorded in the manifest (e.g. C(pre-update to 1.10.0-1)).
    type: str
    default: manual
  pin:
    description: Pin the set, so that retention never removes it.
    type: bool
    default: false
  keep:
    description:
      - After a successful backup, keep only the newest O(keep) sets. The newest
        O(keep_pinned) pinned sets, the newest verified set and the set just taken are never
        removed. Omit to remove nothing.
    type: int
  keep_pinned:
    description:
      - How many of the newest pinned sets (the pre-update sets of the last updates) retention
        keeps whatever O(keep) says. Older pinned sets count like any other set, so that pins
        do not fill the backup root.
    type: int
    default: 2
  space_margin_mb:
    description: Free space, in MiB, that must remain beyond the estimated size of the set.
    type: int
    default: 64
  lock_timeout:
    description:
      - Seconds to wait for another backup run on the same backup root to finish, and for an
        update or rollback that holds the host lock (M(microimpuls.micropvr.micropvr_lock)) to
        release it. A set taken while packages change would save a half-installed host.
    type: int
    default: 600
  tools:
    description:
      - Debian packages this backup needs on the host, such as C(dpkg-repack) and the dump
        clients of O(databases) (C(postgresql-client), C(mariadb-client)). They are looked up in
        the same C(dpkg-query) call as O(packages).
      - When one of them is not installed, the module takes no backup and changes nothing; it
        returns them in RV(missing_tools), so that the caller installs them and runs it again
        (the C(microimpuls.micropvr.backup) role does, with M(ansible.builtin.apt), only then).
        A name dpkg does not list as installed, including one only apt resolves (C(name=version),
        a virtual package), counts as missing; a second run should then leave it out.
      - In check mode the plan is returned as usual, with RV(missing_tools).
    type: list
    elements: str
    default: []
  lock_owner:
    description:
      - Run id that holds the host lock; the backup is then a step of that run (the update's
        pre-update backup) and does not wait for the lock.
    type: str
  sqlite_check:
    description:
      - How the SQLite copies are checked before the set is accepted, beyond the sha256 of every
        file (which catches anything that changes on disk later).
      - V(quick) runs C(PRAGMA quick_check) on each copy; it reads every page and checks every
        b-tree, cell and record format, the freelist and NOT NULL constraints, but not that each
        index matches its table (nor UNIQUE). About a tenth of the time of V(full) on a large
        database.
      - V(full) runs C(PRAGMA integrity_check), indexes against their tables too, split per table
        over the CPU cores. The periodic verification
        (M(microimpuls.micropvr.micropvr_backup_info) with O(microimpuls.micropvr.micropvr_backup_info#module:verify=true),
        C(playbooks/backup_verify.yml)) always runs the full check; run it weekly.
      - Recorded in the manifest (C(sqlite_check)).
    type: str
    choices: [quick, full]
    default: quick
  restore_test:
    description:
      - Restore each external database's dump into a throwaway database (C(<name>_micropvr_restore_test),
        dropped afterwards) and compare every table's rows with the dump; a difference fails the backup.
      - Needs the right to create databases.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports what would be saved, the estimate and the free space; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian
notes:
  - All SQLite databases are read in one read transaction while they are copied; MicroPVR's
    writers wait on SQLite's lock (their busy timeout) for that time. At most 10 databases.
requirements:
  - C(dpkg-query) and C(dpkg-deb) on the host (Debian's C(dpkg)).
  - C(apt-get) to download a C(.deb) that is not in apt's cache, else C(dpkg-repack) (Debian package
    C(dpkg-repack)) to rebuild it from the installed files; one of the two must succeed for every package.
seealso:
  - module: microimpuls.micropvr.micropvr_backup_info
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.databases
  - microimpuls.micropvr.seal
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Back up MicroPVR before an update, pinned
  microimpuls.micropvr.micropvr_backup:
    reason: pre-update to 1.10.0-1
    pin: true
    keep: 5
  register: backup_set

- name: Install behind exactly that set
  microimpuls.micropvr.micropvr_install:
    version: 1.10.0-1
    backup_id: "{{ backup_set.backup_id }}"

- name: See what a backup would save and whether it fits, without writing anything
  microimpuls.micropvr.micropvr_backup:
  check_mode: true
  register: plan

- name: Show the estimate
  ansible.builtin.debug:
    msg: "{{ plan.plan.estimated_bytes | human_readable }} of {{ plan.plan.free_bytes | human_readable }} free"

- name: Back up with an external PostgreSQL database
  microimpuls.micropvr.micropvr_backup:
    databases:
      - engine: postgresql
        name: middleware
        host: 127.0.0.1
        login_user: micropvr
        login_password: "{{ vault_micropvr_db_password }}"
  no_log: false
'''

RETURN = r'''
backup_id:
  description: Id of the new set (its directory name under O(backup_root)).
  returned: success, not in check mode
  type: str
  sample: 20261126T221500Z
backup_path:
  description: Directory of the new set.
  returned: success, not in check mode
  type: str
  sample: /var/backups/micropvr/20261126T221500Z
size:
  description: Bytes the set takes.
  returned: success, not in check mode
  type: int
  sample: 182044
manifest:
  description:
    - The set's manifest (see C(manifest.json)), without the per-file list of the configuration
      archive (C(config.entries), replaced by C(config.entry_count)), so that job logs do not keep
      a checksum of every configuration file.
  returned: success, not in check mode
  type: dict
  sample:
    format_version: 2
    backup_id: 20261126T221500Z
    created_at: '2026-11-26T22:15:00Z'
    host: pvr1.example.net
    reason: pre-update to 1.10.0-1
    pinned: true
    packages:
      micropvr: {version: 1.9.0-1, architecture: amd64, file: packages/micropvr_1.9.0-1_amd64.deb, source: apt-cache}
    services: {micropvr: running, micropvs: running}
    config: {archive: config.tar, paths: [/etc/micropvr, /usr/local/nginx-micropvr/conf], entry_count: 14}
    sqlite:
      - {source: /etc/micropvr/tasks.db, file: sqlite/tasks.db, mode: '0640', uid: 0, gid: 0, user_version: 1}
    sqlite_check: quick
    databases: []
    files:
      - {path: config.tar, kind: config, size: 40960, sha256: 5d41402abc4b2a76b9719d911017c592...}
    verified_at: '2026-11-26T22:15:04Z'
plan:
  description: What is (or would be) saved, the size estimate and the free space.
  returned: always
  type: dict
  sample:
    config_paths: [/etc/micropvr, /usr/local/nginx-micropvr/conf, /etc/init.d/micropvr]
    sqlite_databases: [/etc/micropvr/records.db, /etc/micropvr/tasks.db]
    packages: {micropvr: 1.9.0-1, micropvs: 1.9.0-1}
    databases: []
    missing_tools: []
    estimated_bytes: 182044
    required_bytes: 67290908
    free_bytes: 52613349376
missing_tools:
  description:
    - The packages of O(tools) that are not installed. When it is not empty (and not in check
      mode), no backup was taken and nothing was changed.
  returned: always
  type: list
  elements: str
  sample: [dpkg-repack]
removed:
  description: Ids of the sets removed by retention.
  returned: success
  type: list
  elements: str
  sample: [20261001T030000Z]
removed_incomplete:
  description: Leftover C(.incomplete-*) directories of crashed runs that were removed.
  returned: success
  type: list
  elements: str
  sample: []
step_seconds:
  description:
    - How long each part of the backup took, in seconds (C(plan the backup), C(lock the backup
      root), C(archive the configuration), C(lock the SQLite databases) (waiting for the read
      transaction that makes the copies one snapshot), C(copy the SQLite databases), C(check and
      hash the SQLite copies), C(save the packages), C(dump the external databases), C(write the manifest),
      C(verify the set), C(flush the set to disk), C(remove old sets)); parts that did not run are
      absent. For a profile of where a backup's time goes (the benchmark reads it).
  returned: success, not in check mode
  type: dict
  sample: {plan the backup: 0.05, copy the SQLite databases: 1.8, check and hash the SQLite copies: 1.5, verify the set: 0.1}
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import Timings
from ansible_collections.microimpuls.micropvr.plugins.module_utils.takeset import argument_spec, prepare, take


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # Files the module writes are root-only whatever the caller's umask.
    os.umask(0o077)
    timings = Timings()
    timings.start('plan the backup')
    plan, packages = prepare(module)
    if module.check_mode:
        module.exit_json(changed=True, plan=plan, missing_tools=plan['missing_tools'], removed=[],
                         removed_incomplete=[])
    if plan['missing_tools']:
        # Before anything is written (the key file, the backup root): the caller installs them first.
        module.exit_json(changed=False, plan=plan, missing_tools=plan['missing_tools'], removed=[],
                         removed_incomplete=[])
    module.exit_json(**take(module, plan, packages, timings))


if __name__ == '__main__':
    main()
