#!/usr/bin/env python3
"""`make bench`: backup throughput, update downtime, rollback time, fleet scaling and Ansible
overhead of the collection, side by side with the raw commands an expert would type; and what
off-host copies cost: a second, nearly identical set against the first (deduplication), and the
time to recover a lost host from the repository.

Runs in bench-* Debian 12 containers (removed at the end, also on failure or Ctrl-C), prints a
table and writes benchmarks/results/<UTC time>.json, a downtime plot, and the README's
performance table. A missed target is reported, not an error; a failed run is an error.
benchmarks/README.md says what each figure measures.

Settings (environment variables, or the options below):
  BENCH_DB_MB         size of the generated records.db for the backup and off-host benchmarks (1024)
  BENCH_LINEAR_DB_MB  records.db grown to this size after item 1 and backed up again; the figure is
                      its backup time / item 1's (4096; 0 skips it)
  BENCH_RUNS          runs of every figure; each figure is their median (3)
  BENCH_FLEET         fleet sizes, space-separated; the first is the base of the ratio ("1 4 8 16")
  BENCH_UPDATE_DB_MB  records.db for the update and rollback benchmark (256)
  BENCH_FLEET_DB_MB   records.db of each fleet host and the pipelining host (16)
  BENCH_ONLY          some of: backup update fleet pipelining offsite (all)
  BENCH_FLEET_PIN     CONTROLLER_CPUS:HOST_CPUS, e.g. 0:1: item 4's controller and hosts on separate
                      CPUs (an experiment: the controller then competes with no host; unset: none)
  BENCH_RESULTS_DIR   where results go (benchmarks/results); only a run of every figure into that
                      one updates the README
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from harness import docker, phases, report  # noqa: E402  pylint: disable=wrong-import-position

PHASES = ('backup', 'update', 'fleet', 'pipelining', 'offsite')
DEFAULT_RESULTS = os.path.join(HERE, 'results')
PLOT_LATEST = 'downtime-latest.png'
RECOMMENDED_CFG = os.path.join(ROOT, 'docs', 'ansible.cfg.example')


def parse_args(argv):
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--db-mb', type=int, default=int(env('BENCH_DB_MB') or 1024))
    parser.add_argument('--linear-db-mb', type=int, default=int(env('BENCH_LINEAR_DB_MB') or 4096))
    parser.add_argument('--runs', type=int, default=int(env('BENCH_RUNS') or 3))
    parser.add_argument('--fleet', default=env('BENCH_FLEET') or '1 4 8 16')
    parser.add_argument('--update-db-mb', type=int, default=int(env('BENCH_UPDATE_DB_MB') or 256))
    parser.add_argument('--fleet-db-mb', type=int, default=int(env('BENCH_FLEET_DB_MB') or 16))
    parser.add_argument('--only', default=env('BENCH_ONLY') or ' '.join(PHASES))
    parser.add_argument('--results-dir', default=env('BENCH_RESULTS_DIR') or DEFAULT_RESULTS)
    parser.add_argument('--fleet-pin', default=env('BENCH_FLEET_PIN') or '')
    parser.add_argument('--probe-interval', type=float, default=0.05)
    parser.add_argument('--standin-repo', default=env('MICROPVR_STANDIN_REPO') or os.path.join(ROOT, 'build', 'standin-repo'))
    args = parser.parse_args(argv)
    args.fleet = [int(n) for n in args.fleet.replace(',', ' ').split()]
    args.only = [p for p in args.only.replace(',', ' ').split()]
    unknown = [p for p in args.only if p not in PHASES]
    if unknown:
        parser.error('BENCH_ONLY: unknown %s (choose from %s)' % (', '.join(unknown), ', '.join(PHASES)))
    if args.runs < 1 or args.db_mb < 1 or args.update_db_mb < 1 or args.fleet_db_mb < 1:
        parser.error('runs and sizes must be at least 1')
    if args.linear_db_mb and args.linear_db_mb <= args.db_mb:
        parser.error('BENCH_LINEAR_DB_MB (%d) must be larger than BENCH_DB_MB (%d), or 0 to skip the linearity figure'
                     % (args.linear_db_mb, args.db_mb))
    if not args.fleet or min(args.fleet) < 1:
        parser.error('BENCH_FLEET: give one or more host counts, e.g. "1 4 8 16"')
    args.fleet_pin = parse_pin(args.fleet_pin, parser.error)
    return args


def parse_pin(value, error):
    """BENCH_FLEET_PIN 'CONTROLLER_CPUS:HOST_CPUS' (CPU lists as taskset and docker take them, such
    as 0 or 0-1,3) -> (controller, hosts), or None when empty; error(message) on anything else."""
    if not value.strip():
        return None
    parts = value.strip().split(':')
    cpu_list = re.compile(r'^\d+(-\d+)?(,\d+(-\d+)?)*$')
    if len(parts) != 2 or not all(cpu_list.match(part) for part in parts):
        error('BENCH_FLEET_PIN: %r is not CONTROLLER_CPUS:HOST_CPUS, e.g. 0:1' % value)
        return None
    return parts[0], parts[1]


class Log(object):
    def __init__(self):
        self.started = time.time()

    def __call__(self, message):
        elapsed = int(time.time() - self.started)
        print('[bench %02d:%02d] %s' % (elapsed // 60, elapsed % 60, message), flush=True)


def _terminate(signum, frame):
    raise SystemExit('bench: stopped by signal %d' % signum)


def _git(*args):
    proc = subprocess.run(['git', '-C', ROOT] + list(args), capture_output=True, text=True, check=False)
    return proc.stdout.rstrip('\n') if proc.returncode == 0 else None


def _collection():
    """Which microimpuls.micropvr the playbooks run: the working tree (with its commit) or another copy."""
    found = None
    for base in (os.environ.get('ANSIBLE_COLLECTIONS_PATH') or '').split(os.pathsep):
        candidate = os.path.join(base, 'ansible_collections', 'microimpuls', 'micropvr')
        if base and os.path.isdir(candidate):
            found = os.path.realpath(candidate)
            break
    if found is None:
        raise SystemExit('bench: microimpuls.micropvr is not under ANSIBLE_COLLECTIONS_PATH (run `make collection`)')
    info = dict(path=found)
    if found == os.path.realpath(ROOT):
        dirty = _git('status', '--porcelain', '--', 'plugins', 'roles', 'playbooks')
        info.update(git_commit=_git('rev-parse', 'HEAD'), uncommitted_changes=dirty.splitlines() if dirty else [])
    return info


def _environment():
    def version(*cmd):
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else None
    memory = None
    if os.path.exists('/proc/meminfo'):
        with open('/proc/meminfo') as handle:
            memory = round(int(handle.readline().split()[1]) / 1048576.0, 1)
    return dict(cpus=os.cpu_count(), memory_gib=memory, kernel=platform.release(), python=platform.python_version(),
                docker=docker.check_engine(), ansible_core=version(os.path.join(os.path.dirname(sys.executable),
                                                                                  'ansible'), '--version'))


def _check_space(args, log):
    root = docker.root_dir()
    need = 0
    if 'backup' in args.only:
        # data, a raw copy, a backup set, slack; the linearity figure grows the same data to ~3x
        # its size at least (the grown file, a set and a raw copy of it), checked again before
        # it is generated
        need += max(4 * args.db_mb, 3 * args.linear_db_mb)
    if 'update' in args.only:
        need += 6 * args.update_db_mb  # data, pristine, raw save, backup set, migration's new table
    if 'fleet' in args.only or 'pipelining' in args.only:
        need += 5 * args.fleet_db_mb * max(args.fleet)
    if 'offsite' in args.only:
        need += 8 * args.db_mb + 512  # data, pristine, two sets, the repository, the recovered host; debs
    need += 2048
    free = shutil.disk_usage(root).free // 1048576
    if free < need:
        raise SystemExit('bench: %d MiB free under %s (the Docker data root), the chosen sizes need about %d MiB%s'
                         % (free, root, need, ' (BENCH_LINEAR_DB_MB=%d needs 3x that; 0 skips it)' % args.linear_db_mb
                            if 'backup' in args.only and args.linear_db_mb else ''))
    log('disk: %d MiB free under %s, about %d MiB needed' % (free, root, need))


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    log = Log()
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime('%Y-%m-%dT%H%M%SZ')
    os.makedirs(args.results_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='micropvr-bench-')
    # Items 2-3 also run with the recommended configuration, copied under a *.cfg name (Ansible
    # reads no other).
    recommended_cfg = os.path.join(workdir, 'recommended.cfg')
    shutil.copyfile(RECOMMENDED_CFG, recommended_cfg)
    config = dict(db_mb=args.db_mb, linear_db_mb=args.linear_db_mb if 'backup' in args.only else 0, runs=args.runs,
                  fleet=args.fleet, update_db_mb=args.update_db_mb,
                  fleet_db_mb=args.fleet_db_mb, only=args.only, probe_interval=args.probe_interval,
                  image=phases.BASE_IMAGE, recommended_cfg=recommended_cfg, fleet_pin=args.fleet_pin)
    log('settings: %s; logs in %s' % (', '.join('%s=%s' % item for item in sorted(config.items())), workdir))
    collection = _collection()
    log('collection under test: %s' % ', '.join('%s=%s' % item for item in sorted(collection.items())))
    bench = phases.Bench(config, workdir, log)
    ok = False
    try:
        environment = _environment()
        _check_space(args, log)
        leftovers = docker.cleanup()
        if leftovers:
            log('removed %d leftover bench container(s)/image(s) of an earlier run' % len(leftovers))
        log('preparing the bench image (stand-in %s, dpkg-repack, local apt source only)' % phases.FROM_VERSION)
        bench.prepare_image(args.standin_repo)
        if 'backup' in args.only:
            bench.backup()
        if 'update' in args.only:
            bench.update_rollback()
        if 'fleet' in args.only:
            bench.fleet()
        if 'pipelining' in args.only:
            bench.pipelining()
        if 'offsite' in args.only:
            bench.offsite(args.standin_repo)
        ok = True
    finally:
        removed = docker.cleanup()
        log('removed %d bench container(s)/image(s)%s' % (len(removed), '' if ok else
                                                           ' after the failure; logs kept in %s' % workdir))
    finished = datetime.datetime.now(datetime.timezone.utc)
    wall = (finished - now).total_seconds()
    results = dict(bench.results, config=config)
    table = report.rows(results, config)
    text = report.markdown(table)
    plot = None
    if 'update' in results:
        plot = 'downtime-%s.png' % stamp
        report.plot_downtime(results, os.path.join(args.results_dir, plot),
                             'Update 1.9.0 -> 1.10.0, %d MiB records.db: is_alive during one run (%s)'
                             % (args.update_db_mb, stamp))
        shutil.copyfile(os.path.join(args.results_dir, plot), os.path.join(args.results_dir, PLOT_LATEST))
    payload = dict(results, date=stamp, started_at=now.isoformat(), finished_at=finished.isoformat(),
                   wall_seconds=round(wall, 1), environment=environment, table=table,
                   misses=report.misses(table), errors=bench.errors,
                   plot=plot, collection=collection)
    json_path = os.path.join(args.results_dir, '%s.json' % stamp)
    report.write_json(json_path, payload)
    header = ('MicroPVR benchmarks, %s: %d run(s) of each figure, median (min-max); Debian 12 containers on '
              '%d CPUs; full run %.1f min' % (stamp, args.runs, environment['cpus'], wall / 60.0))
    print('\n' + header + '\n\n' + text + '\n')
    for miss in report.misses(table):
        # An absolute target (windows, CPU-s per host) has no ratio: its value is what missed.
        print('MISSED (item %s): %s: %s, target %s: %s' % (miss['item'], miss['figure'],
                                                           miss['value'] if miss['ratio'] == '-' else miss['ratio'],
                                                           miss['target'], miss['result']))
    print('\nresults: %s%s' % (os.path.relpath(json_path, ROOT),
                               ', plot: %s' % os.path.relpath(os.path.join(args.results_dir, plot), ROOT) if plot else ''))
    # Only a run of every figure: a partial run (BENCH_ONLY) would replace the table with a part of it.
    if (os.path.abspath(args.results_dir) == os.path.abspath(DEFAULT_RESULTS) and set(args.only) == set(PHASES)
            and not bench.errors):
        readme_text = '%s ([`benchmarks/results/%s.json`](benchmarks/results/%s.json)).\n\n%s\n' % (
            header, stamp, stamp, text)
        if report.update_readme(os.path.join(ROOT, 'README.md'), readme_text):
            print('README.md: performance table updated')
    if bench.errors:
        print('\nbench: ERROR: %d failure(s); the logs are kept in %s' % (len(bench.errors), workdir))
        for error in bench.errors:
            print('bench: ERROR: %s' % error)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (phases.BenchError, docker.CommandError) as exc:
        sys.exit('bench: ERROR: %s' % exc)
    except KeyboardInterrupt:
        sys.exit('bench: interrupted')
