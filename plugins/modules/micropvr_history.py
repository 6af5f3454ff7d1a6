#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_history
short_description: Record a MicroPVR lifecycle event in the host's history, or read it
version_added: 0.1.0
description:
  - The history is a root-only JSON-lines file, C(<state_dir>/history.jsonl), one event per line
    (updates, rollbacks, overrides of the backup gate), each with its UTC time.
  - With O(event) set, appends one event; without it, only returns the history.
options:
  event:
    description: Kind of event to record, for example C(update) or C(rollback).
    type: str
  data:
    description: What to record with the event (versions, backup id, result, message).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: Nothing is written in check mode.
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
- name: Record a successful update
  microimpuls.micropvr.micropvr_history:
    event: update
    data:
      from: {micropvr: 1.9.0-1}
      to: {micropvr: 1.10.0-1}
      backup_id: 20261126T221500Z
      result: updated

- name: Read the history
  microimpuls.micropvr.micropvr_history:
  register: history

- name: Show the last update
  ansible.builtin.debug:
    var: history.history | selectattr('event', 'equalto', 'update') | list | last
  when: history.history | selectattr('event', 'equalto', 'update') | list | length > 0
'''

RETURN = r'''
entry:
  description: The event as recorded.
  returned: when O(event) is set
  type: dict
  sample: {event: update, time: '2026-11-26T22:20:00Z', backup_id: 20261126T221500Z, result: updated,
           from: {micropvr: 1.9.0-1}, to: {micropvr: 1.10.0-1}}
history:
  description: Every event, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {event: backup, time: '2026-11-26T22:15:04Z', backup_id: 20261126T221500Z}
    - {event: update, time: '2026-11-26T22:20:00Z', backup_id: 20261126T221500Z, result: updated,
       from: {micropvr: 1.9.0-1}, to: {micropvr: 1.10.0-1}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate


def main():
    module = AnsibleModule(
        argument_spec=dict(
            event=dict(type='str'),
            data=dict(type='dict', default={}),
            state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False)
    try:
        # Checked in check mode too; a directory that does not exist yet passes (nothing to read).
        state_dir = safepath.check_private_dir(params['state_dir'], 'micropvr_state_dir')
        if params['event']:
            entry = hoststate.record_event(state_dir, params['event'], params['data'], module.check_mode)
            result.update(changed=True, entry=entry)
        result['history'] = hoststate.read_history(state_dir)
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
