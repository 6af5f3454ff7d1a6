# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: rollout_progress.yml, rollout_summary.yml and rollout_report.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils import rollout

# What playbooks/update.yml keeps on each host for the rollout (see module_utils/rollout.py).
TRIED = '__micropvr_rollout_tried'
MESSAGE = '__micropvr_rollout_message'
RESULT = 'micropvr_update_result'


def _host_states(name, hosts, hostvars):
    """{host: {tried, failed, result}} from the playbook's hostvars, in the order of ``hosts``."""
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(host, str) for host in hosts):
        raise AnsibleFilterError('%s: expected a list of host names (e.g. groups[\'micropvr\']), got %r' % (name, hosts))
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError('%s: expected hostvars as the argument, got %r' % (name, hostvars))
    states = {}
    for host in hosts:
        if host not in hostvars:
            raise AnsibleFilterError('%s: host %s is not in the inventory' % (name, host))
        variables = hostvars[host]
        states[host] = dict(tried=bool(variables.get(TRIED)), failed=variables.get(MESSAGE) is not None,
                            result=variables.get(RESULT))
    return states


def rollout_progress(hosts, hostvars, max_fail_percentage=0):
    """Whether the rollout stops, and which of the hosts tried so far have failed."""
    try:
        return rollout.progress(_host_states('rollout_progress', hosts, hostvars), max_fail_percentage)
    except rollout.RolloutError as error:
        raise AnsibleFilterError('rollout_progress: %s' % error)


def rollout_summary(hosts, hostvars):
    """{host: {outcome, from, to, backup_id}} for every host of ``hosts``."""
    try:
        return rollout.summary(_host_states('rollout_summary', hosts, hostvars))
    except rollout.RolloutError as error:
        raise AnsibleFilterError('rollout_summary: %s' % error)


def rollout_report(summary):
    """One line per host of a rollout summary."""
    try:
        return rollout.report_lines(summary)
    except rollout.RolloutError as error:
        raise AnsibleFilterError('rollout_report: %s' % error)


class FilterModule(object):
    def filters(self):
        return {'rollout_progress': rollout_progress, 'rollout_summary': rollout_summary,
                'rollout_report': rollout_report}
