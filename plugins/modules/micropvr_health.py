#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_health
short_description: Check that MicroPVR serves on a host
version_added: 0.1.0
description:
  - Runs up to three probes and reports each one's result.
  - C(rpc) calls C(is_alive) over micropvr's JSON-RPC 2.0 raw-TCP API and needs
    C(is_alive=true); this is the signal load balancers poll.
  - C(http) fetches O(http_url) (micropvs) and needs a 2xx answer.
  - C(nginx) runs C(nginx -t) on the micropvs configuration.
  - C(databases) runs C(SELECT 1) on every external database in O(databases) with its credentials
    (passwords through a 0600 file, never on a command line); it is run only when asked for.
    The password files live in a fresh 0700 directory under C(<state_dir>/work), removed when the
    probe ends; one left by a killed health check is removed by the next one.
  - The probes are repeated until all pass or O(retries) attempts have been made,
    O(delay) seconds apart. The module fails naming each probe that still fails and why.
  - Read-only; the same in check mode (the C(databases) probe creates O(state_dir) if it is missing).
options:
  checks:
    description: Probes to run.
    type: list
    elements: str
    choices: [rpc, http, nginx, databases]
    default: [rpc, http, nginx]
  http_url:
    description: URL that micropvs must answer with a 2xx status.
    type: str
    default: http://127.0.0.1:8080/nginx-stats
  nginx_config:
    description: The micropvs nginx configuration tested with C(nginx -t); its prefix is the parent of its directory.
    type: path
    default: /usr/local/nginx-micropvr/conf/nginx.conf
  nginx_binary:
    description: The nginx binary micropvs runs.
    type: path
    default: /usr/sbin/nginx
  timeout:
    description: Seconds each probe may take.
    type: float
    default: 5
  retries:
    description: Attempts before giving up (1 means no retry).
    type: int
    default: 1
  delay:
    description: Seconds between attempts.
    type: float
    default: 3
  fail_on_unhealthy:
    description: Fail the task when a probe fails; otherwise report C(healthy=false).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
requirements:
  - For the C(nginx) probe, the nginx that micropvs runs (O(nginx_binary)) on the host.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.state_dir
  - microimpuls.micropvr.rpc
  - microimpuls.micropvr.databases
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Wait up to a minute for MicroPVR to serve again
  microimpuls.micropvr.micropvr_health:
    retries: 20
    delay: 3

- name: Only check the nginx configuration, and report instead of failing
  microimpuls.micropvr.micropvr_health:
    checks: [nginx]
    fail_on_unhealthy: false
  register: health

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ health.failed_probes | map('extract', health.probes) | map(attribute='detail') | list }}"
  when: not health.healthy
'''

RETURN = r'''
healthy:
  description: Whether every probe passed.
  returned: always
  type: bool
  sample: true
attempts:
  description: How many rounds of probes ran.
  returned: always
  type: int
  sample: 1
probes:
  description: Result of each probe in the last round.
  returned: always
  type: dict
  sample:
    rpc: {ok: false, detail: "is_alive=false (score 1000.0, 0 sessions)", result: {is_alive: false, score: 1000.0,
          session_count: 0}}
    http: {ok: true, detail: "HTTP 200", status: 200}
    nginx: {ok: true, detail: "configuration test passed"}
failed_probes:
  description: Names of the probes that failed in the last round.
  returned: always
  type: list
  elements: str
  sample: [rpc]
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils import health, safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import database_argument_spec
from ansible_collections.microimpuls.micropvr.plugins.module_utils.state import DEFAULT_STATE_DIR


def main():
    spec = dict(
        checks=dict(type='list', elements='str', choices=list(health.PROBES), default=list(health.DEFAULT_CHECKS)),
        databases=dict(type='list', elements='dict', default=[], options=database_argument_spec()),
        fail_on_unhealthy=dict(type='bool', default=True),
        state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
    )
    spec.update(health.probe_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    health.refuse_bad_retries(module, module.params)
    try:
        module.params['state_dir'] = safepath.check_private_dir(module.params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    os.umask(0o077)
    result = dict(changed=False, **health.check(module, module.params, module.params['checks']))
    if not result['healthy'] and module.params['fail_on_unhealthy']:
        module.fail_json(msg=health.unhealthy_message(result), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
