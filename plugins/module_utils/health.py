# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether MicroPVR serves: the probes of micropvr_health, also run by micropvr_restore after a
restore (one remote task instead of two in every rollback).

Each probe takes the module (for run_command and fetch_url) and the probe options (the module's
own parameters for micropvr_health, the O(health) suboptions for micropvr_restore) and returns
``{'ok': bool, 'detail': str, ...}``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible.module_utils.urls import fetch_url

from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import ping
from ansible_collections.microimpuls.micropvr.plugins.module_utils.rpc import RPCError, call

PROBES = ('rpc', 'http', 'nginx', 'databases')
DEFAULT_CHECKS = ['rpc', 'http', 'nginx']
WORKDIR_PREFIX = 'health-'


def probe_argument_spec():
    """The options every probe round reads (micropvr_health's top level, micropvr_restore's O(health))."""
    return dict(
        rpc_host=dict(type='str', default='127.0.0.1'),
        rpc_port=dict(type='int', default=4089),
        http_url=dict(type='str', default='http://127.0.0.1:8080/nginx-stats'),
        nginx_config=dict(type='path', default='/usr/local/nginx-micropvr/conf/nginx.conf'),
        nginx_binary=dict(type='path', default='/usr/sbin/nginx'),
        timeout=dict(type='float', default=5.0),
        retries=dict(type='int', default=1),
        delay=dict(type='float', default=3.0),
    )


def refuse_bad_retries(module, options, name='retries'):
    """Fail the module, before it changes anything, when the probe options ``options`` (None: no
    health check asked for) have retries below 1; ``name`` is how the caller's option is called."""
    if options is not None and options['retries'] < 1:
        module.fail_json(msg='%s must be at least 1, got %d' % (name, options['retries']))


def probe_rpc(module, options=None):
    options = module.params if options is None else options
    try:
        result = call(options['rpc_host'], options['rpc_port'], 'is_alive', timeout=options['timeout'])
    except RPCError as exc:
        return dict(ok=False, detail=str(exc))
    if not isinstance(result, dict) or 'is_alive' not in result:
        return dict(ok=False, detail='is_alive returned %r' % (result,), result=result)
    detail = 'is_alive=%s (score %s, %s sessions)' % (str(result['is_alive']).lower(), result.get('score'),
                                                      result.get('session_count'))
    return dict(ok=result['is_alive'] is True, detail=detail, result=result)


def probe_http(module, options=None):
    options = module.params if options is None else options
    response, info = fetch_url(module, options['http_url'], timeout=options['timeout'], use_proxy=False)
    status = info.get('status', -1)
    if response is not None:
        response.close()
    if 200 <= status < 300:
        return dict(ok=True, detail='HTTP %d' % status, status=status)
    detail = '%s: HTTP %s %s' % (options['http_url'], status, info.get('msg', ''))
    return dict(ok=False, detail=detail.strip(), status=status)


def probe_nginx(module, options=None):
    options = module.params if options is None else options
    if not os.path.isfile(options['nginx_config']):
        return dict(ok=False, detail='%s does not exist' % options['nginx_config'])
    prefix = os.path.dirname(os.path.dirname(options['nginx_config'])) + '/'
    rc, out, err = module.run_command([options['nginx_binary'], '-t', '-q', '-p', prefix, '-c', options['nginx_config']])
    if rc == 0:
        return dict(ok=True, detail='configuration test passed')
    return dict(ok=False, detail='nginx -t: %s' % (err or out).strip())


def probe_databases(module, options=None):
    """SELECT 1 on every database in options['databases'], credentials in a private work directory."""
    options = module.params if options is None else options
    problems = []
    if options['databases']:
        # Credential files go to a private directory of the collection, never to the shared /tmp.
        try:
            with safepath.private_workdir(options['state_dir'], WORKDIR_PREFIX) as work:
                problems = [problem for problem in (ping(module, db, work) for db in options['databases']) if problem]
        except safepath.UnsafePathError as exc:
            return dict(ok=False, detail='no private directory for the credentials: %s' % exc)
    if problems:
        return dict(ok=False, detail='; '.join(problems))
    return dict(ok=True, detail='%d database(s) answer' % len(options['databases']))


RUNNERS = dict(rpc=probe_rpc, http=probe_http, nginx=probe_nginx, databases=probe_databases)


def check(module, options, checks=None):
    """Probe rounds until every probe in ``checks`` passes or options['retries'] rounds have run,
    options['delay'] seconds apart: ``{healthy, attempts, probes, failed_probes}`` of the last round."""
    checks = DEFAULT_CHECKS if checks is None else checks
    attempts = 0
    while True:
        attempts += 1
        probes = dict((name, RUNNERS[name](module, options)) for name in checks)
        failed = [name for name in checks if not probes[name]['ok']]
        if not failed or attempts >= options['retries']:
            break
        time.sleep(options['delay'])
    return dict(healthy=not failed, attempts=attempts, probes=probes, failed_probes=failed)


def unhealthy_message(result):
    """'MicroPVR is not healthy after N attempt(s): <probe> probe failed: <detail>; ...'"""
    return 'MicroPVR is not healthy after %d attempt(s): %s' % (
        result['attempts'], '; '.join('%s probe failed: %s' % (name, result['probes'][name]['detail'])
                                      for name in result['failed_probes']))
