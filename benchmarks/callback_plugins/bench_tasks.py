# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible callback of the benchmark harness: one JSON line per task result.

Enabled by benchmarks/harness/ansible.py only (ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED);
it writes to the file named by BENCH_TASK_LOG and prints nothing, so the normal output stays as is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: bench_tasks
type: aggregate
short_description: Write every task result with its timing to a JSON-lines file (benchmarks only)
description:
  - One line per task start and per host result, with wall-clock times, to the file in BENCH_TASK_LOG.
requirements:
  - BENCH_TASK_LOG set in the environment
'''

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_tasks'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        path = os.environ.get('BENCH_TASK_LOG')
        self._out = open(path, 'a') if path else None
        self._started = {}

    def _write(self, **record):
        if self._out is not None:
            self._out.write(json.dumps(record, sort_keys=True) + '\n')
            self._out.flush()

    def v2_playbook_on_task_start(self, task, is_conditional):
        now = time.time()
        self._started[task._uuid] = now
        self._write(event='task_start', task=task.get_name(), time=now)

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result, status):
        task = result._task
        now = time.time()
        record = dict(event='result', status=status, host=result._host.get_name(), task=task.get_name(),
                      action=task.action, start=self._started.get(task._uuid, now), end=now,
                      changed=bool(result._result.get('changed', False)))
        # The part of a restore task that took the set of the host before it (micropvr_restore).
        if isinstance(result._result.get('safety_backup_seconds'), (int, float)):
            record['safety_backup_seconds'] = result._result['safety_backup_seconds']
        # How long each part of that restore took (micropvr_restore's step_seconds).
        if isinstance(result._result.get('step_seconds'), dict):
            record['step_seconds'] = result._result['step_seconds']
        # And each part of its safety backup (safety_backup_step_seconds).
        if isinstance(result._result.get('safety_backup_step_seconds'), dict):
            record['safety_backup_step_seconds'] = result._result['safety_backup_step_seconds']
        self._write(**record)

    def v2_runner_on_ok(self, result):
        self._result(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, 'ignored' if ignore_errors else 'failed')

    def v2_runner_on_skipped(self, result):
        self._result(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._result(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        self._write(event='stats', time=time.time(),
                    hosts=dict((host, stats.summarize(host)) for host in sorted(stats.processed)))
        if self._out is not None:
            self._out.close()
            self._out = None
