"""The rollout stop rule and summary of playbooks/update.yml (module_utils/rollout.py), pure logic."""

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import rollout

FROM = {'micropvr': '1.9.0-1', 'micropvs': '1.9.0-1'}
TO = {'micropvr': '1.10.0-1', 'micropvs': '1.10.0-1'}


def done(outcome, backup_id='20261126T221500Z'):
    """A host a batch reached and whose update role published ``outcome``."""
    return dict(tried=True, failed=outcome in ('failed', 'rolled back', 'rollback failed'),
                result=dict(outcome=outcome, from_versions=dict(FROM), to_versions=dict(TO), backup_id=backup_id))


UNREACHABLE = dict(tried=True, failed=False, result=None)
UNTRIED = dict(tried=False, failed=False, result=None)


@pytest.mark.parametrize('state, outcome', [
    (UNTRIED, 'not attempted'),
    (UNREACHABLE, 'unreachable'),
    (done('updated'), 'updated'),
    (done('already at target'), 'already at target'),
    (done('would update'), 'would update'),
    (done('rolled back'), 'rolled back'),
    (done('rollback failed'), 'rollback failed'),
    # Failed before the role published anything (pre-flight), or after it noted "not attempted"
    # (stopped at another run's lock): a plain failure.
    (dict(tried=True, failed=True, result=None), 'failed'),
    (dict(tried=True, failed=True, result=dict(outcome='not attempted')), 'failed'),
])
def test_host_outcome(state, outcome):
    assert rollout.host_outcome('pvr1', state) == outcome


def test_nothing_tried_never_stops():
    assert rollout.progress({'a': UNTRIED, 'b': UNTRIED}, 0) == dict(
        stopped=False, tried=[], failed=[], failed_percentage=0.0)


def test_stop_at_the_first_failure_by_default():
    progress = rollout.progress({'a': done('rolled back'), 'b': UNTRIED, 'c': UNTRIED}, 0)
    assert progress == dict(stopped=True, tried=['a'], failed=['a'], failed_percentage=100.0)


def test_an_unreachable_host_counts_as_failed():
    progress = rollout.progress({'a': done('updated'), 'b': UNREACHABLE}, 0)
    assert progress['failed'] == ['b'] and progress['stopped'] is True


@pytest.mark.parametrize('limit, stopped', [(0, True), (24.9, True), (25, False), ('25%', False), ('50', False)])
def test_stop_only_when_more_than_the_limit_failed(limit, stopped):
    hosts = dict((name, done('updated')) for name in 'abc')
    hosts['d'] = done('failed')
    hosts['e'] = UNTRIED
    progress = rollout.progress(hosts, limit)
    assert progress['failed_percentage'] == 25.0
    assert progress['stopped'] is stopped


def test_successes_never_stop_the_rollout():
    hosts = {'a': done('updated'), 'b': done('already at target'), 'c': done('would update')}
    assert rollout.progress(hosts, 0)['stopped'] is False


def test_order_of_hosts_is_kept():
    hosts = dict((name, done('failed')) for name in ['pvr9', 'pvr1', 'pvr5'])
    assert rollout.progress(hosts, 100)['failed'] == ['pvr9', 'pvr1', 'pvr5']


@pytest.mark.parametrize('value, message', [
    ('many', "micropvr_max_fail_percentage must be a number from 0 to 100, got 'many'"),
    (None, 'micropvr_max_fail_percentage must be a number from 0 to 100, got None'),
    (True, 'micropvr_max_fail_percentage must be a number from 0 to 100, got True'),
    (-1, 'micropvr_max_fail_percentage must be from 0 to 100, got -1'),
    ('150%', "micropvr_max_fail_percentage must be from 0 to 100, got '150%'"),
])
def test_bad_max_fail_percentage(value, message):
    with pytest.raises(rollout.RolloutError) as info:
        rollout.progress({'a': UNTRIED}, value)
    assert str(info.value) == message


def test_summary_shape():
    """The set_stats artifact micropvr_rollout: AWX and the fleet scenario read exactly this."""
    summary = rollout.summary({'a': done('updated'), 'b': UNREACHABLE, 'c': UNTRIED,
                               'd': dict(tried=True, failed=True, result=None)})
    assert list(summary) == ['a', 'b', 'c', 'd']
    assert summary['a'] == {'outcome': 'updated', 'from': FROM, 'to': TO, 'backup_id': '20261126T221500Z'}
    for host, outcome in (('b', 'unreachable'), ('c', 'not attempted'), ('d', 'failed')):
        assert summary[host] == {'outcome': outcome, 'from': {}, 'to': {}, 'backup_id': None}


def test_summary_without_backup():
    summary = rollout.summary({'a': done('updated', backup_id=None)})
    assert summary['a']['backup_id'] is None


@pytest.mark.parametrize('result, message', [
    ('updated', "host a: micropvr_update_result must be a dict, got 'updated'"),
    (dict(outcome='exploded'), "host a: unknown update outcome 'exploded' (expected one of updated, "),
])
def test_bad_results_are_named(result, message):
    with pytest.raises(rollout.RolloutError) as info:
        rollout.summary({'a': dict(tried=True, failed=False, result=result)})
    assert str(info.value).startswith(message)


def test_bad_hosts():
    with pytest.raises(rollout.RolloutError, match=r"^expected \{host: state\}, got \['a'\]$"):
        rollout.summary(['a'])


def test_report_lines():
    summary = rollout.summary({'a': done('updated'), 'b': done('rolled back', backup_id=None), 'c': UNTRIED,
                               'd': UNREACHABLE})
    assert rollout.report_lines(summary) == [
        'a: UPDATED (micropvr 1.9.0-1, micropvs 1.9.0-1 -> 1.10.0-1; backup 20261126T221500Z)',
        'b: ROLLED BACK (micropvr 1.9.0-1, micropvs 1.9.0-1 -> 1.10.0-1)',
        'c: NOT ATTEMPTED',
        'd: UNREACHABLE',
    ]


def test_report_names_each_target_version_once_in_order():
    summary = {'a': dict(outcome='updated', from_versions=None, backup_id=None,
                         **{'from': {'x': '1', 'y': '1'}, 'to': {'x': '2', 'y': '3'}})}
    assert rollout.report_lines(summary) == ['a: UPDATED (x 1, y 1 -> 2, 3)']


@pytest.mark.parametrize('summary, message', [
    ([], r'^expected the rollout summary \{host: \{outcome, from, to, backup_id\}\}, got \[\]$'),
    ({'a': {'from': {}}}, r"^host a: expected \{outcome, from, to, backup_id\}, got \{'from': \{\}\}$"),
])
def test_report_bad_input(summary, message):
    with pytest.raises(rollout.RolloutError, match=message):
        rollout.report_lines(summary)
