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
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import database_argument_spec, ping
from ansible_collections.microimpuls.micropvr.plugins.module_utils.state import DEFAULT_STATE_DIR
from ansible_collections.microimpuls.micropvr.plugins.module_utils.rpc import RPCError, call

PROBES = ('rpc', 'http', 'nginx', 'databases')
WORKDIR_PREFIX = 'health-'


def probe_rpc(module):
    params = module.params
    try:
        result = call(params['rpc_host'], params['rpc_port'], 'is_alive', timeout=params['timeout'])
    except RPCError as exc:
        return dict(ok=False, detail=str(exc))
    if not isinstance(result, dict) or 'is_alive' not in result:
        return dict(ok=False, detail='is_alive returned %r' % (result,), result=result)
    detail = 'is_alive=%s (score %s, %s sessions)' % (str(result['is_alive']).lower(), result.get('score'),
                                                      result.get('session_count'))
    return dict(ok=result['is_alive'] is True, detail=detail, result=result)


def probe_http(module):
    response, info = fetch_url(module, module.params['http_url'], timeout=module.params['timeout'],
                               use_proxy=False)
    status = info.get('status', -1)
    if response is not None:
        response.close()
    if 200 <= status < 300:
        return dict(ok=True, detail='HTTP %d' % status, status=status)
    detail = '%s: HTTP %s %s' % (module.params['http_url'], status, info.get('msg', ''))
    return dict(ok=False, detail=detail.strip(), status=status)


def probe_nginx(module):
    params = module.params
    if not os.path.isfile(params['nginx_config']):
        return dict(ok=False, detail='%s does not exist' % params['nginx_config'])
    prefix = os.path.dirname(os.path.dirname(params['nginx_config'])) + '/'
    rc, out, err = module.run_command([params['nginx_binary'], '-t', '-q', '-p', prefix, '-c', params['nginx_config']])
    if rc == 0:
        return dict(ok=True, detail='configuration test passed')
    return dict(ok=False, detail='nginx -t: %s' % (err or out).strip())


def probe_databases(module):
    problems = []
    if module.params['databases']:
        # Credential files go to a private directory of the collection, never to the shared /tmp.
        try:
            with safepath.private_workdir(module.params['state_dir'], WORKDIR_PREFIX) as work:
                problems = [problem for problem in (ping(module, db, work) for db in module.params['databases'])
                            if problem]
        except safepath.UnsafePathError as exc:
            return dict(ok=False, detail='no private directory for the credentials: %s' % exc)
    if problems:
        return dict(ok=False, detail='; '.join(problems))
    return dict(ok=True, detail='%d database(s) answer' % len(module.params['databases']))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type='list', elements='str', choices=list(PROBES), default=['rpc', 'http', 'nginx']),
            databases=dict(type='list', elements='dict', default=[], options=database_argument_spec()),
            rpc_host=dict(type='str', default='127.0.0.1'),
            rpc_port=dict(type='int', default=4089),
            http_url=dict(type='str', default='http://127.0.0.1:8080/nginx-stats'),
            nginx_config=dict(type='path', default='/usr/local/nginx-micropvr/conf/nginx.conf'),
            nginx_binary=dict(type='path', default='/usr/sbin/nginx'),
            timeout=dict(type='float', default=5.0),
            retries=dict(type='int', default=1),
            delay=dict(type='float', default=3.0),
            fail_on_unhealthy=dict(type='bool', default=True),
            state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    if module.params['retries'] < 1:
        module.fail_json(msg='retries must be at least 1, got %d' % module.params['retries'])
    try:
        module.params['state_dir'] = safepath.check_private_dir(module.params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    os.umask(0o077)
    runners = dict(rpc=probe_rpc, http=probe_http, nginx=probe_nginx, databases=probe_databases)
    attempts = 0
    while True:
        attempts += 1
        probes = dict((name, runners[name](module)) for name in module.params['checks'])
        failed = [name for name in module.params['checks'] if not probes[name]['ok']]
        if not failed or attempts >= module.params['retries']:
            break
        time.sleep(module.params['delay'])
    result = dict(changed=False, healthy=not failed, attempts=attempts, probes=probes, failed_probes=failed)
    if failed and module.params['fail_on_unhealthy']:
        module.fail_json(msg='MicroPVR is not healthy after %d attempt(s): %s'
                         % (attempts, '; '.join('%s probe failed: %s' % (name, probes[name]['detail'])
                                                for name in failed)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
