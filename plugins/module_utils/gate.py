# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup gate: may an update go ahead on the strength of this backup set?

A set qualifies only when it verifies, is younger than the maximum age, and holds exactly the
package versions installed now. The same rule serves the install module (which enforces it)
and the ``backup_gate`` / ``backup_pick`` filters (which explain and choose).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset

# A set stamped this far in the future means a clock problem, not a fresh backup.
CLOCK_SKEW_SECONDS = 300


def installed_versions(packages):
    """{name: version or None} from {name: version} or from micropvr_facts' package dicts."""
    result = {}
    for name, info in (packages or {}).items():
        if isinstance(info, dict):
            result[name] = info.get('version') if info.get('installed', True) else None
        else:
            result[name] = info
    return result


def parse_time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def gate_problems(backup, installed, max_age, now=None):
    """Why ``backup`` (a micropvr_backup_info set) does not qualify; empty when it does."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    label = 'backup set %s' % backup.get('id')
    problems = []
    status = backup.get('status')
    if status != backupset.STATUS_VERIFIED:
        detail = '; '.join(backup.get('problems') or [])
        problems.append('%s is %s%s' % (label, status or 'of unknown status', ': ' + detail if detail else ''))
    try:
        created = parse_time(backup.get('created_at') or '')
    except (TypeError, ValueError):
        problems.append('%s has no valid creation time (%r)' % (label, backup.get('created_at')))
    else:
        age = (now - created).total_seconds()
        if age > max_age:
            # Rounded up, so that the age shown is always more than the maximum it broke.
            problems.append('%s was taken %d s ago, more than micropvr_backup_max_age (%d s)'
                            % (label, math.ceil(age), max_age))
        elif age < -CLOCK_SKEW_SECONDS:
            problems.append('%s is dated %d s in the future; check the host clock' % (label, -age))
    saved = backup.get('packages') or {}
    for name, version in sorted(installed_versions(installed).items()):
        if version is None:
            problems.append('%s is not installed, so no backup can match it' % name)
        elif name not in saved:
            problems.append('%s does not contain %s' % (label, name))
        elif saved[name] != version:
            problems.append('%s has %s %s, but %s is installed' % (label, name, saved[name], version))
    return problems


def pick(sets, installed, max_age, now=None):
    """The newest set that passes the gate, or None."""
    for candidate in sorted(sets, key=lambda s: backupset.backup_id_sort_key(s['id']), reverse=True):
        if not gate_problems(candidate, installed, max_age, now):
            return candidate
    return None
