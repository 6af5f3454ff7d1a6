# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting for subscribers to leave a MicroPVR host: micropvr_drain, and micropvr_install's
O(drain) just before it installs (in an update, no remote task of its own and the shortest wait
before the outage)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.microimpuls.micropvr.plugins.module_utils.rpc import RPCError, call


class DrainError(Exception):
    """The session count cannot be read (the API does not answer)."""


def drain_argument_spec():
    """The options of a wait (micropvr_drain's top level, micropvr_install's O(drain))."""
    return dict(
        sessions=dict(type='int', required=True),
        timeout=dict(type='int', required=True),
        interval=dict(type='float', default=5.0),
        rpc_host=dict(type='str', default='127.0.0.1'),
        rpc_port=dict(type='int', default=4089),
    )


def session_count(options):
    """The ``session_count`` of ``is_alive`` now; DrainError when it cannot be read."""
    try:
        result = call(options['rpc_host'], options['rpc_port'], 'is_alive')
    except RPCError as exc:
        raise DrainError('cannot read the session count: %s' % exc)
    return int(result.get('session_count', 0))


def wait(options, check_mode=False):
    """Poll until fewer than options['sessions'] sessions remain or options['timeout'] seconds
    have passed; in check mode read once and do not wait. ``{drained, session_count, waited}``."""
    started = time.time()
    count = session_count(options)
    while count >= options['sessions'] and not check_mode \
            and time.time() - started + options['interval'] <= options['timeout']:
        time.sleep(options['interval'])
        count = session_count(options)
    return dict(drained=count < options['sessions'], session_count=count, waited=round(time.time() - started, 1))


def remaining_message(result, options):
    """The warning when sessions remain at the timeout: the update goes on."""
    return ('%d sessions remain after %d s (micropvr_drain_timeout); updating anyway'
            % (result['session_count'], options['timeout']))
