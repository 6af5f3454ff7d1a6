#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_install
short_description: Install an exact MicroPVR version, only behind a verified backup
version_added: 0.1.0
description:
  - Installs O(version) of every package in O(packages) with apt, keeping the operator's edits
    to conffiles (C(--force-confdef --force-confold)), then holds the packages.
  - "The backup gate is in this module, so it holds however the module is reached (tags,
    C(--start-at-task), C(include_role: tasks_from)): it refuses to act unless O(backup_id)
    names a set under O(backup_root) that verifies (every checksum, SQLite integrity, dumps,
    package control fields), is younger than O(max_age) seconds and holds exactly the package
    versions installed now."
  - The only way past the gate is O(allow_without_backup=true); the override is written to the
    host's history and returned as a warning.
  - Refuses an unknown or malformed version, a version the apt sources do not offer, and a version
    that is not newer than the installed one (a downgrade is a rollback's job), before anything changes.
  - Refuses to install while a package is half-installed or half-configured (an interrupted
    package operation); O(preflight=true) reports such packages in RV(unfinished) instead.
  - With O(preflight=true) runs only those version checks, without the gate and without installing.
  - With O(update_cache=true) refreshes apt's package lists (C(apt-get update)) before the version
    checks, so that they see what the apt sources offer now; also in check mode, as the lists are
    apt's cache and nothing of MicroPVR's.
  - After installing, tells for each service of O(services) whether the packages' maintainer scripts
    already started the installed version, so that the caller restarts only the others (one outage per
    update instead of two). A service is fresh when its init script's C(status) exits 0 and each of
    its processes (from the pid files its init script names, and those running a file of its package)
    was started after C(apt-get) began and runs no deleted (replaced) binary or packaged library;
    anything else, or anything that cannot be proved, puts it in RV(restart_services).
  - With O(restart) and O(health), the module also restarts those services (or every one) and then
    checks that MicroPVR serves, so that an update is one task; a service that does not restart or
    a probe that still fails fails the module, saying that the version was installed.
  - With O(lock_owner), the install is a step of that run's host lock (see
    M(microimpuls.micropvr.micropvr_lock)), so that a run killed during the install is recognised by
    the next one. Without it, a host locked by any run is refused.
options:
  version:
    description: Exact Debian version to install for every package, e.g. C(1.10.0-1).
    type: str
    required: true
  packages:
    description: The MicroPVR packages.
    type: list
    elements: str
    default: [micropvr, micropvs]
  backup_id:
    description: The backup set that vouches for this update.
    type: str
  max_age:
    description: Seconds; the backup set must be younger than this.
    type: int
    default: 3600
  allow_without_backup:
    description: Skip the backup gate. Recorded in the history under O(state_dir).
    type: bool
    default: false
  preflight:
    description: Only check the version (syntax, availability, newer than installed); change nothing.
    type: bool
    default: false
  facts:
    description:
      - With O(preflight=true), also return C(ansible_facts.micropvr), the facts
        M(microimpuls.micropvr.micropvr_facts) gathers with the same O(packages), O(services),
        O(config_file), O(nginx_config), O(sqlite_databases) and O(backup_root) (without its
        C(tools)), from the same C(dpkg-query) as the version checks. The update role's pre-flight
        uses it so that an update needs no facts task of its own.
      - Refused without O(preflight=true).
    type: bool
    default: false
  update_cache:
    description:
      - Run C(apt-get update) before the version checks (also in check mode), retried up to
        four more times, 1, 2, 4 and 8 seconds apart, when it fails.
      - A source that cannot be fetched counts as a failure (C(APT::Update::Error-Mode=any)), so that
        the target is never checked against a stale list.
      - Fails with what C(apt-get) said (the source that failed) when the lists still cannot be refreshed.
    type: bool
    default: false
  hold:
    description: Hold the packages after installing, so that a routine C(apt upgrade) cannot move them.
    type: bool
    default: true
  lock_owner:
    description: Run id that holds the host lock (M(microimpuls.micropvr.micropvr_lock)) for this install.
    type: str
  lock:
    description:
      - With O(preflight=true), take the host lock for O(lock_owner) once the version checks passed,
        as M(microimpuls.micropvr.micropvr_lock) with O(microimpuls.micropvr.micropvr_lock#module:state=present)
        does (one task instead of two; the update role's pre-flight passes it). A lock this run
        already holds is kept.
      - Another run's lock fails the task with nothing changed, unless that run was interrupted in a
        step (then it is taken over, and RV(interrupted) says which, for the caller to recover the
        host first) or the lock is older than O(lock.ttl) (taken over with a warning).
      - A pre-flight that refuses the target version takes no lock.
      - Release it with M(microimpuls.micropvr.micropvr_lock) O(microimpuls.micropvr.micropvr_lock#module:state=absent)
        when the run ends.
      - Needs O(lock_owner) and O(preflight=true). In check mode the lock is looked at, not taken.
    type: dict
    suboptions:
      purpose:
        description: What the run does, recorded in the lock (for example C(update to 1.10.0-1)).
        type: str
        default: update
      ttl:
        description: Seconds after which another run's lock counts as abandoned.
        type: int
        default: 7200
  services:
    description:
      - Init scripts under C(/etc/init.d) to check after the install (RV(services), RV(restart_services)).
      - The module starts or restarts them only as O(restart) says.
    type: list
    elements: str
    default: [micropvr, micropvs]
  restart:
    description:
      - Which services of O(services) the module restarts after installing (C(/etc/init.d/<service> restart)).
      - C(auto) restarts those in RV(restart_services), the ones that do not run the installed version
        yet; when the packages' maintainer scripts already started it there is no second outage.
      - C(always) restarts every one. C(none) restarts none (the caller decides from RV(restart_services)).
      - Not in check mode or with O(preflight=true), and not when nothing was installed.
    type: str
    choices: [none, auto, always]
    default: none
  health:
    description:
      - Once installed and restarted as O(restart) says, check that MicroPVR serves with the probes of
        M(microimpuls.micropvr.micropvr_health) (C(rpc), C(http), C(nginx)), repeated until they pass
        or O(health.retries) rounds have run. The module then fails when a probe still fails, saying
        that the version was installed and which probe failed why (the caller rolls back).
      - Not in check mode or with O(preflight=true), and not when nothing was installed. Omitted, no probe runs.
    type: dict
  drain:
    description:
      - Just before installing (the gate has passed, the packages differ), wait for subscribers to leave as
        M(microimpuls.micropvr.micropvr_drain) does, so that the wait ends as close to the outage as it can.
      - Sessions still open at the timeout, or a session count that cannot be read, do not stop the install;
        the module warns and goes on (the health check after the install decides).
      - Not in check mode or with O(preflight=true), and not when nothing is to be installed. Omitted, no wait.
    type: dict
    suboptions:
      sessions:
        description: As O(microimpuls.micropvr.micropvr_drain#module:sessions).
        type: int
        required: true
      timeout:
        description: As O(microimpuls.micropvr.micropvr_drain#module:timeout).
        type: int
        required: true
      interval:
        description: As O(microimpuls.micropvr.micropvr_drain#module:interval).
        type: float
        default: 5
      rpc_host:
        description: As O(microimpuls.micropvr.micropvr_drain#module:rpc_host).
        type: str
        default: 127.0.0.1
      rpc_port:
        description: As O(microimpuls.micropvr.micropvr_drain#module:rpc_port).
        type: int
        default: 4089
attributes:
  check_mode:
    support: full
    details: Runs every check, including the gate, and reports what would be installed.
  diff_mode:
    support: full
    details: The package versions installed before and after (the target in check mode), one line per package.
  platform:
    platforms: debian
  facts:
    support: partial
    details: Only with O(preflight=true) and O(facts=true).
requirements:
  - C(apt-get), C(apt-cache), C(apt-mark) and C(dpkg-query) on the host (Debian's C(apt) and C(dpkg)).
seealso:
  - module: microimpuls.micropvr.micropvr_backup
  - module: microimpuls.micropvr.micropvr_restore
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.seal
  - microimpuls.micropvr.health
  - microimpuls.micropvr.micropvr_facts
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Take a verified backup set of what is installed now
  microimpuls.micropvr.micropvr_backup:
    reason: pre-update to 1.10.0-1
    pin: true
  register: backup_set

- name: Install 1.10.0-1 behind that backup set
  microimpuls.micropvr.micropvr_install:
    version: 1.10.0-1
    backup_id: "{{ backup_set.backup_id }}"
  register: installed

- name: Say what changed
  ansible.builtin.debug:
    msg: >-
      micropvr {{ installed.from_versions.micropvr }} -> {{ installed.to_versions.micropvr }},
      behind backup set {{ installed.backup_id }} (gate {{ installed.gate }})

- name: Only check that 1.11.0-1 could be installed (offered by apt now, newer than installed)
  microimpuls.micropvr.micropvr_install:
    version: 1.11.0-1
    preflight: true
    update_cache: true
  register: preflight
  failed_when: preflight is failed or preflight.unfinished | length > 0

- name: The same pre-flight, then lock the host for this run (one task instead of two)
  microimpuls.micropvr.micropvr_install:
    version: 1.11.0-1
    preflight: true
    update_cache: true
    lock_owner: 20261126T221500Z-update-pvr1
    lock:
      purpose: update to 1.11.0-1
  register: preflight
  changed_when: false
'''

RETURN = r'''
from_versions:
  description: Versions installed before.
  returned: always
  type: dict
  sample: {micropvr: 1.9.0-1, micropvs: 1.9.0-1}
to_versions:
  description: Versions installed after (the target in check mode and preflight).
  returned: always
  type: dict
  sample: {micropvr: 1.10.0-1, micropvs: 1.10.0-1}
backup_id:
  description: The backup set the gate accepted, or null when the gate was overridden.
  returned: always
  type: str
  sample: 20261126T221500Z
gate:
  description: C(passed), C(overridden) or C(not checked) (preflight).
  returned: always
  type: str
  sample: passed
lock_owner:
  description:
    - The O(lock_owner) this call ran under (C(null) without one). A playbook tells this run's result
      from a result an earlier run left in the same variable by it.
  returned: always
  type: str
  sample: 20261126T221500Z-update-pvr1
lock:
  description: The host lock as O(lock) left it (or as it would be, in check mode).
  returned: when O(lock) was given and the lock was taken or kept
  type: dict
  sample: {owner: 20261126T221500Z-update-pvr1, purpose: update to 1.10.0-1, acquired_at: '2026-11-26T22:15:00Z'}
taken_over:
  description: The abandoned lock O(lock) replaced, when it did.
  returned: when O(lock) took over a stale or interrupted lock
  type: dict
  sample: {owner: 20261126T180000Z-update-pvr1, purpose: update to 1.10.0-1, acquired_at: '2026-11-26T18:00:00Z'}
interrupted:
  description:
    - The run whose lock O(lock) took over because it was interrupted in a step (its owner, purpose
      and step; C(step.backup_id) is the set that step was backed by, null when the gate was
      overridden). The caller recovers the host from it before it goes on.
  returned: when O(lock) took over the lock of an interrupted run
  type: dict
  sample: {owner: 20261126T221500Z-update-pvr1, purpose: update to 1.10.0-1, step: {name: install, backup_id: 20261126T221502Z}}
unfinished:
  description: Packages that dpkg has not finished installing or configuring, with their dpkg state.
  returned: always
  type: dict
  sample: {micropvr: half-configured}
services:
  description:
    - Per service of O(services), after the install, whether it already runs the installed version.
    - C(running) is its init script's C(status) exit 0; C(fresh) true means no restart is needed;
      C(reason) says why; C(pids) are the processes found for it.
    - Empty in preflight and when nothing was installed; in check mode every service is
      reported not fresh (the decision needs the real install).
  returned: always
  type: dict
  sample: {micropvr: {running: true, fresh: true, pids: [4242],
                      reason: "the install (maintainer scripts of micropvr) started it: pid 4242, after the install began"}}
restart_services:
  description: The services of O(services) that are not fresh, in the order of O(services); restart these (a
    stopped one is started by a restart).
  returned: always
  type: list
  elements: str
  sample: [micropvs]
restarted:
  description: The services the module restarted (O(restart)), in the order of O(services).
  returned: always
  type: list
  elements: str
  sample: [micropvs]
drain:
  description:
    - The wait for subscribers before the install (O(drain)), C(drained), C(session_count) (null when
      it could not be read) and C(waited) (seconds).
  returned: when O(drain) was given and something was installed, outside check mode and preflight
  type: dict
  sample: {drained: true, session_count: 0, waited: 12.5}
health:
  description:
    - The health check after the install (O(health)), as M(microimpuls.micropvr.micropvr_health) returns it
      (C(healthy), C(attempts), C(probes), C(failed_probes)).
  returned: when O(health) was given and something was installed, outside check mode and preflight
  type: dict
  sample:
    healthy: true
    attempts: 1
    failed_probes: []
    probes:
      rpc: {ok: true, detail: "is_alive=true (score 1.0, 0 sessions)"}
      http: {ok: true, detail: HTTP 200, status: 200}
      nginx: {ok: true, detail: "configuration test passed"}
ansible_facts:
  description: C(micropvr), as M(microimpuls.micropvr.micropvr_facts) returns it (its C(tools) empty).
  returned: with O(preflight=true) and O(facts=true)
  type: dict
  sample:
    micropvr:
      packages:
        micropvr: {installed: true, version: 1.9.0-1, architecture: amd64,
                   status: install ok installed, state: installed}
      services:
        micropvr: {init_script: /etc/init.d/micropvr, exists: true, state: running, status_rc: 0}
      config: {path: /etc/micropvr/micropvr.conf, exists: true, valid: true, error: null}
      sqlite_databases: [/etc/micropvr/records.db]
      nginx_config: {path: /usr/local/nginx-micropvr/conf/nginx.conf, exists: true}
      backup_root: {path: /var/backups/micropvr, exists: true, measured_at: /var/backups/micropvr,
                    free_bytes: 52613349376, total_bytes: 270465425408}
      tools: {}
      installed: true
      running: true
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, debversion, drain, gate, safepath, services
from ansible_collections.microimpuls.micropvr.plugins.module_utils import health as healthcheck
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import (
    host_argument_spec,
    text_diff,
    version_lines,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import dpkg_audit, gather_facts, package_versions

APT_ENV = dict(DEBIAN_FRONTEND='noninteractive', APT_LISTCHANGES_FRONTEND='none')
CONFFILE_OPTIONS = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold']
# dpkg states of a package that is not there at all; every state but these and "installed"
# is an unfinished (interrupted or failed) package operation.
ABSENT_STATES = ('not-installed', 'config-files')


# Seconds between the attempts of apt-get update (a mirror that is briefly unreachable).
UPDATE_CACHE_DELAYS = (1, 2, 4, 8)


def update_cache(module):
    """Refresh apt's package lists, retried; fail naming what apt-get said."""
    apt_get = module.get_bin_path('apt-get', required=True)
    for delay in UPDATE_CACHE_DELAYS + (None,):
        # Error-Mode=any: a source that cannot be fetched is an error (apt-get's default is a
        # warning and rc 0, which would check the target against that source's stale list).
        rc, out, err = module.run_command([apt_get, 'update', '-q', '-o', 'APT::Update::Error-Mode=any'],
                                          environ_update=APT_ENV)
        if rc == 0:
            return
        if delay is not None:
            time.sleep(delay)
    module.fail_json(msg='update_cache: apt-get update failed (rc=%d) %d times, the package lists are not refreshed: %s'
                         % (rc, len(UPDATE_CACHE_DELAYS) + 1,
                            '\n'.join((err or out).strip().splitlines()[-8:])),
                     stdout=out, stderr=err)


def unfinished_packages(installed):
    return dict((name, info['state']) for name, info in installed.items()
                if info['state'] not in ABSENT_STATES + ('installed',))


def available_versions(module, name):
    """Versions of ``name`` the apt sources offer (apt-cache madison)."""
    rc, out, err = module.run_command([module.get_bin_path('apt-cache', required=True), 'madison', name])
    versions = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split('|')]
        if len(fields) >= 3 and fields[0] == name:
            versions.append(fields[1])
    return versions


def check_version(module, installed):
    """Refuse a malformed, unavailable or not-newer target before anything changes."""
    target = module.params['version']
    try:
        debversion.parse(target)
    except ValueError as exc:
        module.fail_json(msg='micropvr_version: %s' % exc)
    missing = [name for name, info in installed.items() if info['state'] in ABSENT_STATES]
    if missing:
        module.fail_json(msg='micropvr_packages: not installed, nothing to update: %s' % ', '.join(missing))
    for name in module.params['packages']:
        offered = available_versions(module, name)
        if target not in offered:
            module.fail_json(msg='micropvr_version: %s %s is not available from the apt sources (they offer: %s)'
                                 % (name, target, ', '.join(offered) or 'nothing'))
    older = [(name, info['version']) for name, info in installed.items()
             if debversion.compare(target, info['version']) < 0]
    if older:
        module.fail_json(msg='micropvr_version: %s is older than the installed %s; a downgrade is done by '
                             'restoring a backup set (rollback.yml), not by an update'
                             % (target, ', '.join('%s %s' % item for item in older)))


def fresh_verification(directory, backup_id, keys, run_id):
    """None when this run (``run_id``) verified the set and nothing in it changed since;
    otherwise why the gate reads the whole set again."""
    try:
        manifest = backupset.load_manifest(directory)
    except backupset.BackupSetError as exc:
        return str(exc)
    return backupset.fresh_verification_problem(directory, manifest, backup_id, keys, run_id)


def check_gate(module, installed):
    """The backup gate: return the accepted backup id, or fail naming every reason."""
    params = module.params
    if params['allow_without_backup']:
        return None
    if not params['backup_id']:
        module.fail_json(msg='refusing to install %s without a backup: backup_id is not set. Take a backup first '
                             '(the update role does), or set micropvr_update_without_backup=true to override '
                             '(recorded in the host history)' % params['version'])
    try:
        directory = backupset.set_path(params['backup_root'], params['backup_id'])
    except backupset.BackupSetError as exc:
        module.fail_json(msg='refusing to install %s: %s' % (params['version'], exc))
    if not os.path.isdir(directory):
        module.fail_json(msg='refusing to install %s: no backup set %s in %s'
                             % (params['version'], params['backup_id'], params['backup_root']))
    keys = backupset.module_seal_keys(module)
    summary = backupset.summarize(directory, params['backup_id'], keys)
    if fresh_verification(directory, params['backup_id'], keys, params['lock_owner']) is not None:
        # The SQLite copies passed their check when the set was taken; the sealed sha256 proves
        # they are the same bytes, so the gate does not run that check again.
        dummy, problems, status = backupset.verify_set(module, directory, params['backup_id'], keys,
                                                       sqlite_check='checksum')
        if problems:
            summary.update(status=status, problems=problems)
    reasons = gate.gate_problems(summary, dict((n, i['version']) for n, i in installed.items()), params['max_age'])
    if reasons:
        module.fail_json(msg='refusing to install %s: the backup gate is closed: %s'
                             % (params['version'], '; '.join(reasons)), gate_problems=reasons)
    return params['backup_id']


def add_diff(module, result):
    """In diff mode (check mode too), the package versions before and after as a diff."""
    if module._diff:
        result['diff'] = text_diff(version_lines(result['from_versions']), version_lines(result['to_versions']),
                                   'installed packages', 'packages after installing %s' % module.params['version'])
    return result


def install(module, installed):
    params = module.params
    apt_get = module.get_bin_path('apt-get', required=True)
    apt_mark = module.get_bin_path('apt-mark', required=True)
    specs = ['%s=%s' % (name, params['version']) for name in params['packages']]
    module.run_command([apt_mark, 'unhold'] + params['packages'], check_rc=True)
    # Just before apt-get: a process started later was started by the install (or after it).
    started = services.boot_clock()
    rc, out, err = module.run_command([apt_get, 'install', '-y', '-q', '--allow-change-held-packages']
                                      + CONFFILE_OPTIONS + specs,
                                      environ_update=APT_ENV)
    if rc != 0:
        module.fail_json(msg='apt-get install %s failed (rc=%d): %s' % (' '.join(specs), rc,
                                                                        '\n'.join((err or out).strip().splitlines()[-8:])),
                         dpkg_audit=dpkg_audit(module), stdout=out, stderr=err)
    if params['hold']:
        module.run_command([apt_mark, 'hold'] + params['packages'], check_rc=True)
    return started


def restart_and_check(module, result):
    """After an install: restart as O(restart) says, then check health; fail, saying that the
    version was installed, when a service does not restart or MicroPVR does not serve."""
    params = module.params
    to_restart = dict(none=[], auto=result['restart_services'], always=list(params['services']))[params['restart']]
    for name in to_restart:
        rc, output = services.run_service(module, name, 'restart', changed=True, **result)
        if rc != 0:
            module.fail_json(msg='%s was installed, but %s does not restart (rc=%d): %s'
                                 % (params['version'], name, rc, output), changed=True, **add_diff(module, result))
        result['restarted'].append(name)
    if params['health'] is not None:
        result['health'] = healthcheck.check(module, params['health'])
        if not result['health']['healthy']:
            module.fail_json(msg='%s was installed%s, but %s'
                                 % (params['version'],
                                    ' and %s restarted' % ', '.join(result['restarted']) if result['restarted'] else '',
                                    healthcheck.unhealthy_message(result['health'])),
                             changed=True, **add_diff(module, result))


def wait_for_subscribers(module, options):
    """O(drain): the wait before the install; it never stops the install (see the option)."""
    try:
        result = drain.wait(options)
    except drain.DrainError as exc:
        module.warn('%s; installing without waiting for subscribers to leave' % exc)
        return dict(drained=False, session_count=None, waited=0.0)
    if not result['drained']:
        module.warn(drain.remaining_message(result, options))
    return result


def take_lock(module, result):
    """The host lock for O(lock_owner) with O(lock) (hoststate.take_lock's result); a lock another
    run holds fails the module with ``result`` and that lock."""
    params = module.params
    try:
        return hoststate.take_lock(params['state_dir'], params['lock_owner'], params['lock']['purpose'],
                                   params['lock']['ttl'], module.check_mode, module.warn)
    except hoststate.LockRefused as exc:
        module.fail_json(msg='refusing to update to %s: %s; nothing was changed' % (params['version'], exc),
                         **dict(result, lock=exc.lock))


def main():
    # Where MicroPVR lives (packages, services, config_file, nginx_config, sqlite_databases,
    # backup_root): the same options as every module; the facts of the pre-flight read them.
    argument_spec = host_argument_spec()
    argument_spec.update(
        version=dict(type='str', required=True),
        backup_id=dict(type='str'),
        max_age=dict(type='int', default=3600),
        allow_without_backup=dict(type='bool', default=False),
        preflight=dict(type='bool', default=False),
        facts=dict(type='bool', default=False),
        update_cache=dict(type='bool', default=False),
        hold=dict(type='bool', default=True),
        state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
        lock_owner=dict(type='str'),
        lock=dict(type='dict', options=dict(
            purpose=dict(type='str', default='update'),
            ttl=dict(type='int', default=7200),
        )),
        restart=dict(type='str', choices=['none', 'auto', 'always'], default='none'),
        health=dict(type='dict', options=healthcheck.probe_argument_spec()),
        drain=dict(type='dict', options=drain.drain_argument_spec()),
        **backupset.seal_argument_spec()
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
    )
    params = module.params
    if params['facts'] and not params['preflight']:
        module.fail_json(msg='facts: only with preflight=true (an install changes what the facts say)')
    if params['lock'] is not None and not params['preflight']:
        module.fail_json(msg='lock: only with preflight=true (an install runs as a step of a lock already taken, '
                             'lock_owner)')
    if params['lock'] is not None and not params['lock_owner']:
        module.fail_json(msg='lock: needs lock_owner, the run that takes the lock')
    healthcheck.refuse_bad_retries(module, params['health'], 'health.retries')
    try:
        # Before anything else, in check mode and preflight too: the install writes its step and
        # a gate override there.
        params['state_dir'] = safepath.check_private_dir(params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg='refusing to install %s: %s' % (params['version'], exc))
    if params['update_cache']:
        update_cache(module)
    installed = package_versions(module, params['packages'])
    check_version(module, installed)
    before = dict((name, info['version']) for name, info in installed.items())
    target = dict((name, params['version']) for name in params['packages'])
    unfinished = unfinished_packages(installed)
    result = dict(from_versions=before, to_versions=target, backup_id=None, gate='not checked', unfinished=unfinished,
                  services={}, restart_services=[], restarted=[], lock_owner=params['lock_owner'])
    if params['preflight']:
        if params['facts']:
            result['ansible_facts'] = dict(micropvr=gather_facts(module, params, queried=installed))
        changed = False
        if params['lock'] is not None:
            # Last, once the checks passed: a pre-flight that refuses the target takes no lock.
            taken = take_lock(module, result)
            changed = taken.pop('changed')
            result.update(taken)
        module.exit_json(changed=changed, **result)
    if unfinished:
        module.fail_json(msg='refusing to install %s: a package operation on this host did not finish (%s). Re-run '
                             'update.yml, which recovers a run it finds interrupted, or restore a backup set with '
                             'rollback.yml'
                             % (params['version'], ', '.join('%s is %s' % item for item in sorted(unfinished.items()))),
                         **result)

    backup_id = check_gate(module, installed)
    result.update(backup_id=backup_id, gate='overridden' if backup_id is None else 'passed')
    if backup_id is None:
        module.warn('the backup gate was overridden (micropvr_update_without_backup): installing %s with NO '
                    'backup, there is nothing to roll back to; recorded in %s'
                    % (params['version'], os.path.join(params['state_dir'], hoststate.HISTORY_FILE)))
    if before == target:
        module.exit_json(changed=False, **add_diff(module, result))
    if module.check_mode:
        # Whether the maintainer scripts will start the new version is known only after a real
        # install: plan the safe side, a restart of each service.
        result.update(services=dict((name, dict(running=None, fresh=False, pids=[],
                                                reason='check mode: decided after a real install'))
                                    for name in params['services']),
                      restart_services=list(params['services']))
        module.exit_json(changed=True, **add_diff(module, result))
    if params['drain'] is not None:
        result['drain'] = wait_for_subscribers(module, params['drain'])
    try:
        with hoststate.step(params['state_dir'], params['lock_owner'], 'install', version=params['version'],
                            backup_id=backup_id, from_versions=before):
            if backup_id is None:
                hoststate.append_history(params['state_dir'], dict(event='gate-override', version=params['version'],
                                                                   from_versions=before, run_id=params['lock_owner']))
            started = install(module, installed)
    except (hoststate.LockError, safepath.UnsafePathError) as exc:
        module.fail_json(msg='refusing to install %s: %s' % (params['version'], exc), **result)
    result['to_versions'] = dict((n, i['version']) for n, i in package_versions(module, params['packages']).items())
    result['services'], result['restart_services'] = services.service_freshness(
        module, params['services'], params['packages'], started)
    restart_and_check(module, result)
    module.exit_json(changed=True, **add_diff(module, result))


if __name__ == '__main__':
    main()
