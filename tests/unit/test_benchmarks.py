"""The pure parts of the `make bench` harness: outage windows, ratios, verdicts and the report."""

import json
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

from harness import ansible, report, stats  # noqa: E402  pylint: disable=wrong-import-position


def probes(pattern, start=100.0, interval=0.05):
    """Probe samples from a string: '+' answered is_alive true, '-' did not."""
    return [[start + i * interval, 0.001, char == '+', '' if char == '+' else 'ConnectionRefusedError']
            for i, char in enumerate(pattern)]


def test_outage_runs_from_first_failure_to_next_success():
    windows = stats.outages(probes('+++----++'))
    assert len(windows) == 1
    assert windows[0]['start'] == pytest.approx(100.15)
    assert windows[0]['seconds'] == pytest.approx(0.2)
    assert windows[0]['recovered'] is True
    assert windows[0]['errors'] == ['ConnectionRefusedError']


def test_outages_every_window_and_the_longest():
    windows = stats.outages(probes('++--+++------+-+'))
    assert [round(w['seconds'], 3) for w in windows] == [0.1, 0.3, 0.05]
    assert stats.longest(windows) == pytest.approx(0.3)
    assert stats.longest([]) == 0.0


def test_outage_still_open_at_the_end_is_not_recovered():
    windows = stats.outages(probes('++---'))
    assert windows[-1]['recovered'] is False


def test_outages_only_those_opening_within_the_run():
    samples = probes('--++++--++')  # a window before the run started is not the run's
    windows = stats.outages(samples, start=100.1, end=100.5)
    assert len(windows) == 1 and windows[0]['start'] == pytest.approx(100.3)


def test_timeline_keeps_first_changes_and_last():
    assert stats.timeline(probes('+++--++'), 100.0) == [[0.0, True], [0.15, False], [0.25, True], [0.3, True]]


def test_summary_and_pair_ratios():
    s = stats.summary([3, 1, 2])
    assert (s['median'], s['min'], s['max'], s['runs']) == (2, 1, 3, 3)
    assert stats.pair_ratios([2, 4], [1, 2]) == [2, 2]
    with pytest.raises(ValueError):
        stats.pair_ratios([1], [1, 2])
    with pytest.raises(ValueError):
        stats.summary([])


@pytest.mark.parametrize('ratio, target, at_most, passed, text', [
    (1.05, 1.10, True, True, 'pass'),
    (2.20, 1.10, True, False, 'MISS by 1.10x (100% over; needs 2.0x faster)'),
    (0.95, 0.90, False, True, 'pass'),
    (0.45, 0.90, False, False, 'MISS by 0.45x (50% under; needs 2.0x faster)'),
])
def test_verdict_says_by_how_much(ratio, target, at_most, passed, text):
    assert stats.verdict(ratio, target, at_most=at_most) == (passed, text)


def test_task_log_counts_results_per_host(tmp_path):
    log = tmp_path / 'tasks.jsonl'
    records = [dict(event='task_start', task='a', time=1.0),
               dict(event='result', status='ok', host='h1', task='a', action='x', start=1.0, end=1.5, changed=False),
               dict(event='result', status='skipped', host='h1', task='b', action='x', start=2.0, end=2.1, changed=False),
               dict(event='result', status='ok', host='h1', task='c', action='x', start=3.0, end=5.0, changed=True)]
    log.write_text(''.join(json.dumps(r) + '\n' for r in records))
    hosts = ansible.read_task_log(str(log))
    assert hosts['h1']['counts'] == dict(ok=2, skipped=1)
    assert ansible.tasks_run(hosts['h1']) == 2
    assert ansible.task_times(hosts['h1']) == [('c', 2.0), ('a', 0.5)]


def test_readme_table_is_replaced_between_the_markers_only(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# x\n\n## Performance\n\n%s\nold\n%s\n\nafter\n' % (report.README_BEGIN, report.README_END))
    assert report.update_readme(str(readme), 'new table\n')
    assert readme.read_text() == '# x\n\n## Performance\n\n%s\nnew table\n%s\n\nafter\n' % (
        report.README_BEGIN, report.README_END)
    plain = tmp_path / 'PLAIN.md'
    plain.write_text('no markers\n')
    assert not report.update_readme(str(plain), 'new table\n')


def test_report_rows_mark_misses_and_info_rows():
    def fig(ours, raw):
        return dict(ours=stats.summary(ours), raw=stats.summary(raw), ratio=stats.summary(stats.pair_ratios(ours, raw)))
    results = dict(update=dict(update_longest=fig([5.0, 5.2], [5.0, 5.0]), update_seconds=fig([20, 21], [5, 6]),
                               rollback_seconds=fig([12, 13], [1, 1]), rollback_longest=fig([0.4, 0.5], [0.3, 0.3])))
    table = report.rows(results, dict(db_mb=64))
    results_by_title = dict((row[0].strip(), row[5]) for row in table)
    assert results_by_title['2. Update downtime 1.9.0 -> 1.10.0, longest window (s)'] == 'pass'
    assert results_by_title['3. Rollback time (RTO), wall time (s)'].startswith('MISS by ')
    assert results_by_title['update wall time (s)'] == 'info'
    assert [(m['item'], m['figure']) for m in report.misses(table)] == [(3, '3. Rollback time (RTO), wall time (s)')]
    assert report.markdown(table).count('\n') == len(table) + 1


@pytest.mark.parametrize('value, text', [(812, '812 B'), (4096, '4.00 KiB'), (18140000, '17.3 MiB'),
                                         (512 * 1048576, '512 MiB'), (1095216660, '1.02 GiB')])
def test_sizes_are_shown_in_binary_units(value, text):
    assert stats.fmt_bytes(value) == text


def test_offsite_rows_compare_the_second_set_with_the_first():
    def fig(second, first):
        return dict(second=stats.summary(second), first=stats.summary(first),
                    ratio=stats.summary(stats.pair_ratios(second, first)))
    results = dict(offsite=dict(seconds=fig([6.0], [8.0]), send_seconds=fig([1.0], [4.0]),
                                growth_bytes=fig([2 * 1048576], [64 * 1048576]), set_bytes=stats.summary([64 * 1048576]),
                                recover=dict(seconds=stats.summary([30.0]), fetch_seconds=stats.summary([6.0]),
                                             fetch_share=stats.summary([0.2]), failed=0)))
    table = report.rows(results, dict(db_mb=64))
    by_title = dict((row[0].strip(), row[1:]) for row in table)
    growth = by_title['repository growth (du -sb), second set vs first']
    assert growth[:3] == ('2.00 MiB (2.00 MiB-2.00 MiB)', '64.0 MiB (64.0 MiB-64.0 MiB)', '0.03x (0.03-0.03)')
    assert growth[4] == 'info; the set is 64.0 MiB, the second adds 3.1% of it'
    send = by_title['of which the task "Send the set to the off-host repository" (s)']
    assert send[:3] == ('1.00 s (1.00-1.00 s)', '4.00 s (4.00-4.00 s)', '0.25x (0.25-0.25)')
    fetch = [row for title, row in by_title.items() if title.startswith('of which the task "Fetch')][0]
    assert fetch[4] == 'info; 20% (20-20) of the recovery'
    assert report.misses(table) == []
    results['offsite']['recover'] = dict(failed=1)  # a recovery that failed is said so, not left out
    assert report.rows(results, dict(db_mb=64))[-1][5] == 'FAILED in all 1 run(s) (errors in the JSON)'
