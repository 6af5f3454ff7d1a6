"""A verified backup set older than the maximum age does not open the gate."""

import re
import time

import pytest

from gatelib import TARGET, assert_unchanged, history, host_state, run_module, take_backup
from micropvr_testlib import backup_ids, run_playbook


def test_backup_older_than_max_age_is_refused(host):
    backup_id = take_backup(host, 'gate: too old')
    time.sleep(4)
    before = host_state(host)
    rc, result = run_module(host, 'micropvr_install', version=TARGET, backup_id=backup_id, max_age=1)
    assert rc != 0 and result.get('changed') is False, result
    assert 'refusing to install %s: the backup gate is closed' % TARGET in result['msg']
    # The age is the only problem: the set itself verifies and matches what is installed.
    (problem,) = result['gate_problems']
    assert re.match(r'backup set %s was taken \d+ s ago, more than micropvr_backup_max_age \(1 s\)$' % backup_id,
                    problem), problem
    assert int(re.search(r'taken (\d+) s ago', problem).group(1)) >= 3
    assert_unchanged(host, before)


@pytest.fixture(scope='module')
def gate_closed_in_play(host):
    """update.yml whose own pre-update backup is already too old for the gate (max age 0 s)."""
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=TARGET, micropvr_backup_max_age=0)
    new_sets = sorted(set(backup_ids(host)) - set(before['backup_ids']))
    return dict(before=before, result=result, new_sets=new_sets)


def test_update_playbook_is_refused_by_the_gate_and_changes_nothing(host, gate_closed_in_play):
    result, before = gate_closed_in_play['result'], gate_closed_in_play['before']
    assert result.returncode != 0, result.output
    assert 'more than micropvr_backup_max_age (0 s)' in result.output
    # The role took its pinned pre-update set, and nothing else changed.
    assert len(gate_closed_in_play['new_sets']) == 1
    before = dict(before, backup_ids=before['backup_ids'] + gate_closed_in_play['new_sets'])
    assert_unchanged(host, before, history_may_grow=True)


def test_history_does_not_say_the_gate_passed_when_it_refused(host, gate_closed_in_play):
    new = history(host)[len(gate_closed_in_play['before']['history']):]
    updates = [event for event in new if event['event'] == 'update']
    assert len(updates) == 1, new
    assert updates[0]['target'] == TARGET
    assert updates[0]['outcome'] != 'updated'
    assert updates[0]['gate'] != 'passed', \
        'the host history records gate "passed" for an update that the backup gate refused: %s' % updates[0]
