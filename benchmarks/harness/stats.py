"""Pure functions of the harness: summaries, ratios, targets and outage windows (unit-tested)."""

import statistics


def summary(values):
    """{median, min, max, runs, values} of a list of numbers (the median of at least one run)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('no measurements')
    return dict(median=statistics.median(values), min=min(values), max=max(values), runs=len(values),
                values=values)


def pair_ratios(ours, raw):
    """Per-round ratios ours/raw of interleaved runs (of times, or of throughputs).

    Runs were interleaved (raw, ours, raw, ours ...), so each round's pair saw the same noise; the
    median of the per-round ratios is steadier than a ratio of medians on a noisy machine.
    """
    if len(ours) != len(raw) or not ours:
        raise ValueError('need as many ours as raw measurements, got %d and %d' % (len(ours), len(raw)))
    return [o / r for o, r in zip(ours, raw)]


def verdict(ratio, target, at_most=True):
    """(passed, text): "PASS", or "MISS by ..." saying how far the ratio is from the target.

    at_most: the target is an upper bound (times: ours <= target x raw); otherwise a lower bound
    (throughput: ours >= target x raw).
    """
    if at_most:
        if ratio <= target:
            return True, 'PASS'
        return False, 'MISS by %.2fx (%.0f%% over; needs %.1fx faster)' % (ratio - target, (ratio / target - 1) * 100,
                                                                         ratio / target)
    if ratio >= target:
        return True, 'PASS'
    return False, 'MISS by %.2fx (%.0f%% under; needs %.1fx faster)' % (target - ratio, (1 - ratio / target) * 100,
                                                                      target / ratio)


def verdict_value(value, target, unit):
    """(passed, text) of an absolute upper bound: "PASS", or "MISS by 1 window (2 > 1)".

    For figures that are not ratios to raw: a count of outage windows, CPU-seconds per host.
    """
    if value <= target:
        return True, 'PASS'
    if float(value).is_integer() and float(target).is_integer():
        excess, shown = '%d' % (value - target), ('%d', '%d')
    else:
        excess, shown = '%.2f' % (value - target), ('%.2f', '%.2f')
    plural = '' if unit.endswith('s') or excess == '1' else 's'
    return False, 'MISS by %s %s%s (%s > %s)' % (excess, unit, plural, shown[0] % value, shown[1] % target)


def linear_target(base_mb, large_mb, per_size=1.05):
    """The bound of time(large) / time(base) for a backup that scales linearly: the size ratio
    plus 5 % (4.2 for 4096 / 1024 MiB, as issue 16 asks), so that any super-linear step misses."""
    if base_mb <= 0 or large_mb <= base_mb:
        raise ValueError('the large size (%s MiB) must exceed the base size (%s MiB)' % (large_mb, base_mb))
    return per_size * large_mb / float(base_mb)


def count_windows(windows):
    """Outage windows of a run: each run of one or more consecutive failed probes is one window,
    however short (a restart blip of a few probes counts as much as the upgrade itself)."""
    return len(windows)


def outages(samples, start=None, end=None):
    """Windows of unavailability in probe samples [(wall_time, latency, ok, error), ...].

    A window opens at the first failed probe and closes at the next successful one; its length is
    the time between the two probe starts (resolution: the probe interval). Only windows that
    open within [start, end] when given are returned. A window still open at the last sample is
    returned with ``recovered`` false, closed at that sample. Samples that carry the machine's
    CPU counters (busy, iowait, total: the probe's fields 5-7) give each window ``cpu_busy`` and
    ``cpu_iowait``, the shares of all CPUs' time between its first and last sample.
    """
    windows = []
    opened = None
    errors = []
    last = None
    for sample in sorted(samples, key=lambda s: s[0]):
        ok, error = sample[2], sample[3] if len(sample) > 3 else ''
        last = sample
        if not ok:
            if opened is None:
                opened, errors = sample, []
            if error and error not in errors:
                errors.append(error)
        elif opened is not None:
            windows.append(_window(opened, sample, True, errors))
            opened = None
    if opened is not None:
        windows.append(_window(opened, last, False, errors))
    if start is not None:
        windows = [w for w in windows if w['start'] >= start]
    if end is not None:
        windows = [w for w in windows if w['start'] <= end]
    return windows


def _window(first, last, recovered, errors):
    window = dict(start=first[0], end=last[0], seconds=last[0] - first[0], recovered=recovered, errors=errors)
    if len(first) >= 7 and len(last) >= 7 and last[6] > first[6]:
        ticks = float(last[6] - first[6])
        window.update(cpu_busy=(last[4] - first[4]) / ticks, cpu_iowait=(last[5] - first[5]) / ticks)
    return window


def timeline(samples, start):
    """[[seconds since start, ok], ...]: the first sample, every change of state, the last sample."""
    points = []
    ordered = sorted(samples, key=lambda s: s[0])
    for index, sample in enumerate(ordered):
        ok = bool(sample[2])
        if not points or points[-1][1] != ok or index == len(ordered) - 1:
            points.append([round(sample[0] - start, 3), ok])
    return points


def longest(windows):
    return max((w['seconds'] for w in windows), default=0.0)


def fmt_seconds(value):
    if value >= 100:
        return '%.0f s' % value
    if value >= 10:
        return '%.1f s' % value
    return '%.2f s' % value


def fmt_bytes(value):
    """'812 B', '4.0 KiB', '17.3 MiB', '1.02 GiB': three significant digits at most."""
    value = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(value) < 1024 or unit == 'GiB':
            break
        value /= 1024.0
    if unit == 'B':
        return '%d B' % value
    return '%.*f %s' % (2 if abs(value) < 10 else 1 if abs(value) < 100 else 0, value, unit)


def fmt_summary(s, unit='s'):
    """'12.3 s (11.9-13.0)', for throughput '512 MiB/s (480-530)', for sizes (unit 'bytes') '17.3 MiB (17.1 MiB-17.5 MiB)'."""
    if unit == 's':
        return '%s (%s-%s)' % (fmt_seconds(s['median']), fmt_seconds(s['min']).split()[0], fmt_seconds(s['max']))
    if unit == 'bytes':
        return '%s (%s-%s)' % (fmt_bytes(s['median']), fmt_bytes(s['min']), fmt_bytes(s['max']))
    if unit == '%':
        return '%.0f%% (%.0f-%.0f)' % (s['median'] * 100, s['min'] * 100, s['max'] * 100)
    return '%.0f %s (%.0f-%.0f)' % (s['median'], unit, s['min'], s['max'])


def dpkg_lines(text):
    """[(unix time, line)] of the bench's dpkg status log (benchmarks/container/dpkg_status.py)."""
    lines = []
    for raw in text.splitlines():
        stamp, dummy, line = raw.partition(' ')
        try:
            lines.append((float(stamp), line))
        except ValueError:
            continue
    return lines


def dpkg_marks(lines, window, package):
    """What dpkg did for ``package`` around an outage ``window`` (``start``/``end`` in unix time).

    ``statuses``: [(status, seconds from the window's start)] of each change of the package's
    status (``status: <package>[:<arch>]: <status>``) from a second before the window opens to its
    end, in order. An upgrade reads: half-configured (the old prerm runs: it stops the daemon),
    half-installed (unpacking), unpacked, half-configured (the new postinst runs: it migrates and
    starts the daemon), installed. ``window_seconds``: the window's length.
    """
    statuses = []
    for stamp, line in lines:
        if not window['start'] - 1.0 <= stamp <= window['end']:
            continue
        fields = line.split()
        if len(fields) < 3 or fields[0] != 'status:' or fields[1].rstrip(':').split(':')[0] != package:
            continue
        if not statuses or statuses[-1][0] != fields[2]:
            statuses.append((fields[2], round(stamp - window['start'], 3)))
    return dict(statuses=statuses, window_seconds=round(window['end'] - window['start'], 3))
