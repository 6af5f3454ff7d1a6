#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_drain
short_description: Wait for a MicroPVR host's subscriber sessions to drain
version_added: 0.1.0
description:
  - Polls C(is_alive) over micropvr's JSON-RPC API until its C(session_count) is below O(sessions)
    or O(timeout) seconds have passed, whichever comes first. Load balancers poll the same call,
    so this is the natural drain signal before an update.
  - It never fails because sessions remain when the time is up; it reports it (RV(drained) false),
    and the update goes on. It fails only when the API does not answer at all.
  - Read-only; in check mode it reads the session count once and does not wait.
options:
  sessions:
    description: Wait until fewer sessions than this remain.
    type: int
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    required: true
  interval:
    description: Seconds between polls.
    type: float
    default: 5
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
  - microimpuls.micropvr.rpc
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Let subscribers move to other servers first (at most 10 minutes)
  microimpuls.micropvr.micropvr_drain:
    sessions: 5
    timeout: 600
  register: drain

- name: Say when the update goes ahead with sessions still open
  ansible.builtin.debug:
    msg: "{{ drain.session_count }} sessions still open after {{ drain.waited | round }} s"
  when: not drain.drained
'''

RETURN = r'''
drained:
  description: Whether the session count fell below O(sessions) in time.
  returned: always
  type: bool
  sample: true
session_count:
  description: Sessions at the last poll.
  returned: always
  type: int
  sample: 0
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 42.5
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import drain


def main():
    module = AnsibleModule(argument_spec=drain.drain_argument_spec(), supports_check_mode=True)
    try:
        result = drain.wait(module.params, check_mode=module.check_mode)
    except drain.DrainError as exc:
        module.fail_json(msg=str(exc))
    if not result['drained'] and not module.check_mode:
        module.warn(drain.remaining_message(result, module.params))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
