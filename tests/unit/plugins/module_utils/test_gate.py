"""Unit tests for plugins/module_utils/gate.py (may an update go ahead on the strength of a backup set?)."""

import datetime

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils.gate import (
    CLOCK_SKEW_SECONDS,
    gate_problems,
    installed_versions,
    parse_time,
    pick,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 26, 22, 15, 0, tzinfo=UTC)
HOUR = 3600
INSTALLED = {'micropvr': '1.9.0-1', 'micropvs': '2.3-1'}


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def backup(backup_id='20261126T220000Z', status='verified', age=900, packages=None, problems=None, **extra):
    """A set as micropvr_backup_info lists it, taken ``age`` seconds before NOW."""
    entry = dict(id=backup_id, path='/var/backups/micropvr/' + backup_id, status=status,
                 created_at=iso(NOW - datetime.timedelta(seconds=age)), reason='update', host='pvr1',
                 packages=dict(INSTALLED) if packages is None else packages, pinned=False,
                 verified_at=iso(NOW) if status == 'verified' else None, size=1234, problems=problems or [])
    entry.update(extra)
    return entry


# --- installed_versions --------------------------------------------------------------------------

def test_installed_versions_from_plain_versions():
    assert installed_versions({'micropvr': '1.9.0-1', 'micropvs': None}) == {'micropvr': '1.9.0-1', 'micropvs': None}


def test_installed_versions_from_facts():
    facts = {
        'micropvr': {'installed': True, 'version': '1.9.0-1', 'status': 'install ok installed'},
        'micropvs': {'installed': False, 'version': '2.3-1'},
        'other': {'version': '3.0'},  # no 'installed' key: taken as installed
    }
    assert installed_versions(facts) == {'micropvr': '1.9.0-1', 'micropvs': None, 'other': '3.0'}


@pytest.mark.parametrize('empty', [None, {}])
def test_installed_versions_of_nothing(empty):
    assert installed_versions(empty) == {}


def test_installed_versions_returns_a_new_dict():
    source = {'micropvr': '1.0'}
    result = installed_versions(source)
    result['micropvr'] = 'x'
    assert source == {'micropvr': '1.0'}


# --- parse_time ----------------------------------------------------------------------------------

def test_parse_time():
    assert parse_time('2026-11-26T22:15:00Z') == NOW
    assert parse_time('2026-11-26T22:15:00Z').tzinfo is UTC


@pytest.mark.parametrize('text', ['', '2026-11-26 22:15:00', '2026-11-26T22:15:00', '2026-11-26T22:15:00+00:00',
                                  'yesterday'])
def test_parse_time_invalid(text):
    with pytest.raises(ValueError):
        parse_time(text)


# --- gate_problems -------------------------------------------------------------------------------

def test_verified_fresh_matching_set_qualifies():
    assert gate_problems(backup(), INSTALLED, HOUR, now=NOW) == []


def test_qualifies_with_facts_as_installed():
    facts = {'micropvr': {'installed': True, 'version': '1.9.0-1'}, 'micropvs': {'installed': True, 'version': '2.3-1'}}
    assert gate_problems(backup(), facts, HOUR, now=NOW) == []


def test_extra_packages_in_the_set_do_not_matter():
    packages = dict(INSTALLED, libfoo='1.0')
    assert gate_problems(backup(packages=packages), INSTALLED, HOUR, now=NOW) == []


def test_damaged_set_names_its_problems():
    entry = backup(status='damaged', problems=['manifest.json was changed after the backup was taken (seal mismatch)',
                                               'micropvr.deb is missing'])
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is damaged: manifest.json was changed after the backup was taken '
        '(seal mismatch); micropvr.deb is missing',
    ]


def test_unverified_set_without_problems():
    assert gate_problems(backup(status='unverified'), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is unverified',
    ]


@pytest.mark.parametrize('status', [None, ''])
def test_set_of_unknown_status(status):
    assert gate_problems(backup(status=status), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is of unknown status',
    ]


def test_set_without_status_key():
    entry = backup()
    del entry['status']
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == ['backup set 20261126T220000Z is of unknown status']


def test_too_old():
    assert gate_problems(backup(age=2 * HOUR), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z was taken 7200 s ago, more than micropvr_backup_max_age (3600 s)',
    ]


def test_exactly_max_age_still_qualifies():
    assert gate_problems(backup(age=HOUR), INSTALLED, HOUR, now=NOW) == []
    assert gate_problems(backup(age=HOUR + 1), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z was taken 3601 s ago, more than micropvr_backup_max_age (3600 s)',
    ]


def test_max_age_zero_accepts_only_this_second():
    assert gate_problems(backup(age=0), INSTALLED, 0, now=NOW) == []
    assert len(gate_problems(backup(age=1), INSTALLED, 0, now=NOW)) == 1


def test_future_dated_within_clock_skew_qualifies():
    assert CLOCK_SKEW_SECONDS == 300
    assert gate_problems(backup(age=-300), INSTALLED, HOUR, now=NOW) == []


def test_future_dated_beyond_clock_skew():
    assert gate_problems(backup(age=-301), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is dated 301 s in the future; check the host clock',
    ]
    assert gate_problems(backup(age=-86400), INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is dated 86400 s in the future; check the host clock',
    ]


def test_package_missing_from_set():
    entry = backup(packages={'micropvr': '1.9.0-1'})
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == ['backup set 20261126T220000Z does not contain micropvs']


def test_set_without_packages_key():
    entry = backup()
    del entry['packages']
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z does not contain micropvr',
        'backup set 20261126T220000Z does not contain micropvs',
    ]


def test_version_mismatch():
    entry = backup(backup_id='20261126T221500Z', packages={'micropvr': '1.9.0-1', 'micropvs': '2.3-1'})
    installed = {'micropvr': '1.10.0-1', 'micropvs': '2.3-1'}
    assert gate_problems(entry, installed, HOUR, now=NOW) == [
        'backup set 20261126T221500Z has micropvr 1.9.0-1, but 1.10.0-1 is installed',
    ]


def test_versions_compare_as_strings_not_dpkg_equal():
    # The set must hold exactly what is installed: dpkg-equal spellings are not the same .deb.
    entry = backup(packages={'micropvr': '1.9.0-1', 'micropvs': '2.3-1'})
    assert gate_problems(entry, {'micropvr': '0:1.9.0-1'}, HOUR, now=NOW) == [
        'backup set 20261126T220000Z has micropvr 1.9.0-1, but 0:1.9.0-1 is installed',
    ]


def test_package_not_installed():
    facts = {'micropvr': {'installed': True, 'version': '1.9.0-1'}, 'micropvs': {'installed': False, 'version': None}}
    assert gate_problems(backup(), facts, HOUR, now=NOW) == [
        'micropvs is not installed, so no backup can match it',
    ]


@pytest.mark.parametrize('created_at, shown', [
    (None, 'None'),
    ('', "''"),
    ('yesterday', "'yesterday'"),
    ('2026-11-26 22:00:00', "'2026-11-26 22:00:00'"),
    ('2026-13-01T00:00:00Z', "'2026-13-01T00:00:00Z'"),
])
def test_invalid_created_at(created_at, shown):
    entry = backup(created_at=created_at)
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z has no valid creation time (%s)' % shown,
    ]


def test_non_string_created_at_is_a_problem_not_a_crash():
    entry = backup(created_at=1764195300)
    assert gate_problems(entry, INSTALLED, HOUR, now=NOW) == [
        'backup set 20261126T220000Z has no valid creation time (1764195300)',
    ]


def test_every_problem_is_reported_in_order():
    entry = backup(status='damaged', problems=['seal mismatch'], age=2 * HOUR,
                   packages={'micropvr': '1.8.0-1'})
    installed = {'micropvs': '2.3-1', 'micropvr': '1.9.0-1', 'micropvx': None}
    assert gate_problems(entry, installed, HOUR, now=NOW) == [
        'backup set 20261126T220000Z is damaged: seal mismatch',
        'backup set 20261126T220000Z was taken 7200 s ago, more than micropvr_backup_max_age (3600 s)',
        'backup set 20261126T220000Z has micropvr 1.8.0-1, but 1.9.0-1 is installed',
        'backup set 20261126T220000Z does not contain micropvs',
        'micropvx is not installed, so no backup can match it',
    ]


def test_default_now_is_the_current_time():
    fresh = backup()
    fresh['created_at'] = iso(datetime.datetime.now(UTC) - datetime.timedelta(seconds=60))
    assert gate_problems(fresh, INSTALLED, HOUR) == []
    old = dict(fresh, created_at='2000-01-01T00:00:00Z')
    problems = gate_problems(old, INSTALLED, HOUR)
    assert len(problems) == 1 and problems[0].startswith('backup set 20261126T220000Z was taken ')


# --- pick ----------------------------------------------------------------------------------------

def test_pick_newest_qualifying():
    sets = [backup('20261126T200000Z', age=2000), backup('20261126T210000Z', age=1000),
            backup('20261126T190000Z', age=3000)]
    assert pick(sets, INSTALLED, HOUR, now=NOW)['id'] == '20261126T210000Z'


def test_pick_skips_newer_sets_that_do_not_qualify():
    sets = [
        backup('20261126T200000Z', age=2000),
        backup('20261126T210000Z', age=1500, status='damaged', problems=['seal mismatch']),
        backup('20261126T211000Z', age=1200, packages={'micropvr': '1.8.0-1', 'micropvs': '2.3-1'}),
        backup('20261126T212000Z', age=1000, status='unverified'),
    ]
    chosen = pick(sets, INSTALLED, HOUR, now=NOW)
    assert chosen is sets[0]


def test_pick_none_when_nothing_qualifies():
    sets = [backup('20261126T200000Z', age=2 * HOUR), backup('20261126T210000Z', status='unverified')]
    assert pick(sets, INSTALLED, HOUR, now=NOW) is None
    assert pick([], INSTALLED, HOUR, now=NOW) is None


def test_pick_orders_same_second_counters_numerically():
    sets = [backup('20261126T220000Z'), backup('20261126T220000Z-10'), backup('20261126T220000Z-2'),
            backup('20261126T215959Z-99')]
    assert pick(sets, INSTALLED, HOUR, now=NOW)['id'] == '20261126T220000Z-10'
    # without -10, -2 beats the plain id of the same second
    assert pick([s for s in sets if s['id'] != '20261126T220000Z-10'], INSTALLED, HOUR, now=NOW)['id'] \
        == '20261126T220000Z-2'
    # the plain id beats a high counter of an earlier second
    assert pick([sets[0], sets[3]], INSTALLED, HOUR, now=NOW)['id'] == '20261126T220000Z'


def test_pick_order_ignores_created_at():
    # The id is the creation time; pick trusts it, not the (possibly edited) created_at.
    older_id = backup('20261126T200000Z', age=10)
    newer_id = backup('20261126T210000Z', age=1000)
    assert pick([older_id, newer_id], INSTALLED, HOUR, now=NOW) is newer_id


def test_pick_does_not_modify_its_input():
    sets = [backup('20261126T200000Z'), backup('20261126T210000Z')]
    before = [dict(s) for s in sets]
    pick(sets, INSTALLED, HOUR, now=NOW)
    assert sets == before
