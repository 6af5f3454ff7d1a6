# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: backup_gate.yml and backup_pick.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils import gate


def _max_age(name, value):
    try:
        max_age = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%s: max_age must be a number of seconds, got %r' % (name, value))
    if max_age < 0:
        raise AnsibleFilterError('%s: max_age must not be negative, got %d' % (name, max_age))
    return max_age


def backup_gate(backup, installed, max_age):
    """Why ``backup`` does not qualify for an update; an empty list when it does."""
    if not isinstance(backup, dict) or 'id' not in backup:
        raise AnsibleFilterError('backup_gate: expected one set from micropvr_backup_info, got %r' % (backup,))
    return gate.gate_problems(backup, installed, _max_age('backup_gate', max_age))


def backup_pick(sets, installed, max_age):
    """The newest set that passes the gate, or None."""
    if isinstance(sets, dict) and 'sets' in sets:
        sets = sets['sets']
    if not isinstance(sets, list):
        raise AnsibleFilterError('backup_pick: expected the sets of micropvr_backup_info, got %r' % (sets,))
    return gate.pick(sets, installed, _max_age('backup_pick', max_age))


class FilterModule(object):
    def filters(self):
        return {'backup_gate': backup_gate, 'backup_pick': backup_pick}
