# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet rollouts of playbooks/update.yml: the stop rule and the summary per host.

The playbook tries hosts batch by batch. Before each batch it asks ``progress`` whether the
rollout goes on; at the end ``summary`` says what became of every host, and ``report_lines``
prints it. The ``rollout_*`` filters are thin wrappers around these functions.

What is known about a host (``state``):
  tried   -- a batch reached it (the playbook set ``__micropvr_rollout_tried``);
  result  -- ``micropvr_update_result`` published by the update role, or None;
  failed  -- the update failed on it (the playbook kept the failure message).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Outcomes the update role publishes (micropvr_update_result.outcome).
SUCCEEDED = ('updated', 'already at target', 'would update')
ROLLED_BACK = ('rolled back', 'rollback failed')
ROLE_OUTCOMES = SUCCEEDED + ROLLED_BACK + ('failed', 'not attempted')
# Outcomes only the rollout gives: a host never reached, or tried with no result at all.
NOT_ATTEMPTED = 'not attempted'
UNREACHABLE = 'unreachable'
FAILED = 'failed'


class RolloutError(ValueError):
    """Input the rollout logic cannot work with; the message names what is wrong."""


def max_fail_percentage(value):
    """micropvr_max_fail_percentage as a float from 0 to 100 (a trailing % is allowed)."""
    text = value
    if isinstance(text, str):
        text = text.strip()
        if text.endswith('%'):
            text = text[:-1]
    if isinstance(text, bool):
        text = None
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise RolloutError('micropvr_max_fail_percentage must be a number from 0 to 100, got %r' % (value,))
    if not 0 <= number <= 100:
        raise RolloutError('micropvr_max_fail_percentage must be from 0 to 100, got %r' % (value,))
    return number


def _check_result(host, result):
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise RolloutError('host %s: micropvr_update_result must be a dict, got %r' % (host, result))
    outcome = result.get('outcome')
    if outcome is not None and outcome not in ROLE_OUTCOMES:
        raise RolloutError('host %s: unknown update outcome %r (expected one of %s)'
                           % (host, outcome, ', '.join(ROLE_OUTCOMES)))
    return result


def host_outcome(host, state):
    """The outcome of one host from what the playbook knows about it (see the module doc)."""
    result = _check_result(host, state.get('result'))
    outcome = result.get('outcome')
    if state.get('failed'):
        # The role says "rolled back" or "rollback failed"; any other failure is a plain one,
        # whatever the role had noted before it stopped (e.g. "not attempted" at the lock).
        return outcome if outcome in ROLLED_BACK else FAILED
    if not state.get('tried'):
        return NOT_ATTEMPTED
    if outcome is None:
        # Tried, and neither a result nor a failure came back: the host was unreachable.
        return UNREACHABLE
    return outcome


def _states(hosts):
    if not isinstance(hosts, dict):
        raise RolloutError('expected {host: state}, got %r' % (hosts,))
    return hosts


def progress(hosts, max_fail):
    """Whether the rollout stops: more than ``max_fail`` percent of the hosts tried have failed.

    ``hosts`` is {host: state} in inventory order. Returns ``stopped`` (bool), ``tried`` and
    ``failed`` (host names, in that order) and ``failed_percentage``.
    """
    limit = max_fail_percentage(max_fail)
    tried, failed = [], []
    for host, state in _states(hosts).items():
        if not state.get('tried'):
            continue
        tried.append(host)
        if host_outcome(host, state) not in SUCCEEDED:
            failed.append(host)
    percentage = len(failed) * 100.0 / len(tried) if tried else 0.0
    return dict(stopped=bool(tried) and percentage > limit, tried=tried, failed=failed,
                failed_percentage=percentage)


def summary(hosts):
    """{host: {outcome, from, to, backup_id}}, the set_stats artifact ``micropvr_rollout``."""
    result = {}
    for host, state in _states(hosts).items():
        update = _check_result(host, state.get('result'))
        result[host] = {
            'outcome': host_outcome(host, state),
            'from': dict(update.get('from_versions') or {}),
            'to': dict(update.get('to_versions') or {}),
            'backup_id': update.get('backup_id') or None,
        }
    return result


def _versions(versions):
    return ', '.join('%s %s' % (name, versions[name]) for name in sorted(versions))


def report_lines(rollout):
    """One line per host of a ``summary``: ``host: OUTCOME (from -> to; backup id)``."""
    if not isinstance(rollout, dict):
        raise RolloutError('expected the rollout summary {host: {outcome, from, to, backup_id}}, got %r' % (rollout,))
    lines = []
    for host, entry in rollout.items():
        if not isinstance(entry, dict) or 'outcome' not in entry:
            raise RolloutError('host %s: expected {outcome, from, to, backup_id}, got %r' % (host, entry))
        line = '%s: %s' % (host, str(entry['outcome']).upper())
        if entry.get('from'):
            # Every package goes to the same version: name it once.
            targets = []
            for version in (entry.get('to') or {}).values():
                if version not in targets:
                    targets.append(version)
            line += ' (%s -> %s%s)' % (_versions(entry['from']), ', '.join(targets),
                                       '; backup %s' % entry['backup_id'] if entry.get('backup_id') else '')
        lines.append(line)
    return lines
