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
  - Verifies the set first (its seal, every checksum, dumps, package control fields, the
    configuration archive's members) and refuses a damaged or tampered set before touching
    anything. The SQLite copies passed their integrity check when the set was taken and the
    sealed sha256 proves they are the same bytes, so that check is not run again (the periodic
    C(backup_verify.yml) runs the full one).
  - "Confined: the set may only touch what this host's settings name. Its configuration paths must
    lie under O(config_paths) (or be init scripts of O(services)); every archive member must be
    one of the manifest's entries, of the type it says, with symbolic links that stay inside those
    paths; its SQLite databases must be inside them or named by O(sqlite_databases) or
    O(config_file); its packages must be in O(packages) and its external databases in
    O(databases). Anything else fails, naming it, before anything changes."
  - Configuration files are written beside their targets and renamed into place one by one, so
    an interrupted restore leaves each file old or new; directories are fsynced.
  - Free space for the files it writes is checked before the services stop.
  - Compares the host with the set first; when packages, configuration files and database
    contents already match, it changes nothing. When the package versions differ, everything is
    restored anyway, so the database contents are not compared (RV(differences) says so).
  - "Order: write the set's SQLite copies beside the databases they replace, as hidden temporary
    files, while the services still run (a database whose directory does not exist yet is copied
    later); stop O(services); unpack every saved C(.deb) that differs with one C(dpkg --unpack)
    (downgrades allowed here, and only here); extract C(config.tar) with owners, modes and mtimes;
    put the SQLite copies in place by renaming them (stale journals removed, the saved journal mode
    restored); restore external databases; then C(dpkg --configure) those packages in one
    transaction, so that each maintainer script (a C(postinst) that runs the vendor's migration
    tool, for example) sees the configuration and data of its own version; extract C(config.tar)
    again, so that dpkg's conffile handling cannot leave a file different from the set; start the
    services; hold the packages. A C(policy-rc.d) keeps maintainer scripts from starting or
    stopping daemons meanwhile. Copying the databases before and holding after keeps both out of
    the outage."
  - "When a step fails, the host is put back on a known state: on the set this module took of
    it just before (O(safety_backup)) or the one given in O(fallback_backup_id), with its services
    started. RV(outcome) says which. When that is impossible too,
    the module fails with the state the host is in (package versions, C(dpkg --audit), services),
    and the host lock keeps the unfinished restore step (with O(lock_owner)), so that the next
    rollback or update run recovers the host by itself."
  - Packages left half-installed or half-configured by an interrupted update are replaced by the
    saved ones like any other difference.
  - The saved C(.deb) files are used, never the apt sources, so a rollback works when the vendor
    repository no longer serves the old version or cannot be reached.
  - Files that exist now in the configuration trees but not in the set (for example C(*.dpkg-dist)
    left by an update) are reported in RV(extra_files) and left alone.
options:
  backup_id:
    description:
      - The backup set to restore.
      - Omitted or empty, the newest set that was verified when it was taken and was taken before
        an update (its reason starts with C(pre-update)); the module fails, changing nothing, when
        the backup root has none. The set restored is returned as RV(backup_id).
    type: str
  packages:
    description: The host's MicroPVR packages; a set that installs any other package is refused.
    type: list
    elements: str
    default: [micropvr, micropvs]
  config_paths:
    description:
      - The host's configuration paths, as given to M(microimpuls.micropvr.micropvr_backup). A set whose
        configuration lies elsewhere is refused. A path that is a symbolic link allows the tree it leads to.
    type: list
    elements: path
    default: [/etc/micropvr, /usr/local/nginx-micropvr/conf]
  config_file:
    description: The micropvr configuration; the SQLite databases it names may be restored.
    type: path
    default: /etc/micropvr/micropvr.conf
  sqlite_databases:
    description: SQLite databases that may be restored; empty means those O(config_file) names and C(*.db) beside it.
    type: list
    elements: path
    default: []
  allow_tampered:
    description:
      - Restore a set whose seal does not verify (tampered, or from another host whose key is not
        in O(trusted_seal_keys)). Recorded in the history with a warning. Every other check still
        applies. Only for a set whose origin you know.
    type: bool
    default: false
  services:
    description: Init scripts stopped before and started after the restore, in this order.
    type: list
    elements: str
    default: [micropvr, micropvs]
  hold:
    description: Hold the restored packages so that a routine C(apt upgrade) cannot move them.
    type: bool
    default: true
  install_dependencies:
    description:
      - Before the services stop, install the Debian packages that the saved C(.deb) files depend on
        (their C(Pre-Depends) and C(Depends), except what the set's own packages provide) from the
        host's apt sources with C(apt-get satisfy).
      - For a host that never had MicroPVR (disaster recovery); a rollback on the same host needs nothing new.
    type: bool
    default: false
  fallback_backup_id:
    description:
      - Backup set to put the host back on when the restore of O(backup_id) fails at any step;
        it is verified before anything changes. Normally a set of the host taken just before
        the restore.
      - Without it, a failed restore leaves the host as the message describes, and the lock
        keeps the unfinished step for the next run.
    type: str
  safety_backup:
    description:
      - Before it changes anything, take a backup set of the host as it is (reason
        C(pre-rollback to <backup_id>), not pinned), as M(microimpuls.micropvr.micropvr_backup)
        would with the same options, and put the host back on it when a step of the restore fails.
        Its id is returned in RV(safety_backup_id).
      - Taken only when the restore would change something (RV(differences) not empty), and only
        of a consistent host (every package of the set installed, C(dpkg --audit) clean); a
        half-installed host is not worth saving.
      - When the set cannot be taken (not enough space, a dump that fails, another backup holding
        the backup root beyond O(safety_backup.lock_timeout)), the restore goes on without it; the
        reason is in RV(safety_backup_problem) and in a warning, and a failed restore then leaves
        the host as the message describes.
      - While the set is taken, the SQLite copies of the set being restored are written beside
        the databases they replace (hidden C(.<name>.restore-*) files, left out of the new set),
        so the restore refuses, with nothing written, when the new set and those copies together
        do not fit on a filesystem.
      - Not in check mode, and not together with O(fallback_backup_id).
    type: dict
    suboptions:
      space_margin_mb:
        description: Free space, in MiB, that must remain beyond the estimated size of the set.
        type: int
        default: 64
      sqlite_check:
        description: How the SQLite copies are checked (see M(microimpuls.micropvr.micropvr_backup)).
        type: str
        choices: [quick, full]
        default: quick
      lock_timeout:
        description: Seconds to wait for another backup run on the same backup root.
        type: int
        default: 600
  trusted_files:
    description:
      - The RV(verified_files) that a run of this module in check mode returned for the same set
        moments before (the rollback role passes them from its comparison to its restore). When
        the manifest's seal verifies and every file of the set still has the identity recorded
        there (inode, size, modification and change time), the files are not read again; any
        change and the set is verified in full as without this option.
    type: dict
    default: {}
  lock_owner:
    description:
      - Run id that holds the host lock (M(microimpuls.micropvr.micropvr_lock)). The restore is then
        a step of that run, so that a run killed during the restore is recognised by the next one.
      - Without it, a host locked by any run is refused.
      - A set sealed as verified by this run (M(microimpuls.micropvr.micropvr_backup) with the same
        O(lock_owner)) whose files have not changed since is not read again, as the install gate
        does. That is the pre-rollback set to fall back on, or the pre-update set in an automatic
        rollback.
    type: str
  lock:
    description:
      - Take the host lock for O(lock_owner) first, before anything else, as
        M(microimpuls.micropvr.micropvr_lock) with O(microimpuls.micropvr.micropvr_lock#module:state=present)
        does (one task instead of two); a lock this run already holds is kept. Another run's lock
        refuses the restore with nothing changed, unless that run was interrupted in a step (then it
        is taken over, and RV(interrupted) says which) or the lock is older than O(lock.ttl).
      - Release it with M(microimpuls.micropvr.micropvr_lock) O(microimpuls.micropvr.micropvr_lock#module:state=absent)
        when the run ends, or with O(lock.release) in this task.
      - Needs O(lock_owner). In check mode the lock is looked at, not taken.
    type: dict
    suboptions:
      release:
        description:
          - Release the lock when the restore ends, whatever its outcome, as
            M(microimpuls.micropvr.micropvr_lock) O(microimpuls.micropvr.micropvr_lock#module:state=absent)
            does; a restore that succeeded (and, with O(health), whose host serves) is first recorded
            in the host history as a C(rollback) event with RV(record). One remote task instead of two.
          - A lock that keeps the unfinished restore step stays, so that the next run recovers the
            host. RV(lock_released) says whether the lock went.
          - Leave it false when the caller holds the lock for more than the restore (an update that
            rolls back); the caller releases it.
          - When the event cannot be written or the lock cannot be removed, the module fails saying
            so, with the restore's result.
        type: bool
        default: false
      purpose:
        description: What the run does, recorded in the lock (for example C(rollback to 20261127T101500Z)).
        type: str
        default: rollback
      ttl:
        description: Seconds after which another run's lock counts as abandoned.
        type: int
        default: 7200
  health:
    description:
      - Check that MicroPVR serves once the host is in the state of the set (restored, or already
        so), with the probes of M(microimpuls.micropvr.micropvr_health) (C(rpc), C(http), C(nginx)),
        repeated until they pass or O(health.retries) rounds have run. The module then fails when a
        probe still fails, saying that the set was restored and which probe failed why; the host
        stays on the set, its services started.
      - One task instead of a restore followed by a health check (the rollback role passes it).
      - Not run in check mode. Omitted, no probe runs.
    type: dict
attributes:
  check_mode:
    support: full
    details: Verifies the set and reports what differs; changes nothing.
  diff_mode:
    support: full
    details:
      - Before, the host's package versions and each configuration file, SQLite database and external
        database that differs from the set; after, the set's versions and those items as in the set.
      - Computed before anything changes, so check mode shows it too.
  platform:
    platforms: debian
requirements:
  - C(dpkg), C(dpkg-query) and C(apt-mark) on the host (Debian's C(dpkg) and C(apt)).
seealso:
  - module: microimpuls.micropvr.micropvr_backup
  - module: microimpuls.micropvr.micropvr_install
notes:
  - The connection settings in O(databases) are matched to the set's dumps by C(engine) and
    C(name); a set with a dump of a database that O(databases) does not list is refused.
  - A MariaDB database is restored into C(<name>_micropvr_restore), compared with the set, and
    swapped in with one C(RENAME TABLE) (views, triggers, routines and events recreated), the old
    tables kept in C(<name>_micropvr_previous) until then; a failed import leaves the old
    database. The login needs C(ALL) on both work databases. PostgreSQL is restored with
    C(pg_restore --single-transaction).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.databases
  - microimpuls.micropvr.seal
  - microimpuls.micropvr.health
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: See what a rollback to the newest pre-update set would change (run with --check --diff for the diff)
  microimpuls.micropvr.micropvr_restore:
  check_mode: true
  register: planned

- name: Show the set chosen and the differences
  ansible.builtin.debug:
    msg: "{{ planned.backup_id }}: {{ planned.differences | join('; ') or 'nothing differs' }}"

- name: Roll back to the pre-update set, back onto the set taken just before if it fails
  microimpuls.micropvr.micropvr_restore:
    backup_id: 20261126T221500Z
    fallback_backup_id: 20261127T080000Z
  register: restored

- name: Report the outcome
  ansible.builtin.debug:
    msg: >-
      {{ restored.outcome }}: micropvr {{ restored.from_versions.micropvr }} ->
      {{ restored.to_versions.micropvr }}; files the set does not have, left in place:
      {{ restored.extra_files | join(', ') or 'none' }}

- name: The whole rollback in one task - lock, pre-rollback set, restore, health check, history, release
  microimpuls.micropvr.micropvr_restore:
    lock_owner: "{{ run_id }}"
    lock:
      purpose: rollback to the newest pre-update set
      release: true
    safety_backup: {}
    health:
      retries: 10
      delay: 3
  register: rolled_back
'''

RETURN = r'''
backup_id:
  description: The backup set restored (or compared, in check mode), the one named or the one chosen.
  returned: when a set was named or chosen
  type: str
  sample: 20261126T221500Z
verified_files:
  description:
    - The identity (inode, size, modification and change time in ns) of every file of the set as it
      was verified by this run; pass it as O(trusted_files) to a restore of the same set that follows.
    - Empty when a file changed while it was read.
  returned: when the set verified
  type: dict
  sample: {config.tar: [1835010, 20480, 1764195303000000000, 1764195303000000000]}
interrupted:
  description:
    - The run whose lock O(lock) took over because it was interrupted in a step (its owner,
      purpose and step); the restore recovers the host from it.
  returned: when O(lock) took over the lock of an interrupted run
  type: dict
  sample: {owner: 20261127T101500Z-update-pvr1, purpose: update to 1.10.0-1, step: {name: install, backup_id: 20261127T101400Z}}
record:
  description:
    - The restore's line in the host history (C(backup_id), C(from_versions), C(to_versions), C(outcome)
      C(restored) or C(already in this state), C(safety_backup_id), C(differences), C(run_id) the
      O(lock_owner)); recorded as a C(rollback) event with O(lock.release), for the caller to record
      otherwise (M(microimpuls.micropvr.micropvr_history)).
  returned: when the host is in the state of the set (not in check mode)
  type: dict
  sample: {backup_id: 20261126T221500Z, outcome: restored, from_versions: {micropvr: 1.10.0-1},
           to_versions: {micropvr: 1.9.0-1}, safety_backup_id: 20261127T101500Z, differences: [],
           run_id: 20261127T101500Z-rollback-pvr1}
lock_released:
  description:
    - Whether the module released the host lock (O(lock.release)); false when the lock stays (it
      keeps the unfinished restore step, or it was another run's), in check mode, and when the lock
      was refused.
  returned: when O(lock.release) is true
  type: bool
  sample: true
step_seconds:
  description:
    - How long each part of the restore took, in seconds, by the name a failure of that part
      reports (C(verify the set), C(compare the host with the set), C(safety backup), C(stop the
      services), C(unpack the saved packages), ..., C(health check)); parts that did not run are
      absent. For a profile of where a rollback's time goes (the benchmark reads it).
  returned: when the set verified
  type: dict
  sample: {verify the set: 0.41, compare the host with the set: 0.05, stop the services: 0.12, start the services: 0.3}
safety_backup_id:
  description:
    - The set taken of the host before the restore (O(safety_backup)); null when none was taken.
  returned: when O(safety_backup) is given and not in check mode
  type: str
  sample: 20261127T101500Z
safety_backup_seconds:
  description: How long taking the set of the host before the restore took (O(safety_backup)), in seconds.
  returned: when O(safety_backup) was attempted
  type: float
  sample: 3.1
safety_backup_step_seconds:
  description:
    - How long each part of taking the set of the host before the restore took, in seconds, by
      the names micropvr_backup's RV(step_seconds) gives them (C(plan the backup), C(copy the
      SQLite databases), ..., C(flush the set to disk)). The set's SQLite copies are staged
      beside the databases meanwhile, so this is also the time that staging had.
  returned: when O(safety_backup) was attempted
  type: dict
  sample: {plan the backup: 0.08, copy the SQLite databases: 0.4, verify the set: 0.05}
safety_backup_problem:
  description: Why no set of the host could be taken before the restore (O(safety_backup)).
  returned: when O(safety_backup) is given and the set could not be taken
  type: str
  sample: not enough free space for a backup set in /var/backups/micropvr ...
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
  sample: {micropvr: 1.10.0-1, micropvs: 1.10.0-1}
to_versions:
  description: Package versions of the set.
  returned: always
  type: dict
  sample: {micropvr: 1.9.0-1, micropvs: 1.9.0-1}
extra_files:
  description: Files in the configuration trees that the set does not have (left in place).
  returned: always
  type: list
  elements: str
  sample: [/etc/micropvr/micropvr.conf.dpkg-dist]
dpkg_audit:
  description: What C(dpkg --audit) reported before the restore (empty when nothing is unfinished).
  returned: always
  type: str
  sample: ''
outcome:
  description:
    - C(restored) (the host is in the state of O(backup_id)), C(unchanged) (it already was),
      C(fell back) (the restore failed and the host is on O(fallback_backup_id); the module
      fails), C(unfinished) (the restore failed and the host could not be put on a known state;
      the module fails and the next run recovers it), C(not started) (the services could not
      be stopped; nothing was changed and they were started again; the module fails).
  returned: always
  type: str
  sample: restored
failed_step:
  description: The step of the restore that failed, and why.
  returned: when the restore failed
  type: str
  sample: "configure packages: dpkg --configure failed (rc=1): ..."
health:
  description:
    - The health check after the restore, as M(microimpuls.micropvr.micropvr_health) returns it
      (C(healthy), C(attempts), C(probes), C(failed_probes)).
  returned: when O(health) was given, outside check mode, and the restore did not fail
  type: dict
  sample:
    healthy: true
    attempts: 2
    failed_probes: []
    probes:
      rpc: {ok: true, detail: "is_alive=true (score 12.5, 0 sessions)"}
      http: {ok: true, detail: "HTTP 200", status: 200}
      nginx: {ok: true, detail: "configuration test passed"}
host_state:
  description: Package versions, C(dpkg --audit) and service states after a failed restore.
  returned: when the restore failed
  type: dict
  sample:
    packages: {micropvr: 1.10.0-1 (half-configured), micropvs: 1.9.0-1 (installed)}
    dpkg_audit: "The following packages are only half configured ...: micropvr"
    services: {micropvr: stopped, micropvs: running}
'''

import os
import tempfile
import threading
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils import confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils import debs
from ansible_collections.microimpuls.micropvr.plugins.module_utils import health as healthcheck
from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import services as servicectl
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils import takeset
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import (
    DEFAULT_BACKUP_ROOT,
    DEFAULT_CONFIG_FILE,
    DEFAULT_CONFIG_PATHS,
    DEFAULT_PACKAGES,
    DEFAULT_SERVICES,
    INIT_DIR,
    Timings,
    text_diff,
    version_lines,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    database_argument_spec,
    digest_differences,
    live_digests,
    restore,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import (
    discover_sqlite_databases,
    dpkg_audit,
    free_space,
    package_versions,
    read_micropvr_config,
    service_state,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import (
    CHECK_LEVELS,
    SIDE_FILES,
    belongs_to_database,
    describe,
    set_journal_mode,
    user_version,
)

POLICY_RC_D = '/usr/sbin/policy-rc.d'
# policy-rc.d's "action forbidden" answer: maintainer scripts may not start or stop daemons.
POLICY_DENY = '#!/bin/sh\n# Written by microimpuls.micropvr.micropvr_restore while it installs packages.\nexit 101\n'
MIB = 1024 * 1024
# Room to leave on a filesystem beyond what the restore writes there.
SPACE_MARGIN = 16 * MIB


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
        for dirpath, _dirnames, filenames in os.walk(top):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if path not in archived and not belongs_to_database(path, [s['source'] for s in manifest['sqlite']]):
                    extra.append(path)
    return sorted(extra)


def sqlite_differences(manifest, set_dir=None):
    """Which live SQLite databases differ from their copies in the set.

    Sets taken before the backup stopped digesting its copies record per-table digests (in their
    ``digest_format``, 1 when not named); the live database is digested the same way. Newer sets
    record none: then the copy in ``set_dir`` is digested too, here, the one place that needs it.
    """
    differ = []
    for saved in manifest['sqlite']:
        source = saved['source']
        if not os.path.isfile(source):
            differ.append('%s: missing' % source)
            continue
        recorded = saved.get('tables')
        try:
            if recorded is None and set_dir is None:
                differ.append('%s: no recorded contents, restored from the set' % source)
                continue
            if recorded is None:
                if user_version(source) != saved.get('user_version'):
                    differ.append('%s: contents differ' % source)
                    continue
                recorded = describe(os.path.join(set_dir, saved['file']))['tables']
                live = describe(source)
            else:
                live = describe(source, digest_format=saved.get('digest_format', 1))
        except Exception as exc:  # pylint: disable=broad-except
            differ.append('%s: unreadable (%s)' % (source, exc))
            continue
        if live['user_version'] != saved.get('user_version') or live['tables'] != recorded:
            differ.append('%s: contents differ' % source)
    return differ


def differences(module, manifest, installed, set_dir=None):
    found = []
    changed = changed_packages(manifest, installed)
    for name in changed:
        found.append('%s %s installed, the set has %s' % (name, installed[name]['version'] or 'not',
                                                          manifest['packages'][name]['version']))
    found.extend(config_differences(manifest['config']['entries']))
    if changed:
        # Any difference restores the whole set, and reading every row of the live databases
        # (seconds per GiB) would only add to the outage's lead time.
        if manifest['sqlite'] or manifest.get('databases'):
            found.append('databases: restored from the set (not compared: the package versions differ)')
        return found
    found.extend(sqlite_differences(manifest, set_dir))
    if not manifest.get('databases'):
        return found
    with safepath.private_workdir(module.params['state_dir'], 'restore-') as work:
        for saved in manifest['databases']:
            label = '%s database %s' % (saved['engine'], saved['database'])
            # Sets from before content digests were recorded cannot be compared: restore them.
            if not saved.get('tables'):
                found.append('%s: no recorded contents, restored from its dump' % label)
                continue
            live = live_digests(module, database_settings(module, saved), work, missing_ok=True)
            if live is None:
                found.append('%s: not on the server, created from its dump' % label)
                continue
            found.extend('%s: %s' % (label, problem) for problem in digest_differences(saved['tables'], live))
    return found


def restore_diff(backup_id, result, changed):
    """The host now and after the restore, as a diff: the set's package versions, then each other
    difference (``differences`` lists the changed packages first) against what it becomes."""
    data = result['differences'][len(changed):]
    restored = []
    for item in data:
        # "<file or database>: <how it differs>" -> "<file or database>: as in backup set <id>", once each
        line = '%s: as in backup set %s' % (item.split(': ', 1)[0], backup_id)
        if line not in restored:
            restored.append(line)
    return text_diff(version_lines(result['from_versions']) + data, version_lines(result['to_versions']) + restored,
                     'host now', 'backup set %s' % backup_id)


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


class StepFailed(Exception):
    """A step of the restore failed; ``str()`` says which and why, ``touched`` whether the host
    had been changed by then (a failure to stop the services changes nothing)."""

    def __init__(self, message, touched=True):
        super(StepFailed, self).__init__(message)
        self.touched = touched

    def __str__(self):
        return self.args[0]


class StepModule(object):
    """The module as the shared helpers see it, except that fail_json raises StepFailed.

    The helpers (external database restore, package queries) end the module on error; inside
    a restore an error must instead reach the code that puts the host back on a known state.
    """

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def fail_json(self, msg='', **kwargs):
        raise StepFailed(msg)


def changed_packages(manifest, installed):
    return [name for name, saved in sorted(manifest['packages'].items())
            if installed[name]['version'] != saved['version'] or not installed[name]['installed']]


def run_dpkg(module, args, what):
    rc, out, err = module.run_command([module.get_bin_path('dpkg', required=True)] + args,
                                      environ_update=dict(DEBIAN_FRONTEND='noninteractive'))
    if rc != 0:
        raise StepFailed('%s failed (rc=%d): %s' % (what, rc, ' / '.join((err or out).strip().splitlines()[-8:])))


def unpack_packages(module, set_dir, manifest, changed, installed):
    """Unpack every saved package that differs, in one dpkg run; nothing is configured yet."""
    if not changed:
        return
    # Only an installed package can be on hold (apt-mark does not know one that no source has).
    held = [name for name in changed if installed[name]['installed']]
    if held:
        rc, out, err = module.run_command([module.get_bin_path('apt-mark', required=True), 'unhold'] + held)
        if rc != 0:
            raise StepFailed('apt-mark unhold failed (rc=%d): %s' % (rc, err.strip()))
    debs = [os.path.join(set_dir, manifest['packages'][name]['file']) for name in changed]
    run_dpkg(module, ['--unpack', '--force-confdef', '--force-confold'] + debs, 'dpkg --unpack of the saved packages')


def configure_packages(module, changed):
    """Configure the unpacked packages in one dpkg run: dpkg orders them by their dependencies."""
    if changed:
        run_dpkg(module, ['--configure', '--force-confdef', '--force-confold'] + changed,
                 'dpkg --configure of the saved packages')


def restore_config(set_dir, manifest):
    # Member by member, only the manifest's entries, each renamed into place (module_utils/confine.py).
    confine.extract_config(manifest, os.path.join(set_dir, manifest['config']['archive']))


def _new_staging_file(source):
    """An empty hidden temporary file beside the database ``source``, to stage its copy in."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(source), prefix='.%s.restore-' % os.path.basename(source))
    os.close(fd)
    return tmp


def _write_sqlite_copy(set_dir, saved, tmp=None):
    """Copy the set's file of one SQLite database beside the database it replaces, as a hidden
    temporary file (``tmp``, a new one when not given) with the owner, mode and journal mode of
    the original; its path."""
    source = saved['source']
    if tmp is None:
        tmp = _new_staging_file(source)
    try:
        with os.fdopen(safepath.open_nofollow(tmp, os.O_WRONLY | os.O_TRUNC), 'wb') as out, \
                os.fdopen(safepath.open_nofollow(os.path.join(set_dir, saved['file']), os.O_RDONLY), 'rb') as copy:
            # Every byte, the holes of the set's copy (its free pages) as zeros: the live file is
            # written again by SQLite, and a sparse one could run out of space later, mid-write.
            safepath.copy_fd(copy.fileno(), out.fileno(), os.fstat(copy.fileno()).st_size)
            os.fsync(out.fileno())
        if saved.get('journal_mode') == 'wal':
            # The copy is kept in rollback-journal mode; put back the mode the live file had.
            set_journal_mode(tmp, 'wal')
        if 'mode' in saved:
            os.chown(tmp, saved['uid'], saved['gid'])
            os.chmod(tmp, int(saved['mode'], 8))
        elif os.path.exists(source):
            st = os.stat(source)
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o7777)
    except BaseException:
        discard_staged({source: tmp})
        raise
    return tmp


class SqliteStager(object):
    """The set's SQLite copies written beside the databases they replace while the services still
    run, so that the outage holds only their renames (restore_sqlite).

    Their temporary files are created at once (``paths``); the copies are written by write(), or
    by start() in a thread while the backup of the host before the restore runs, which leaves
    those files out of its config.tar. A database whose directory is missing (a host without
    MicroPVR) or reached through anything but real directories inside the configuration paths is
    not staged: restore_sqlite copies it after the configuration is restored, and refuses it then
    if it still is not confined.
    """

    def __init__(self, set_dir, manifest):
        self.set_dir, self.manifest = set_dir, manifest
        self.staged = {}  # {database: its temporary file}; restore_sqlite pops those it puts in place
        self._thread, self._error = None, None
        try:
            for saved in manifest['sqlite']:
                source = saved['source']
                if not os.path.isdir(os.path.dirname(source)):
                    continue
                try:
                    confine.check_parents('/', source, manifest['config']['paths'])
                except confine.ConfinementError:
                    continue
                self.staged[source] = _new_staging_file(source)
        except BaseException:
            discard_staged(self.staged)
            raise

    @property
    def paths(self):
        return sorted(self.staged.values())

    def write(self):
        for saved in self.manifest['sqlite']:
            if saved['source'] in self.staged:
                _write_sqlite_copy(self.set_dir, saved, self.staged[saved['source']])

    def _write_in_thread(self):
        try:
            self.write()
        except BaseException as exc:  # pylint: disable=broad-except
            self._error = exc

    def start(self):
        self._thread = threading.Thread(target=self._write_in_thread, name='stage-sqlite')
        self._thread.daemon = True
        self._thread.start()

    def result(self):
        """{database: temporary file} once every copy is written; raises what writing one failed with."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self.staged

    def discard(self):
        """Remove the copies not put in place; waits for the thread first, which may be writing them."""
        if self._thread is not None:
            self._thread.join()
        discard_staged(self.staged)


def stage_sqlite(set_dir, manifest):
    """Write the set's SQLite copies beside the databases they replace (SqliteStager, at once);
    {database: temporary file}."""
    stager = SqliteStager(set_dir, manifest)
    try:
        stager.write()
    except BaseException:
        stager.discard()
        raise
    return stager.staged


def discard_staged(staged):
    """Remove the temporary copies of ``staged`` that were not put in place (restore_sqlite pops
    those it used)."""
    for tmp in list(staged.values()):
        if os.path.lexists(tmp):
            os.unlink(tmp)
    staged.clear()


def restore_sqlite(set_dir, manifest, staged=None):
    """Put every SQLite database of the set in place: the copy staged for it, else a copy made now."""
    staged = {} if staged is None else staged
    for saved in manifest['sqlite']:
        source = saved['source']
        directory = os.path.dirname(source)
        # Inside the configuration paths, never through a symbolic link (the config was just
        # restored): checked again for a staged copy too.
        confine.check_parents('/', source, manifest['config']['paths'])
        tmp = staged.pop(source, None)
        if tmp is None or not os.path.isfile(tmp):
            tmp = _write_sqlite_copy(set_dir, saved)
        try:
            # A journal left by the version being rolled back would be replayed into the copy.
            for side in SIDE_FILES:
                if os.path.lexists(source + side):
                    os.unlink(source + side)
            os.rename(tmp, source)
            backupset.fsync_dir(directory)
        except BaseException:
            discard_staged({source: tmp})
            raise


def database_settings(module, saved):
    """Connection settings for a database of the set, from O(databases) (verified_set refused a
    set with a database that O(databases) does not list)."""
    for db in module.params['databases']:
        if (db['engine'], db['name']) == (saved['engine'], saved['database']):
            return db
    raise StepFailed('databases: the set\'s %s database %s is not listed' % (saved['engine'], saved['database']))


def restore_databases(module, set_dir, manifest):
    """Restore every external database, then check its rows against the set's digests."""
    if not manifest.get('databases'):
        return
    with safepath.private_workdir(module.params['state_dir'], 'restore-') as work:
        for saved in manifest['databases']:
            db = database_settings(module, saved)
            # MariaDB: imported into a scratch database, compared with the set, then swapped in,
            # so that a failed import leaves the old database (module_utils/external_db.py).
            restore(module, db, os.path.join(set_dir, saved['file']), work, expected_tables=saved.get('tables'))


def install_dependencies(module, set_dir, manifest, changed):
    """apt-get satisfy the saved packages' dependencies on packages outside the set."""
    control = {}
    for name in changed:
        try:
            control[name] = debs.dependency_fields(module, os.path.join(set_dir, manifest['packages'][name]['file']))
        except ValueError as exc:
            raise StepFailed(str(exc), touched=False)
    clauses = debs.external_dependencies(control, manifest['packages'])
    if not clauses:
        return
    rc, out, err = module.run_command([module.get_bin_path('apt-get', required=True), 'satisfy', '-y', '-q',
                                       '--no-install-recommends'] + clauses,
                                      environ_update=dict(DEBIAN_FRONTEND='noninteractive'))
    if rc != 0:
        raise StepFailed('apt-get satisfy %s failed (rc=%d): %s' % (', '.join(clauses), rc,
                                                                    ' / '.join((err or out).strip().splitlines()[-6:])),
                         touched=False)


def stop_services(module, services):
    for name in services:
        if not os.access(os.path.join(INIT_DIR, name), os.X_OK):
            continue  # not installed yet (a fresh host): nothing runs that could be stopped
        rc, output = servicectl.run_service(module, name, 'stop')
        if rc != 0:
            raise StepFailed('could not stop %s (rc=%d): %s' % (name, rc, output))


def start_services(module, services):
    for name in services:
        rc, output = servicectl.run_service(module, name, 'start')
        if rc != 0:
            raise StepFailed('%s does not start (rc=%d): %s' % (name, rc, output))


def apply_set(module, set_dir, manifest, services, hold, dependencies=False, timings=None, stager=None):
    """Put the host into the state of the set; raises StepFailed naming the step that failed.

    The services are stopped first. The packages are unpacked, the configuration and data put
    back, and only then the packages configured: a postinst that migrates the databases, or
    refuses a schema newer than its own, sees the data of its own version. What does not need
    the services stopped happens outside the outage: the SQLite copies are written beside the
    databases before (stage_sqlite, or ``stager``, a SqliteStager already writing them), the
    packages held after the services started.
    """
    timings = timings or Timings()
    step = timings.start('read the installed packages')
    touched = False
    staged = {}
    try:
        installed = package_versions(module, sorted(manifest['packages']))
        changed = changed_packages(manifest, installed)
        if dependencies and changed:
            step = timings.start('install the dependencies of the saved packages')
            install_dependencies(module, set_dir, manifest, changed)
        step = timings.start('stage the SQLite databases')
        staged = stage_sqlite(set_dir, manifest) if stager is None else stager.result()
        step = timings.start('stop the services')
        stop_services(module, services)
        touched = True
        with PolicyDeny():
            step = timings.start('unpack the saved packages')
            unpack_packages(module, set_dir, manifest, changed, installed)
            step = timings.start('restore the configuration')
            restore_config(set_dir, manifest)
            step = timings.start('restore the SQLite databases')
            restore_sqlite(set_dir, manifest, staged)
            step = timings.start('restore the external databases')
            restore_databases(module, set_dir, manifest)
            step = timings.start('configure the packages')
            configure_packages(module, changed)
            # dpkg may have put a packaged conffile in place of the restored one.
            step = timings.start('restore the configuration after dpkg')
            restore_config(set_dir, manifest)
        step = timings.start('start the services')
        start_services(module, services)
        if hold:
            step = timings.start('hold the packages')
            rc, out, err = module.run_command([module.get_bin_path('apt-mark', required=True), 'hold']
                                              + sorted(manifest['packages']))
            if rc != 0:
                raise StepFailed('apt-mark hold failed (rc=%d): %s' % (rc, err.strip()))
    except StepFailed as exc:
        raise StepFailed('%s: %s' % (step, exc), touched)
    except Exception as exc:  # pylint: disable=broad-except
        # Whatever goes wrong (a full disk, a member that fails its check late), the host is put
        # back on a known state by the caller.
        raise StepFailed('%s: %s: %s' % (step, type(exc).__name__, exc), touched)
    finally:
        timings.stop()
        discard_staged(staged)


def host_state(module, manifest, services):
    """What an operator needs to know about a host after a failed restore."""
    try:
        versions = dict((name, '%s (%s)' % (info['version'] or 'not installed', info['state']))
                        for name, info in package_versions(module, sorted(manifest['packages'])).items())
    except StepFailed as exc:
        versions = dict(error=str(exc))
    states = {}
    for name in services:
        states[name] = service_state(module, name)['state']
    return dict(packages=versions, dpkg_audit=dpkg_audit(module), services=states)


def describe_state(state):
    return 'packages: %s; services: %s; dpkg --audit: %s' % (
        ', '.join('%s %s' % item for item in sorted(state['packages'].items())),
        ', '.join('%s %s' % item for item in sorted(state['services'].items())),
        state['dpkg_audit'].replace('\n', ' ') or 'clean')


def recover(module, failure, touched, fallback, services, hold):
    """After a failed restore: put the host on the fallback set, else start what can start.

    Returns (outcome, message tail).
    """
    if not touched:
        for name in services:
            servicectl.run_service(module, name, 'start')
        return 'not started', 'Nothing was changed; the services were started again.'
    if fallback is not None:
        fallback_id, fallback_dir, fallback_manifest = fallback
        try:
            apply_set(module, fallback_dir, fallback_manifest, services, hold)
            return 'fell back', ('The host was put back on backup set %s, its state before this restore (%s), '
                                 'and its services run.' % (fallback_id, ', '.join(
                                     '%s %s' % (n, p['version']) for n, p in sorted(fallback_manifest['packages'].items()))))
        except StepFailed as exc:
            failure += '; putting the host back on backup set %s failed too at %s' % (fallback_id, exc)
    # Whatever state the packages are in, a service that can start should serve.
    for name in services:
        servicectl.run_service(module, name, 'start')
    return 'unfinished', failure


class SafetyBackupFailed(BaseException):
    """The set of the host before the restore could not be taken. A BaseException, like the
    SystemExit of a module's fail_json that it stands for: the backup code's own ``except
    Exception`` (which reports a failure through fail_json again) lets it pass, and its
    ``finally`` removes the partial set."""

    def __str__(self):
        return self.args[0]


class SafetyBackupModule(object):
    """The module as the backup code sees it when it takes the set to fall back on: the backup
    options (takeset.argument_spec) as params, and a fail_json that raises SafetyBackupFailed."""

    def __init__(self, module, params):
        self._module, self.params = module, params

    def __getattr__(self, name):
        return getattr(self._module, name)

    def fail_json(self, msg='', **kwargs):
        raise SafetyBackupFailed(msg)


def needs_safety_backup(result):
    """Whether the host as it is is worth saving before the restore: the restore would change it,
    and it is consistent (every package of the set installed, nothing half-installed)."""
    return (bool(result['differences']) and not result['dpkg_audit']
            and all(version is not None for version in result['from_versions'].values()))


def take_safety_backup(module, set_dir, manifest, changed, result):
    """Back up the host as it is (O(safety_backup)) while the set's SQLite copies are staged
    (SqliteStager, in a thread: the two read and write different files, and each mostly waits
    for the disk or runs in C, so together they take little more than the backup alone).

    Returns (its id, None, stager), or (None, why not, stager); the stager is None when nothing
    was staged. Refuses the restore, with nothing written, when the set of the host and the
    restore's new files together do not fit where they go (space_problems).
    """
    params = module.params
    backup = dict((name, spec.get('default')) for name, spec in takeset.argument_spec().items())
    backup.update((name, params[name]) for name in [
        'packages', 'services', 'config_file', 'config_paths', 'sqlite_databases', 'databases', 'backup_root',
        'state_dir', 'lock_owner'] + list(backupset.seal_argument_spec()))
    backup.update(params['safety_backup'], reason='pre-rollback to %s' % params['backup_id'])
    safety = SafetyBackupModule(module, backup)
    timings = Timings()
    result['safety_backup_step_seconds'] = timings.seconds
    stager = None
    try:
        timings.start('plan the backup')
        plan, packages = takeset.prepare(safety)
        refuse_without_space(module, set_dir, manifest, changed, result,
                             also=[(params['backup_root'], plan['estimated_bytes'])])
        try:
            stager = SqliteStager(set_dir, manifest)
        except (IOError, OSError):
            pass  # apply_set stages them itself, and its failure then names the step
        else:
            # Not part of the set being taken: files the restore writes and renames away.
            plan['excluded_files'] = stager.paths
            stager.start()
        return takeset.take(safety, plan, packages, timings)['backup_id'], None, stager
    except SafetyBackupFailed as exc:
        return None, str(exc), stager
    except Exception as exc:  # pylint: disable=broad-except
        return None, '%s: %s' % (type(exc).__name__, exc), stager
    finally:
        timings.stop()


def take_lock(module):
    """The host lock for O(lock_owner) with O(lock) (hoststate.take_lock's result), else None."""
    params = module.params
    if params['lock'] is None:
        return None
    if not params['lock_owner']:
        module.fail_json(msg='lock: needs lock_owner, the run that takes the lock')
    try:
        return hoststate.take_lock(params['state_dir'], params['lock_owner'], params['lock']['purpose'],
                                   params['lock']['ttl'], module.check_mode, module.warn)
    except hoststate.LockRefused as exc:
        released = dict(lock_released=False) if params['lock']['release'] else {}
        module.fail_json(msg='refusing to restore: %s; nothing was changed' % exc, lock=exc.lock, **released)


class ExitAfterRelease(BaseException):
    """An exit of a restore that releases the host lock itself (O(lock.release)), carried out to
    run(), which releases the lock and then exits with the same result. Raised in place of
    exit_json and fail_json so that the restore step is over (it clears itself from the lock, or
    keeps itself there when unfinished) before the lock is looked at. A BaseException, like the
    SystemExit it stands for."""

    def __init__(self, failed, result):
        super(ExitAfterRelease, self).__init__(failed)
        self.failed, self.result = failed, result


def exit_after_release(module):
    """Turn the module's exits into ExitAfterRelease (run() keeps the real ones)."""
    def exit_json(**result):
        raise ExitAfterRelease(False, result)

    def fail_json(**result):
        raise ExitAfterRelease(True, result)
    module.exit_json, module.fail_json = exit_json, fail_json


def release_then_exit(module, exits, failed, result):
    """The end of a restore with O(lock.release): a succeeded restore is recorded in the host
    history, the lock released (hoststate.release_lock), then the module exits with ``result``."""
    params = module.params
    exit_json, fail_json = exits
    module.exit_json, module.fail_json = exit_json, fail_json
    result = dict(result, lock_released=False)
    if module.check_mode:
        (fail_json if failed else exit_json)(**result)
    record = None if failed else result.get('record')
    try:
        released, problem = hoststate.release_lock(params['state_dir'], params['lock_owner'],
                                                   'rollback' if record else None, record, warn=module.warn)
        result['lock_released'] = released['lock'] is None
        if problem:
            problem = 'the rollback event could not be recorded in the host history (%s); the lock %s' % (
                problem, 'was released' if released['lock'] is None else 'stays')
    except Exception as exc:  # pylint: disable=broad-except
        problem = 'the host lock could not be released (%s: %s); remove %s/%s once nothing runs on the host' % (
            type(exc).__name__, exc, params['state_dir'], hoststate.LOCK_FILE)
    if problem and not failed:
        fail_json(msg='backup set %s: the restore succeeded, but %s' % (params['backup_id'], problem), **result)
    if problem:
        module.warn(problem)
    (fail_json if failed else exit_json)(**result)


def host_allowances(module):
    """What this host's settings let a restore touch (see confine.host_problems)."""
    params = module.params
    config_paths = []
    for path in (os.path.normpath(p) for p in params['config_paths']):
        config_paths.append(path)
        if os.path.islink(path):
            config_paths.append(os.path.realpath(path))
    init_scripts = [os.path.join(INIT_DIR, name) for name in params['services']]
    sqlite_paths = [os.path.normpath(p) for p in params['sqlite_databases']]
    if not sqlite_paths:
        # A configuration that does not parse (the rollback may be what repairs it) names none.
        info, dummy = read_micropvr_config(params['config_file'])
        sqlite_paths = discover_sqlite_databases(params['config_file'], info['sqlite_databases'])
    databases = [(db['engine'], db['name']) for db in params['databases']]
    return config_paths, init_scripts, sqlite_paths, params['packages'], databases


def verified_set(module, keys, backup_id, option, allow_tampered=False, trusted_files=None):
    """(directory, manifest, identities) of a set that verifies and stays within what this host
    may touch; fails the module, changing nothing, otherwise. ``identities`` are those of the
    files as they were verified (empty when one changed meanwhile); with ``trusted_files`` that
    still match, the files are not read again."""
    backup_root = module.params['backup_root']
    try:
        set_dir = backupset.set_path(backup_root, backup_id)
    except backupset.BackupSetError as exc:
        module.fail_json(msg='%s: %s' % (option, exc))
    if not os.path.isdir(set_dir) or os.path.islink(set_dir):
        ids, dummy = backupset.list_set_dirs(backup_root)
        module.fail_json(msg='%s: no backup set %s in %s (sets there: %s)'
                             % (option, backup_id, backup_root, ', '.join(ids) or 'none'))
    manifest, problems, status, identities = verify_or_trust(module, set_dir, backup_id, keys, trusted_files)
    if status == backupset.STATUS_TAMPERED:
        seal_problem = keys.problem(manifest)
        rest = [p for p in problems if p != seal_problem and not p.startswith('manifest format_version')]
        if not allow_tampered or rest:
            module.fail_json(msg='refusing to restore from backup set %s: it is TAMPERED (%s), nothing was changed. '
                                 'Restore it only if you know where it comes from: give the key it was sealed with '
                                 '(micropvr_seal_trusted_keys), or set micropvr_rollback_allow_tampered=true, which '
                                 'is recorded in the host history%s'
                                 % (backup_id, seal_problem, '; it also has other problems: %s' % '; '.join(rest)
                                    if rest else ''), problems=problems, status=status)
        module.warn('backup set %s is tampered (%s); restoring it anyway because allow_tampered is set'
                    % (backup_id, seal_problem))
        if not module.check_mode:
            hoststate.append_history(module.params['state_dir'], dict(
                event='tampered-override', backup_id=backup_id, problem=seal_problem,
                run_id=module.params['lock_owner']))
    elif problems:
        module.fail_json(msg='refusing to restore from backup set %s: it does not verify, nothing was changed: %s'
                             % (backup_id, '; '.join(problems)), problems=problems, status=status)
    problems = confine.host_problems(manifest, *host_allowances(module))
    if problems:
        module.fail_json(msg='refusing to restore from backup set %s: it reaches beyond what this host\'s settings '
                             'name, nothing was changed: %s' % (backup_id, '; '.join(problems)), problems=problems)
    return set_dir, manifest, identities


def verify_or_trust(module, set_dir, backup_id, keys, trusted_files):
    """verify_set()'s (manifest, problems, status) and the identities of the files verified.

    The SQLite copies are not integrity-checked again: they passed that check when the set was
    taken, and the sealed sha256 proves they are the same bytes. A set that this same run
    verified and that has not changed since is not read again: the comparison's
    (``trusted_files``), or one taken by this run (sealed ``verified_by`` the ``lock_owner``: the
    pre-rollback set to fall back on, the pre-update set of an automatic rollback), by the rule
    the install gate uses (backupset.fresh_verification_problem).
    """
    try:
        manifest = backupset.load_manifest(set_dir)
    except backupset.BackupSetError:
        # verify_set reads it again and reports why it is damaged.
        return backupset.verify_set(module, set_dir, backup_id, keys, sqlite_check='checksum') + ({},)
    if trusted_files and backupset.unchanged_problem(set_dir, manifest, backup_id, keys, trusted_files) is None:
        return manifest, [], backupset.status_of(manifest, [], keys), trusted_files
    run_id = module.params.get('lock_owner')
    if run_id and backupset.fresh_verification_problem(set_dir, manifest, backup_id, keys, run_id) is None:
        return manifest, [], backupset.status_of(manifest, [], keys), manifest['verified_files']
    before = None if confine.manifest_problems(manifest) else backupset.file_identities(set_dir, manifest)
    manifest, problems, status = backupset.verify_set(module, set_dir, backup_id, keys, sqlite_check='checksum',
                                                      manifest=manifest)
    identities = {}
    if before is not None and not problems and backupset.file_identities(set_dir, manifest) == before:
        identities = before
    return manifest, problems, status, identities


def space_problems(set_dir, manifest, changed, also=()):
    """Where the restore would run out of space, checked before the services stop; ``also``,
    (path, size) pairs, are what else will be written meanwhile (the backup of the host before
    the restore).

    A file is written beside the one it replaces, so each filesystem needs room for the new
    files put there; unpacking a package needs about three times its .deb on the root filesystem.
    """
    needed = {}

    def add(path, size):
        space = free_space(path)
        key = os.stat(space['measured_at']).st_dev
        previous = needed.get(key, (space, 0))
        needed[key] = (space, previous[1] + size)

    for entry in manifest['config']['entries']:
        if entry['type'] == 'file':
            add(entry['path'], entry['size'])
    for saved in manifest['sqlite']:
        add(saved['source'], os.path.getsize(os.path.join(set_dir, saved['file'])))
    for name in changed:
        add('/usr', 3 * os.path.getsize(os.path.join(set_dir, manifest['packages'][name]['file'])))
    for path, size in also:
        add(path, size)
    problems = []
    for space, size in needed.values():
        required = size + SPACE_MARGIN
        if space['free_bytes'] < required:
            problems.append('the filesystem of %s has %.1f MiB free, the restore needs about %.1f MiB there%s'
                            % (space['measured_at'], space['free_bytes'] / float(MIB), required / float(MIB),
                               ' (with the backup of the host before it)' if also else ''))
    return problems


def refuse_without_space(module, set_dir, manifest, changed, result, also=()):
    space = space_problems(set_dir, manifest, changed, also)
    if space:
        module.fail_json(msg='refusing to restore backup set %s: not enough free space, nothing was changed and the '
                             'services still run: %s' % (module.params['backup_id'], '; '.join(space)), **result)


def argument_spec():
    spec = dict(
        backup_id=dict(type='str'),
        backup_root=dict(type='path', default=DEFAULT_BACKUP_ROOT),
        services=dict(type='list', elements='str', default=list(DEFAULT_SERVICES)),
        packages=dict(type='list', elements='str', default=list(DEFAULT_PACKAGES)),
        config_paths=dict(type='list', elements='path', default=list(DEFAULT_CONFIG_PATHS)),
        config_file=dict(type='path', default=DEFAULT_CONFIG_FILE),
        sqlite_databases=dict(type='list', elements='path', default=[]),
        databases=dict(type='list', elements='dict', default=[], options=database_argument_spec()),
        hold=dict(type='bool', default=True),
        install_dependencies=dict(type='bool', default=False),
        state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
        lock_owner=dict(type='str'),
        fallback_backup_id=dict(type='str'),
        lock=dict(type='dict', options=dict(
            purpose=dict(type='str', default='rollback'),
            ttl=dict(type='int', default=7200),
            release=dict(type='bool', default=False),
        )),
        safety_backup=dict(type='dict', options=dict(
            space_margin_mb=dict(type='int', default=64),
            sqlite_check=dict(type='str', default='quick', choices=list(CHECK_LEVELS)),
            lock_timeout=dict(type='int', default=600),
        )),
        trusted_files=dict(type='dict', default={}),
        allow_tampered=dict(type='bool', default=False),
        health=dict(type='dict', options=healthcheck.probe_argument_spec()),
    )
    spec.update(backupset.seal_argument_spec())
    return spec


def finish(module, result, changed, diff, timings):
    """Exit with the restore's result; with O(health), only once MicroPVR serves."""
    if not module.check_mode:
        result['record'] = dict(
            backup_id=module.params['backup_id'], from_versions=result['from_versions'],
            to_versions=result['to_versions'], outcome='restored' if changed else 'already in this state',
            safety_backup_id=result.get('safety_backup_id'), differences=result['differences'],
            run_id=module.params['lock_owner'])
    if module.params['health'] is not None and not module.check_mode:
        timings.start('health check')
        result['health'] = healthcheck.check(module, module.params['health'])
        timings.stop()
        if not result['health']['healthy']:
            module.fail_json(msg='backup set %s %s, but %s. The host stays on the set with its services started: '
                                 'find out why it does not serve (the micropvr log), or restore another set'
                                 % (module.params['backup_id'],
                                    'was restored' if changed else 'matches the host (nothing was restored)',
                                    healthcheck.unhealthy_message(result['health'])),
                             changed=changed, **result)
    module.exit_json(changed=changed, **dict(result, **diff))


def run(module):
    """The restore; with O(lock.release), its every outcome ends with the release of the lock
    (release_then_exit): an unexpected error too, as a failure message instead of a traceback."""
    exits = module.exit_json, module.fail_json
    try:
        try:
            restore_set(module)
        except Exception as exc:  # pylint: disable=broad-except
            # Whatever the set or the host holds, the operator gets a message, not a traceback.
            module.fail_json(msg='restore of backup set %s stopped: %s: %s'
                                 % (module.params['backup_id'] or '(the newest pre-update set)', type(exc).__name__,
                                    exc),
                             exception=traceback.format_exc())
    except ExitAfterRelease as done:
        release_then_exit(module, exits, done.failed, done.result)


def restore_set(module):
    params = module.params
    os.umask(0o077)
    healthcheck.refuse_bad_retries(module, params['health'], 'health.retries')
    try:
        safepath.check_private_dir(params['backup_root'], 'micropvr_backup_root')
        safepath.check_private_dir(params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    taken = take_lock(module)
    if taken is not None and params['lock']['release']:
        exit_after_release(module)
    timings = Timings()
    timings.start('verify the set')
    keys = backupset.module_seal_keys(module)
    if not params['backup_id']:
        params['backup_id'] = backupset.newest_pre_update_set(params['backup_root'], keys)
        if params['backup_id'] is None:
            module.fail_json(msg='backup_id: no verified pre-update backup set in %s, nothing was changed; name the set '
                                 'to restore with micropvr_backup_id=<id> (list them with playbooks/backup_verify.yml)'
                                 % params['backup_root'])
    set_dir, manifest, identities = verified_set(module, keys, params['backup_id'], 'micropvr_backup_id',
                                                 params['allow_tampered'], params['trusted_files'])
    if params['safety_backup'] is not None and params['fallback_backup_id']:
        module.fail_json(msg='safety_backup and fallback_backup_id are mutually exclusive: the set taken by '
                             'safety_backup is the one to fall back on')
    fallback = None
    if params['fallback_backup_id'] and params['fallback_backup_id'] != params['backup_id']:
        fallback_dir, fallback_manifest, dummy = verified_set(module, keys, params['fallback_backup_id'],
                                                              'fallback_backup_id')
        fallback = (params['fallback_backup_id'], fallback_dir, fallback_manifest)
    timings.start('compare the host with the set')
    installed = package_versions(module, sorted(manifest['packages']))
    # A host without the set's packages (disaster recovery onto a fresh host) gets the init
    # scripts with them; on any other host a service without one is a wrong name.
    if all(info['installed'] for info in installed.values()):
        for name in params['services']:
            servicectl.init_script(module, name)
    result = dict(
        backup_id=params['backup_id'],
        verified_files=identities,
        from_versions=dict((n, i['version']) for n, i in installed.items()),
        to_versions=dict((n, p['version']) for n, p in manifest['packages'].items()),
        differences=differences(module, manifest, installed, set_dir),
        extra_files=extra_config_files(manifest),
        dpkg_audit=dpkg_audit(module),
        step_seconds=timings.seconds,
    )
    if taken and 'interrupted' in taken:
        result['interrupted'] = taken['interrupted']
    changed = changed_packages(manifest, installed)
    # Computed before anything changes, so that check mode shows it too; only a successful run
    # returns it (a failed restore did not make the host look like the set).
    diff = dict(diff=restore_diff(params['backup_id'], result, changed)) if module._diff else {}
    if not result['differences']:
        result['outcome'] = 'unchanged'
        finish(module, result, False, diff, timings)
    refuse_without_space(module, set_dir, manifest, changed, result)
    if module.check_mode:
        module.exit_json(changed=True, outcome='restored', **dict(result, **diff))

    stager = None
    try:
        if params['safety_backup'] is not None:
            result['safety_backup_id'] = None
            if needs_safety_backup(result):
                timings.start('safety backup')
                safety_id, problem, stager = take_safety_backup(module, set_dir, manifest, changed, result)
                timings.stop()
                result['safety_backup_seconds'] = timings.seconds['safety backup']
                if problem is None:
                    result['safety_backup_id'] = safety_id
                    # Sealed with the host's own key, which the backup created if this is the first set.
                    safety_dir, safety_manifest, dummy = verified_set(module, backupset.module_seal_keys(module),
                                                                      safety_id, 'safety_backup')
                    fallback = (safety_id, safety_dir, safety_manifest)
                    # The set may share a filesystem with what the restore writes.
                    refuse_without_space(module, set_dir, manifest, changed, result)
                else:
                    result['safety_backup_problem'] = problem
                    module.warn('no backup of the host before the restore (%s); if the restore fails, the host lock '
                                'keeps the unfinished step and the next rollback.yml or update.yml completes the '
                                'recovery' % problem)
        apply_restore(module, set_dir, manifest, fallback, result, timings, stager)
    finally:
        if stager is not None:
            # Whatever ended the restore: the thread is done and no staged copy is left behind.
            stager.discard()
    result['outcome'] = 'restored'
    finish(module, result, True, diff, timings)


def apply_restore(module, set_dir, manifest, fallback, result, timings, stager):
    """apply_set inside the lock's restore step, and what follows a failure: the fallback set,
    or the unfinished step kept in the lock."""
    params = module.params
    steps = StepModule(module)
    try:
        with hoststate.step(params['state_dir'], params['lock_owner'], 'restore', backup_id=params['backup_id']):
            try:
                apply_set(steps, set_dir, manifest, params['services'], params['hold'], params['install_dependencies'],
                          timings, stager)
            except StepFailed as exc:
                outcome, message = recover(steps, str(exc), exc.touched, fallback, params['services'], params['hold'])
                result.update(outcome=outcome, failed_step=str(exc),
                              host_state=host_state(steps, manifest, params['services']))
                if outcome == 'unfinished':
                    # Leave the step in the lock: the next run sees it and restores the set again.
                    raise hoststate.StepUnfinished(message)
                module.fail_json(msg='restore of backup set %s failed at %s. %s'
                                     % (params['backup_id'], exc, message), **result)
    except hoststate.StepUnfinished as exc:
        module.fail_json(msg='restore of backup set %s failed, and the host is NOT in a known state: %s. Now: %s. '
                             'The host lock keeps this unfinished restore: the next run of playbooks/rollback.yml '
                             'or playbooks/update.yml restores a backup set again by itself (fix the cause first).%s'
                             % (params['backup_id'], exc, describe_state(result['host_state']),
                                ' There was no backup of the host before the restore to put it back on: %s.'
                                % result['safety_backup_problem'] if result.get('safety_backup_problem') else ''),
                         **result)
    except (hoststate.LockError, safepath.UnsafePathError) as exc:
        module.fail_json(msg='refusing to restore backup set %s: %s' % (params['backup_id'], exc), **result)


def main():
    run(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True))


if __name__ == '__main__':
    main()
