#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_lock
short_description: Take or release the per-host lock of MicroPVR lifecycle runs
version_added: 0.1.0
description:
  - One update or rollback at a time per host. The lock is a root-only file in O(state_dir)
    that names its owner (a run id), its purpose and when it was taken.
  - O(state=present) takes the lock, or confirms it when O(owner) already holds it. When another
    run holds it, the module fails naming that run; a lock older than O(ttl) seconds is taken
    over and reported (its run crashed or was killed).
  - "A run killed while one of its modules changed packages (M(microimpuls.micropvr.micropvr_install),
    M(microimpuls.micropvr.micropvr_restore)) leaves that step in the lock, and no process holds the
    step any more: such a lock is taken over at once, whatever its age, and returned as RV(interrupted)
    so that the caller recovers the host (the update role restores the step's backup set)."
  - A lock whose step is still running (its module process is alive, or the apt/dpkg it started
    still holds the dpkg lock) is never taken over.
  - O(state=absent) releases the lock held by O(owner); a lock held by another run is left alone.
options:
  state:
    description: Take (C(present)) or release (C(absent)) the lock.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description: Id of the run that takes or releases the lock.
    type: str
    required: true
  purpose:
    description: What the run does, shown to a run that finds the host locked.
    type: str
    default: ''
  ttl:
    description: Seconds after which a lock is considered abandoned and may be taken over.
    type: int
    default: 7200
  event:
    description:
      - With O(state=absent), an event to record in the host history first, as
        M(microimpuls.micropvr.micropvr_history) records it, so that a run ends with one remote task.
        It is recorded whether or not the lock is then removed (one that belongs to another run, or
        keeps an unfinished step, stays). When the history cannot be written, the lock is still
        released and the module fails saying so.
      - Not allowed with O(state=present).
    type: str
  data:
    description: What to record with O(event) (versions, backup id, outcome).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.state_dir
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Lock the host for this update
  microimpuls.micropvr.micropvr_lock:
    owner: "{{ run_id }}"
    purpose: update to 1.10.0-1
  register: host_lock

- name: Say when an abandoned run's lock was taken over
  ansible.builtin.debug:
    msg: "took over the lock of {{ host_lock.taken_over.owner }} ({{ host_lock.taken_over.purpose }})"
  when: host_lock.taken_over is defined

- name: Record the update in the host history and release the lock
  microimpuls.micropvr.micropvr_lock:
    owner: "{{ run_id }}"
    state: absent
    event: update
    data:
      backup_id: 20261126T221500Z
      outcome: updated
'''

RETURN = r'''
lock:
  description: The lock as it is after the module ran (C(None) when released).
  returned: always
  type: dict
  sample: {owner: 20261126T221500Z-host1, purpose: update to 1.10.0-1, acquired_at: '2026-11-26T22:15:00Z'}
taken_over:
  description: The abandoned lock this run replaced, when it did.
  returned: when a stale or interrupted lock was taken over
  type: dict
  sample: {owner: 20261126T180000Z-update-host1, purpose: update to 1.10.0-1, acquired_at: '2026-11-26T18:00:00Z'}
entry:
  description: The history event as recorded (with its time; not written in check mode).
  returned: when O(event) is set and the history could be written
  type: dict
  sample: {event: rollback, time: '2026-11-26T23:02:11Z', backup_id: 20261126T221500Z, outcome: restored}
interrupted:
  description:
    - The step an interrupted run left unfinished; C(name) is C(install) or C(restore), C(backup_id)
      the backup set that the step was backed by (null when the backup gate was overridden).
  returned: when the lock taken over names an unfinished step
  type: dict
  sample: {owner: 20261126T221500Z-update-host1, step: {name: install, backup_id: 20261126T221502Z,
           version: 1.10.0-1, pid: 4242, started_at: '2026-11-26T22:15:30Z'}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate


def take(module):
    params = module.params
    try:
        result = hoststate.take_lock(params['state_dir'], params['owner'], params['purpose'], params['ttl'],
                                     module.check_mode, module.warn)
    except hoststate.LockRefused as exc:
        module.fail_json(msg=str(exc), lock=exc.lock)
    module.exit_json(**result)


def release(module):
    params = module.params
    result, history_error = hoststate.release_lock(params['state_dir'], params['owner'], params['event'],
                                                   params['data'], module.check_mode, module.warn)
    if history_error:
        module.fail_json(msg='the %s event could not be recorded in the host history (%s); the lock %s'
                             % (params['event'], history_error,
                                'was released' if result['lock'] is None else 'stays: %s' % result['lock']),
                         **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            owner=dict(type='str', required=True),
            purpose=dict(type='str', default=''),
            ttl=dict(type='int', default=7200),
            event=dict(type='str'),
            data=dict(type='dict', default={}),
            state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        module.params['state_dir'] = safepath.check_private_dir(module.params['state_dir'], 'micropvr_state_dir')
        if module.params['state'] == 'present':
            if module.params['event']:
                module.fail_json(msg='event: recorded only when the lock is released (state=absent), nothing was changed')
            take(module)
        release(module)
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))


if __name__ == '__main__':
    main()
