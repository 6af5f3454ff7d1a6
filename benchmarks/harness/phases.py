"""The measurements of `make bench`, each against its own bench-* containers.

Every container comes from one prepared image: the Debian 12 test-bed image with stand-in
MicroPVR 1.9.0-1 and dpkg-repack installed, the bench helper scripts copied in, and the local
stand-in repository as its only apt source (so no run depends on a mirror). Raw and collection
runs alternate (raw, ours, raw, ours ...) on the same container and the same data, and every
timed step starts from the same state: a reset to 1.9.0-1 with the pristine databases and a
`sync`, both untimed.
"""

import concurrent.futures
import json
import os
import secrets
import time

from . import ansible, docker, stats

BASE_IMAGE = 'micropvr-testbed:debian12'
BENCH_IMAGE = 'bench-micropvr:debian12'
FROM_VERSION = '1.9.0-1'
TO_VERSION = '1.10.0-1'
HERE = os.path.dirname(os.path.abspath(__file__))
CONTAINER_FILES = os.path.join(os.path.dirname(HERE), 'container')
HELPERS = (('raw.sh', '/usr/local/sbin/bench-raw'),
           ('probe.py', '/usr/local/bin/bench-probe'),
           ('gen_data.py', '/usr/local/bin/bench-gen-data'),
           ('dpkg_status.py', '/usr/local/bin/bench-dpkg-status'))
# Every dpkg status line with its time (container/dpkg_status.py), emptied when a probe starts.
DPKG_STATUS_LOG = '/var/log/bench-dpkg-status.log'
RAW_DIR = '/var/backups/bench-raw'
BACKUP_ROOT = '/var/backups/micropvr'
PROBE_TAIL = 1.0
# The package whose maintainer scripts stop and start the daemon the probe asks.
DAEMON_PACKAGE = 'micropvr'
# The task of the backup role that runs micropvr_backup (its time is reported apart).
BACKUP_TASK = 'Take a backup set of MicroPVR'
# Items 6 and 7: the off-host repository on an SFTP server (a third container on a network of
# its own, reached by name), the host that sends its sets there, and fresh hosts to recover onto.
SPARE_IMAGE = 'bench-spare:debian12'
NETWORK = 'bench-net'
REPO_HOST = 'bench-repo'
OFFSITE_HOST = 'bench-offsite'
SPARE_HOST = 'bench-spare'
DEBS_DIR = '/srv/bench-debs'
REPO_PATH = '/srv/restic/micropvr'
REPOSITORY = 'sftp:restic@%s:%s' % (REPO_HOST, REPO_PATH)
PASSWORD_FILE = '/root/.micropvr-restic-password'
# Tasks of roles/backup/tasks/offsite.yml and roles/rollback/tasks/recover.yml timed apart.
SEND_TASK = 'Send the set to the off-host repository'
VERIFY_TASK = 'Verify the off-host copy (restic check, the manifest restored and compared)'
PRUNE_TASK = 'Apply retention in the off-host repository'
FETCH_TASK = "Fetch the lost host's set from the off-host repository"


class BenchError(RuntimeError):
    """Something the benchmark cannot go on from (a failed run, an unexpected host state)."""


class Bench(object):
    def __init__(self, config, workdir, log):
        self.config, self.workdir, self.log = config, workdir, log
        self.results = {}
        # Failures that still let the other figures be reported; the run fails after the report.
        self.errors = []

    # --- set-up ----------------------------------------------------------------------------

    def prepare_image(self, repo):
        """The image every bench container starts from (committed once per run, removed at the end)."""
        if not docker.image_exists(BASE_IMAGE):
            raise BenchError('image %s is missing: run `make testbed` first' % BASE_IMAGE)
        if not os.path.isfile(os.path.join(repo, 'Packages')):
            raise BenchError('no stand-in apt repository in %s: run `make standin` first' % repo)
        name = docker.start('bench-base', BASE_IMAGE)
        docker.copy_in(name, repo.rstrip('/') + '/.', '/srv/micropvr-repo')
        for source, target in HELPERS:
            docker.copy_in(name, os.path.join(CONTAINER_FILES, source), target, mode='0755')
        docker.sh(name, """set -e
            export DEBIAN_FRONTEND=noninteractive
            echo 'deb [trusted=yes] file:/srv/micropvr-repo ./' > /etc/apt/sources.list.d/micropvr-standin.list
            apt-get update -q >/dev/null
            apt-get install -y -q micropvr=%(v)s micropvs=%(v)s dpkg-repack >/dev/null
            echo 'status-logger=/usr/local/bin/bench-dpkg-status %(log)s' > /etc/dpkg/dpkg.cfg.d/bench
            # Only the local repository from here on: no timed step waits for a mirror.
            rm -f /etc/apt/sources.list
            find /etc/apt/sources.list.d -type f ! -name micropvr-standin.list -delete
            apt-get update -q >/dev/null
            /etc/init.d/micropvr stop >/dev/null
            /etc/init.d/micropvs stop >/dev/null
            """ % dict(v=FROM_VERSION, log=DPKG_STATUS_LOG), timeout=900)
        docker.commit(name, BENCH_IMAGE)
        docker.docker('rm', '-f', name)

    def start_host(self, name, records_mb, pristine=True, network=None):
        """A running 1.9.0-1 host with generated data of ``records_mb`` MiB in records.db."""
        docker.start(name, BENCH_IMAGE, network=network)
        out = docker.sh(name, """set -e
            /etc/init.d/micropvs start >/dev/null
            bench-gen-data --records-mb %s
            %s
            """ % (records_mb, 'bench-raw pristine' if pristine else '/etc/init.d/micropvr start >/dev/null'),
            timeout=3600).stdout
        info = json.loads(out.strip().splitlines()[-1])
        self.expect(name, FROM_VERSION, 1, 'start')
        return info

    def start_hosts(self, names, records_mb, workers=2):
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda name: self.start_host(name, records_mb), names))

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def state(name):
        fields = docker.sh(name, 'bench-raw state').stdout.split()
        return dict(field.split('=', 1) for field in fields)

    def expect(self, name, version, schema, after, rows=None):
        found = self.state(name)
        wanted = dict(micropvr=version, micropvs=version, records=str(schema), tasks=str(schema), running='yes')
        if rows is not None:
            wanted['rows'] = str(rows)
        wrong = dict((key, found.get(key)) for key, value in wanted.items() if found.get(key) != value)
        if wrong:
            raise BenchError('%s after %s: expected %s, found %s' % (name, after, wanted, found))
        return found

    @staticmethod
    def settle(name):
        """Untimed: write back dirty pages so that no timed step pays for the previous one's writes."""
        docker.sh(name, 'sync')

    def reset(self, names):
        def one(name):
            docker.sh(name, 'bench-raw reset', timeout=600)
            self.expect(name, FROM_VERSION, 1, 'reset')
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, names))

    def probe(self, name, label):
        return Probe(name, label, self.config['probe_interval'])

    def playbook(self, label, playbook, hosts, extra_vars=None, pipelining=False, vars_files=(), config=None,
                 count_docker_calls=False, cpus=None):
        """Run a playbook; with the CPU time of the controller, of the hosts and of the whole machine.

        ``config``: an ansible.cfg (the recommended one) instead of Ansible's defaults; its own
        pipelining setting applies then.
        """
        hosts_before, machine_before = docker.container_cpu_seconds(hosts), docker.machine_busy_seconds()
        try:
            run = ansible.run_playbook(self.workdir, label, playbook, hosts, extra_vars=extra_vars,
                                       pipelining=None if config else pipelining, vars_files=vars_files,
                                       config=config, count_docker_calls=count_docker_calls, cpus=cpus)
        except ansible.PlaybookError as exc:
            raise BenchError(str(exc))
        hosts_after, machine_after = docker.container_cpu_seconds(hosts), docker.machine_busy_seconds()
        run['cpu'] = dict(
            controller=round(run.pop('controller_cpu'), 2),
            controller_system=round(run.pop('controller_system'), 2),
            # ansible-playbook's main process alone (the strategy, templating, results); the rest
            # of the controller's CPU is its workers and their docker CLI calls.
            controller_main=round(run['controller_main'], 2) if run.get('controller_main') is not None else None,
            hosts=round(hosts_after - hosts_before, 2) if None not in (hosts_before, hosts_after) else None,
            machine=round(machine_after - machine_before, 2) if None not in (machine_before, machine_after) else None,
            available=round(run['seconds'] * (os.cpu_count() or 1), 2))
        return run

    # --- 1. backup throughput ------------------------------------------------------------------

    def backup(self):
        cfg = self.config
        name = 'bench-backup'
        self.log('backup: starting %s with a %d MiB records.db' % (name, cfg['db_mb']))
        data = self.start_host(name, cfg['db_mb'], pristine=False)
        source_bytes = self._backup_source_bytes(name)
        self.log('backup: %.0f MiB to back up (%d rows in records.db); one untimed warm-up of each'
                 % (source_bytes / 1048576.0, data['records_rows']))

        def raw(verify=False):
            self.settle(name)
            args = ['bench-raw', 'backup', RAW_DIR + '/run'] + (['verify'] if verify else [])
            seconds = docker.exec_timed(name, args, timeout=3600)[0]
            docker.sh(name, 'rm -rf %s' % RAW_DIR)
            return seconds

        def ours(label):
            self.settle(name)
            run = self.playbook(label, 'microimpuls.micropvr.backup', [name])
            sets = docker.sh(name, 'ls %s' % BACKUP_ROOT).stdout.split()
            if len(sets) != 1:
                raise BenchError('%s: expected one backup set in %s, found %s' % (label, BACKUP_ROOT, sets))
            size = int(docker.sh(name, 'du -sb %s/%s | cut -f1' % (BACKUP_ROOT, sets[0])).stdout.split()[0])
            docker.sh(name, 'rm -rf %s/*' % BACKUP_ROOT)
            return run, size

        def profile():
            """The parts of a verified backup as raw commands time them inside the host (copy,
            tar, quick_check, sha256): what the collection's module cannot do without."""
            self.settle(name)
            lines = docker.sh(name, 'bench-raw profile %s/profile' % RAW_DIR, timeout=3600).stdout
            return dict((part, float(seconds)) for part, seconds in (line.split() for line in lines.splitlines()))

        raw()
        ours('backup-warmup')
        rounds = []
        for index in range(cfg['runs']):
            raw_s = raw()
            run, set_bytes = ours('backup-%d' % (index + 1))
            verified_s = raw(verify=True)
            module_s = sum(r['seconds'] for r in run['tasks'][name]['results']
                           if r['task'].split(' : ', 1)[-1] == BACKUP_TASK)
            rounds.append(dict(raw_seconds=raw_s, ours_seconds=run['seconds'], raw_verified_seconds=verified_s,
                               ours_module_seconds=module_s, set_bytes=set_bytes,
                               ours_steps=task_step_seconds(run['tasks'][name]),
                               ours_tasks=ansible.task_times(run['tasks'][name]), profile=profile()))
            self.log('backup %d/%d: raw %.1f s, ours %.1f s (module %.1f s), raw+verify %.1f s'
                     % (index + 1, cfg['runs'], raw_s, run['seconds'], module_s, verified_s))
        mib = source_bytes / 1048576.0
        throughput = dict((key, [mib / r[key + '_seconds'] for r in rounds]) for key in ('raw', 'ours', 'raw_verified'))
        parts = sorted(rounds[0]['profile'])
        self.results['backup'] = dict(container=name, data=data, source_bytes=source_bytes, rounds=rounds,
                                      profile=dict((part, stats.summary([r['profile'][part] for r in rounds]))
                                                   for part in parts),
                                      ansible_seconds=stats.summary([r['ours_seconds'] - r['ours_module_seconds']
                                                                     for r in rounds]),
                                      steps=step_summaries([r['ours_steps'] for r in rounds]),
                                      # The module's own time outside its parts: Python, the
                                      # AnsiballZ payload, the result's way back.
                                      module_outside_steps_seconds=stats.summary(
                                          [r['ours_module_seconds'] - sum(r['ours_steps'].values()) for r in rounds]),
                                      throughput_mib_s=dict((k, stats.summary(v)) for k, v in throughput.items()),
                                      seconds=dict((k, stats.summary([r[k + '_seconds'] for r in rounds]))
                                                   for k in ('raw', 'ours', 'raw_verified', 'ours_module')),
                                      ratio=stats.summary(stats.pair_ratios(throughput['ours'], throughput['raw'])),
                                      ratio_vs_verified=stats.summary(stats.pair_ratios(throughput['ours'],
                                                                                        throughput['raw_verified'])),
                                      ratio_seconds=stats.summary(stats.pair_ratios(
                                          [r['ours_seconds'] for r in rounds], [r['raw_seconds'] for r in rounds])),
                                      ratio_module_vs_verified=stats.summary(stats.pair_ratios(
                                          [r['ours_module_seconds'] for r in rounds],
                                          [r['raw_verified_seconds'] for r in rounds])))
        if cfg.get('linear_db_mb'):
            self.backup_linear(name, rounds, raw, ours)
        docker.docker('rm', '-f', name)

    def backup_linear(self, name, base_rounds, raw, ours):
        """Item 1c: the same host grown to ``linear_db_mb``, backed up as often; time / time at ``db_mb``.

        The rows are appended to the same records.db (gen_data continues from the last id), so
        the larger database holds the smaller one's rows plus more of the same shape. Rounds are
        paired with item 1's rounds in order.
        """
        cfg = self.config
        need = 3 * cfg['linear_db_mb']  # the grown file, the set, the raw copy
        free = docker.root_free_mib()
        if free < need:
            raise BenchError('backup linearity: %d MiB free on the Docker data root, growing records.db to %d MiB '
                             'needs about %d MiB (3x); free space or set BENCH_LINEAR_DB_MB lower (0 skips it)'
                             % (free, cfg['linear_db_mb'], need))
        self.log('backup linearity: growing records.db of %s to %d MiB (%d MiB free)' % (name, cfg['linear_db_mb'], free))
        out = docker.sh(name, """set -e
            /etc/init.d/micropvr stop >/dev/null
            bench-gen-data --records-mb %d
            /etc/init.d/micropvr start >/dev/null
            """ % cfg['linear_db_mb'], timeout=7200).stdout
        data = json.loads(out.strip().splitlines()[-1])
        self.expect(name, FROM_VERSION, 1, 'growing records.db')
        source_bytes = self._backup_source_bytes(name)
        self.log('backup linearity: generated in %.0f s, %.0f MiB to back up (%d rows); one untimed raw warm-up'
                 % (data['seconds'], source_bytes / 1048576.0, data['records_rows']))
        raw()
        rounds = []
        for index in range(len(base_rounds)):
            raw_s = raw()
            run, set_bytes = ours('backup-linear-%d' % (index + 1))
            module_s = sum(r['seconds'] for r in run['tasks'][name]['results']
                           if r['task'].split(' : ', 1)[-1] == BACKUP_TASK)
            rounds.append(dict(raw_seconds=raw_s, ours_seconds=run['seconds'], ours_module_seconds=module_s,
                               set_bytes=set_bytes, ours_tasks=ansible.task_times(run['tasks'][name]),
                               ours_steps=task_step_seconds(run['tasks'][name])))
            self.log('backup linearity %d/%d: raw %.1f s, ours %.1f s (module %.1f s); at %d MiB ours %.1f s'
                     % (index + 1, len(base_rounds), raw_s, run['seconds'], module_s, cfg['db_mb'],
                        base_rounds[index]['ours_seconds']))

        def ratio(key):
            return stats.summary(stats.pair_ratios([r[key] for r in rounds], [r[key] for r in base_rounds]))

        self.results['backup']['linear'] = dict(
            db_mb=cfg['linear_db_mb'], base_db_mb=cfg['db_mb'], data=data, source_bytes=source_bytes,
            size_ratio=source_bytes / float(self.results['backup']['source_bytes']), rounds=rounds,
            target=stats.linear_target(cfg['db_mb'], cfg['linear_db_mb']),
            seconds=dict((k, stats.summary([r[k + '_seconds'] for r in rounds])) for k in ('raw', 'ours', 'ours_module')),
            base_seconds=stats.summary([r['ours_seconds'] for r in base_rounds]),
            base_module_seconds=stats.summary([r['ours_module_seconds'] for r in base_rounds]),
            base_raw_seconds=stats.summary([r['raw_seconds'] for r in base_rounds]),
            ratio=ratio('ours_seconds'), ratio_module=ratio('ours_module_seconds'), ratio_raw=ratio('raw_seconds'),
            # Which part of the module grows faster than the data (its step_seconds at both sizes).
            steps=step_summaries([r['ours_steps'] for r in rounds]),
            base_steps=step_summaries([r['ours_steps'] for r in base_rounds]))

    @staticmethod
    def _backup_source_bytes(name):
        """Bytes of both databases and the configuration (tar of the config paths, databases excluded)."""
        return int(docker.sh(name, """
            set -e
            # Shell arithmetic is 64-bit; awk would print a sum past 2**31 as 4.46e+09.
            set -- $(stat -c %%s /etc/micropvr/records.db /etc/micropvr/tasks.db)
            dbs=$(($1 + $2))
            conf=$(tar -cf - --exclude='*.db' --exclude='*.db-journal' %s 2>/dev/null | wc -c)
            echo $((dbs + conf))""" % ' '.join(('/etc/micropvr', '/usr/local/nginx-micropvr/conf',
                                               '/etc/init.d/micropvr', '/etc/init.d/micropvs'))).stdout)

    # --- 2. update downtime and 3. rollback time ------------------------------------------------

    def update_rollback(self):
        cfg = self.config
        name = 'bench-update'
        self.log('update/rollback: starting %s with a %d MiB records.db' % (name, cfg['update_db_mb']))
        data = self.start_host(name, cfg['update_db_mb'])
        rows = data['records_rows']
        rounds = []
        for index in range(cfg['runs']):
            label = '%d' % (index + 1)
            entry = {}
            # raw: untimed copies for the raw rollback, then the timed update and rollback
            self.reset([name])
            docker.sh(name, 'bench-raw save %s/save' % RAW_DIR, timeout=3600)
            self.settle(name)
            with self.probe(name, 'raw-update-' + label) as probe:
                seconds, start, end = docker.exec_timed(name, ['bench-raw', 'update', TO_VERSION], timeout=3600)
            entry['raw_update'] = probe.result(seconds, start, end)
            self.expect(name, TO_VERSION, 2, 'the raw update', rows=rows)
            self.settle(name)
            with self.probe(name, 'raw-rollback-' + label) as probe:
                seconds, start, end = docker.exec_timed(name, ['bench-raw', 'rollback', RAW_DIR + '/save'],
                                                        timeout=3600)
            entry['raw_rollback'] = probe.result(seconds, start, end)
            self.expect(name, FROM_VERSION, 1, 'the raw rollback', rows=rows)
            # ours
            self.reset([name])
            self.settle(name)
            with self.probe(name, 'ours-update-' + label) as probe:
                run = self.playbook('update-' + label, 'microimpuls.micropvr.update', [name],
                                    extra_vars=dict(micropvr_version=TO_VERSION))
            entry['ours_update'] = probe.result(run['seconds'], run['start'], run['end'])
            entry['ours_update']['tasks'] = task_marks(run['tasks'][name], run['start'])
            self.expect(name, TO_VERSION, 2, 'update.yml', rows=rows)
            self.settle(name)
            with self.probe(name, 'ours-rollback-' + label) as probe:
                run = self.playbook('rollback-' + label, 'microimpuls.micropvr.rollback', [name])
            entry['ours_rollback'] = probe.result(run['seconds'], run['start'], run['end'])
            entry['ours_rollback']['tasks'] = task_marks(run['tasks'][name], run['start'])
            entry['ours_rollback']['restore_steps'] = task_step_seconds(run['tasks'][name])
            entry['ours_rollback']['safety_steps'] = task_step_seconds(run['tasks'][name],
                                                                                'safety_backup_step_seconds')
            self.expect(name, FROM_VERSION, 1, 'rollback.yml', rows=rows)
            # The same two playbooks with the recommended ansible.cfg (docs/ansible.cfg.example),
            # from the same reset state.
            recommended = cfg.get('recommended_cfg')
            if recommended:
                self.reset([name])
                self.settle(name)
                with self.probe(name, 'rec-update-' + label) as probe:
                    run = self.playbook('update-rec-' + label, 'microimpuls.micropvr.update', [name],
                                        extra_vars=dict(micropvr_version=TO_VERSION), config=recommended)
                entry['rec_update'] = probe.result(run['seconds'], run['start'], run['end'])
                entry['rec_update']['tasks'] = task_marks(run['tasks'][name], run['start'])
                self.expect(name, TO_VERSION, 2, 'update.yml (recommended ansible.cfg)', rows=rows)
                self.settle(name)
                with self.probe(name, 'rec-rollback-' + label) as probe:
                    run = self.playbook('rollback-rec-' + label, 'microimpuls.micropvr.rollback', [name],
                                        config=recommended)
                entry['rec_rollback'] = probe.result(run['seconds'], run['start'], run['end'])
                entry['rec_rollback']['tasks'] = task_marks(run['tasks'][name], run['start'])
                entry['rec_rollback']['restore_steps'] = task_step_seconds(run['tasks'][name])
                entry['rec_rollback']['safety_steps'] = task_step_seconds(run['tasks'][name],
                                                                                    'safety_backup_step_seconds')
                self.expect(name, FROM_VERSION, 1, 'rollback.yml (recommended ansible.cfg)', rows=rows)
            rounds.append(entry)
            self.log('update/rollback %d/%d: downtime raw %.2f s%s, ours %.2f s%s; update wall raw %.1f s, ours %.1f s; '
                     'rollback raw %.1f s, ours %.1f s'
                     % (index + 1, cfg['runs'], entry['raw_update']['longest'], window_cpu(entry['raw_update']),
                        entry['ours_update']['longest'], window_cpu(entry['ours_update']),
                        entry['raw_update']['seconds'], entry['ours_update']['seconds'],
                        entry['raw_rollback']['seconds'], entry['ours_rollback']['seconds']))
            # Inside the window: where the raw and the collection's updates differ, if they do.
            self.log('update/rollback %d/%d, dpkg %s in the longest window: raw %s | ours %s%s'
                     % (index + 1, cfg['runs'], DAEMON_PACKAGE, window_dpkg(entry['raw_update']),
                        window_dpkg(entry['ours_update']),
                        ' | recommended ansible.cfg %s' % window_dpkg(entry['rec_update']) if 'rec_update' in entry else ''))
            if 'rec_update' in entry:
                self.log('update/rollback %d/%d, recommended ansible.cfg: update %.1f s (%d window(s), longest %.2f s%s), '
                         'rollback %.1f s'
                         % (index + 1, cfg['runs'], entry['rec_update']['seconds'], len(entry['rec_update']['windows']),
                            entry['rec_update']['longest'], window_cpu(entry['rec_update']),
                            entry['rec_rollback']['seconds']))

        def series(key, field):
            return [r[key][field] for r in rounds]

        for entry in rounds:
            for key in [k for k in entry if k.endswith(('_update', '_rollback'))]:
                entry[key]['window_count'] = stats.count_windows(entry[key]['windows'])
        result = dict(container=name, data=data, rounds=rounds)
        for prefix, suffix in (('ours_', ''), ('rec_', '_recommended')):
            if prefix + 'update' not in rounds[0]:
                continue
            for what in ('update', 'rollback'):
                for field in ('longest', 'seconds', 'window_count'):
                    ours_v, raw_v = series(prefix + what, field), series('raw_' + what, field)
                    name_ = '%s_%s%s' % (what, 'windows' if field == 'window_count' else field, suffix)
                    result[name_] = dict(
                        ours=stats.summary(ours_v), raw=stats.summary(raw_v),
                        ratio=stats.summary(stats.pair_ratios(ours_v, raw_v)) if min(raw_v) > 0 else None)
            profiles = [rollback_profile(r[prefix + 'rollback']) for r in rounds]
            result['rollback_profile' + suffix] = dict(
                (part, stats.summary([p[part] for p in profiles])) for part in profiles[0])
            result['restore_steps' + suffix] = step_summaries(
                [r[prefix + 'rollback'].get('restore_steps') or {} for r in rounds])
            result['safety_steps' + suffix] = step_summaries(
                [r[prefix + 'rollback'].get('safety_steps') or {} for r in rounds])
        # The plot shows the round whose collection downtime is the median one.
        order = sorted(range(len(rounds)), key=lambda i: rounds[i]['ours_update']['longest'])
        result['plot_round'] = order[len(order) // 2]
        self.results['update'] = result
        docker.docker('rm', '-f', name)

    # --- 4. fleet scaling -------------------------------------------------------------------------

    def fleet(self):
        cfg = self.config
        sizes = cfg['fleet']
        names = ['bench-fleet-%02d' % (i + 1) for i in range(max(sizes))]
        recommended = cfg.get('recommended_cfg')
        largest = max(sizes)
        self.log('fleet: starting %d containers with a %d MiB records.db each' % (len(names), cfg['fleet_db_mb']))
        self.start_hosts(names, cfg['fleet_db_mb'])
        pin = cfg.get('fleet_pin')
        controller_cpus = None
        if pin:
            # An experiment (BENCH_FLEET_PIN): the controller on CPUs no host uses, as a real
            # fleet's controller is, to tell its own cost from what sharing CPUs with the hosts adds.
            controller_cpus, host_cpus = pin
            docker.docker('update', '--cpuset-cpus', host_cpus, *names)
            self.log('fleet: controller on CPUs %s, hosts on CPUs %s' % (controller_cpus, host_cpus))
        # What one docker CLI call costs the controller: with the calls counted, the controller's
        # CPU splits into the test bed's connection (docker CLI) and Ansible itself.
        call_cpu = stats.summary([ansible.docker_call_cpu(self.workdir, names[0], cpus=controller_cpus)
                                  for dummy in range(3)])['median']
        self.log('fleet: one docker CLI call costs the controller %.1f ms CPU' % (call_cpu * 1000))
        # Ansible's floor: what a task costs the controller per host when it does nothing there,
        # without touching the host (debug) and with one module run there (ping, recommended cfg).
        floor = {}
        for kind, remote in (('local', False), ('remote', True)):
            # 10 remote tasks: a minute for 16 hosts, three times; the playbook's start (about 1 CPU-s)
            # is spread over fewer evaluations than with 20, a few ms more on each.
            nulls = [ansible.null_task_cpu(self.workdir, names[:largest], tasks=10 if remote else 20,
                                           cpus=controller_cpus, remote=remote,
                                           config=recommended if remote else None) for dummy in range(3)]
            floor[kind] = dict(cpu=stats.summary([n['cpu'] for n in nulls])['median'],
                               main=stats.summary([n['main'] for n in nulls])['median']
                               if all(n['main'] is not None for n in nulls) else None)
            self.log('fleet: a %s task that does nothing costs the controller %.1f ms CPU per host '
                     '(%d hosts at once; main process %s ms)'
                     % (kind, floor[kind]['cpu'] * 1000, largest,
                        '%.1f' % (floor[kind]['main'] * 1000) if floor[kind]['main'] is not None else '?'))
        rounds = []
        for index in range(cfg['runs']):
            entry = {}
            runs = [(size, str(size), None) for size in sizes]
            if recommended:
                # The largest fleet again with the recommended ansible.cfg: what an operator who
                # follows the README's advice pays per host.
                runs.append((largest, '%d-recommended' % largest, recommended))
            for size, key, config in runs:
                hosts = names[:size]
                self.reset(hosts)
                self.settle(hosts[0])  # sync is system-wide: once is enough
                run = self.playbook('fleet-%s-%d' % (key, index + 1), 'microimpuls.micropvr.update', hosts,
                                    extra_vars=dict(micropvr_version=TO_VERSION), config=config,
                                    count_docker_calls=True, cpus=controller_cpus)
                for host in hosts:
                    self.expect(host, TO_VERSION, 2, 'update.yml on %d hosts' % size)
                entry[key] = dict(seconds=run['seconds'], cpu=run['cpu'], docker_calls=run['docker_calls'],
                                  tasks_per_host=stats.summary([ansible.tasks_run(run['tasks'][h])
                                                                for h in hosts])['median'],
                                  evaluations_per_host=stats.summary([ansible.evaluations(run['tasks'][h])
                                                                      for h in hosts])['median'])
                self.log('fleet %d/%d: %s host(s) %.1f s (CPU s: controller %s (kernel %s, main process %s), hosts %s, '
                         'machine %s of %s; %d docker CLI calls)'
                         % (index + 1, cfg['runs'], key, run['seconds'], run['cpu']['controller'],
                            run['cpu']['controller_system'], run['cpu']['controller_main'],
                            run['cpu']['hosts'], run['cpu']['machine'], run['cpu']['available'], run['docker_calls']))
            rounds.append(entry)
        base = str(sizes[0])
        result = dict(hosts=names, rounds=rounds, base_size=sizes[0], sizes={}, docker_call_cpu=call_cpu,
                      null_task_cpu=floor,
                      pin=list(pin) if pin else None)
        for key in rounds[0]:
            size = int(key.split('-')[0])
            walls = [r[key]['seconds'] for r in rounds]
            busy = [r[key]['cpu']['machine'] / r[key]['cpu']['available'] for r in rounds
                    if r[key]['cpu']['machine'] is not None]
            per_host = [r[key]['cpu']['controller'] / size for r in rounds]
            docker_per_host = [r[key]['docker_calls'] * call_cpu / size for r in rounds]
            result['sizes'][key] = dict(
                seconds=stats.summary(walls),
                ratio=stats.summary(stats.pair_ratios(walls, [r[base]['seconds'] for r in rounds])),
                cpu=dict((name, stats.summary([r[key]['cpu'][name] for r in rounds])['median'])
                         for name in ('controller', 'controller_system', 'controller_main', 'hosts', 'machine',
                                      'available')
                         if all(r[key]['cpu'].get(name) is not None for r in rounds)),
                machine_busy=stats.summary(busy)['median'] if busy else None,
                # What a real fleet's controller pays per host (issue 16): controller CPU / hosts,
                # split into the docker CLI calls of the test bed's connection (calls x the
                # measured cost of one) and the rest: Ansible itself.
                controller_per_host=stats.summary(per_host),
                docker_calls_per_host=stats.summary([r[key]['docker_calls'] / float(size) for r in rounds]),
                controller_docker_per_host=stats.summary(docker_per_host),
                controller_ansible_per_host=stats.summary([a - b for a, b in zip(per_host, docker_per_host)]),
                controller_main_per_host=stats.summary([r[key]['cpu']['controller_main'] / size for r in rounds])
                if all(r[key]['cpu'].get('controller_main') is not None for r in rounds) else None,
                evaluations_per_host=stats.summary([r[key]['evaluations_per_host'] for r in rounds]))
        self.results['fleet'] = result
        self.fleet_hosts = names
        if pin:
            # Item 5 reuses bench-fleet-01: back on every CPU, as its controller is.
            docker.docker('update', '--cpuset-cpus', '0-%d' % ((os.cpu_count() or 1) - 1), *names)

    # --- 5. Ansible overhead and pipelining --------------------------------------------------------

    def pipelining(self):
        cfg = self.config
        name = 'bench-fleet-01'
        existing = docker.docker('ps', '-q', '--filter', 'name=^%s$' % name).stdout.strip()
        if not existing:
            self.log('pipelining: starting %s with a %d MiB records.db' % (name, cfg['fleet_db_mb']))
            self.start_host(name, cfg['fleet_db_mb'])
        rounds = []
        for index in range(cfg['runs']):
            entry = {}
            self.reset([name])
            self.settle(name)
            entry['raw'] = dict(seconds=docker.exec_timed(name, ['bench-raw', 'update', TO_VERSION], timeout=3600)[0])
            self.expect(name, TO_VERSION, 2, 'the raw update')
            for pipelining in (False, True):
                key = 'on' if pipelining else 'off'
                self.reset([name])
                self.settle(name)
                run = self.playbook('pipelining-%s-%d' % (key, index + 1), 'microimpuls.micropvr.update', [name],
                                    extra_vars=dict(micropvr_version=TO_VERSION), pipelining=pipelining)
                self.expect(name, TO_VERSION, 2, 'update.yml with pipelining %s' % key)
                host = run['tasks'][name]
                entry[key] = dict(seconds=run['seconds'], tasks=ansible.tasks_run(host), cpu=run['cpu'],
                                  skipped=host['counts'].get('skipped', 0),
                                  task_seconds=sum(r['seconds'] for r in host['results'] if r['status'] != 'skipped'),
                                  slowest=ansible.task_times(host, top=8))
            rounds.append(entry)
            self.log('pipelining %d/%d: raw %.1f s, off %.1f s, on %.1f s (%d tasks)'
                     % (index + 1, cfg['runs'], entry['raw']['seconds'], entry['off']['seconds'],
                        entry['on']['seconds'], entry['on']['tasks']))
        result = dict(container=name, rounds=rounds)
        raw = [r['raw']['seconds'] for r in rounds]
        for key in ('off', 'on'):
            walls = [r[key]['seconds'] for r in rounds]
            result[key] = dict(seconds=stats.summary(walls),
                               controller_cpu=stats.summary([r[key]['cpu']['controller'] for r in rounds]),
                               tasks=rounds[0][key]['tasks'], skipped=rounds[0][key]['skipped'],
                               ratio_vs_raw=stats.summary(stats.pair_ratios(walls, raw)),
                               overhead_seconds=stats.summary([w - r for w, r in zip(walls, raw)]))
        result['raw'] = dict(seconds=stats.summary(raw))
        result['on_vs_off'] = stats.summary(stats.pair_ratios([r['on']['seconds'] for r in rounds],
                                                              [r['off']['seconds'] for r in rounds]))
        result['winner'] = 'on' if result['on_vs_off']['median'] < 1 else 'off'
        self.results['pipelining'] = result


    # --- 6. off-host copies: deduplication's worth, and 7. recovery of a lost host ---------------

    def prepare_offsite(self, repo):
        """The image of a fresh host and a local apt source of the Debian packages items 6-7 need.

        Downloaded once from the mirror, untimed: restic and dpkg-repack (what the collection
        installs on a host that lacks them) with their dependencies, and OpenSSH for the SFTP
        backend. The fresh host's image has the stand-in's apt source and this one only, OpenSSH's
        client, and no MicroPVR, restic or dpkg-repack: the recovery installs those itself.
        """
        name = docker.start('bench-spare-base', BASE_IMAGE)
        docker.copy_in(name, repo.rstrip('/') + '/.', '/srv/micropvr-repo')
        for source, target in HELPERS:
            docker.copy_in(name, os.path.join(CONTAINER_FILES, source), target, mode='0755')
        docker.sh(name, r"""set -euo pipefail
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -q >/dev/null
            apt-get clean
            apt-get install -y -q --download-only restic dpkg-repack >/dev/null
            apt-get install -y -q --download-only --no-install-recommends openssh-client openssh-server >/dev/null
            mkdir -p %(debs)s
            mv /var/cache/apt/archives/*.deb %(debs)s/
            cd %(debs)s
            # A flat repository as dpkg-scanpackages would index it (dpkg-dev is not on the host).
            for deb in *.deb; do
                dpkg-deb -f "$deb"
                printf 'Filename: ./%%s\nSize: %%s\nSHA256: %%s\n\n' "$deb" "$(stat -c %%s "$deb")" \
                    "$(sha256sum "$deb" | cut -d' ' -f1)"
            done >Packages
            printf 'Origin: bench-debs\nLabel: bench-debs\nSuite: bench\nCodename: bench\nSHA256:\n %%s %%s Packages\n' \
                "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %%s Packages)" >Release
            echo 'deb [trusted=yes] file:/srv/micropvr-repo ./' >/etc/apt/sources.list.d/micropvr-standin.list
            echo 'deb [trusted=yes] file:%(debs)s ./' >/etc/apt/sources.list.d/bench-debs.list
            rm -f /etc/apt/sources.list
            find /etc/apt/sources.list.d -type f ! -name micropvr-standin.list ! -name bench-debs.list -delete
            apt-get update -q >/dev/null
            apt-get install -y -q --no-install-recommends openssh-client >/dev/null
            """ % dict(debs=DEBS_DIR), timeout=900)
        docker.commit(name, SPARE_IMAGE)
        self.debs = os.path.join(self.workdir, 'bench-debs')
        docker.docker('cp', '%s:%s' % (name, DEBS_DIR), self.debs)
        docker.docker('rm', '-f', name)

    def _secret_file(self, filename, text):
        """A 0600 file in the private work directory (secrets go by file, never by argument)."""
        path = os.path.join(self.workdir, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        return path

    def _give_client(self, name):
        """What an operator puts on a host that uses the repository: SSH key, known host, password."""
        docker.sh(name, 'install -d -m 0700 /root/.ssh')
        for source, target in (('client-key', '/root/.ssh/id_ed25519'), ('known-hosts', '/root/.ssh/known_hosts'),
                               ('restic-password', PASSWORD_FILE)):
            docker.copy_in(name, os.path.join(self.workdir, source), target)
            docker.sh(name, 'chown root:root %s && chmod 0600 %s' % (target, target))

    def _start_repository(self):
        """The SFTP server: an sftp-only account that owns the repository directory."""
        docker.start(REPO_HOST, SPARE_IMAGE, network=NETWORK)
        docker.sh(REPO_HOST, r"""set -euo pipefail
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q --no-install-recommends openssh-server >/dev/null
            useradd --create-home --shell /bin/sh restic
            install -d -o restic -g restic -m 0700 /srv/restic /home/restic/.ssh
            printf 'PasswordAuthentication no\nMatch User restic\n    ForceCommand internal-sftp\n    AllowTcpForwarding no\n' \
                >/etc/ssh/sshd_config.d/restic.conf
            ssh-keygen -q -t ed25519 -N '' -C bench-client -f /root/bench-client
            install -o restic -g restic -m 0600 /root/bench-client.pub /home/restic/.ssh/authorized_keys
            service ssh start >/dev/null
            """, timeout=600)
        docker.docker('cp', '%s:/root/bench-client' % REPO_HOST, os.path.join(self.workdir, 'client-key'))
        docker.sh(REPO_HOST, 'rm -f /root/bench-client /root/bench-client.pub')
        host_key = docker.read_file(REPO_HOST, '/etc/ssh/ssh_host_ed25519_key.pub').split()[:2]
        self._secret_file('known-hosts', '%s %s\n' % (REPO_HOST, ' '.join(host_key)))

    def repository_bytes(self):
        out = docker.sh(REPO_HOST, 'if [ -d %s ]; then du -sb %s | cut -f1; else echo 0; fi'
                        % (REPO_PATH, REPO_PATH)).stdout
        return int(out.split()[0])

    def offsite(self, standin_repo):
        cfg = self.config
        self.log('offsite: preparing a fresh-host image and a local apt source of restic, dpkg-repack, OpenSSH')
        self.prepare_offsite(standin_repo)
        docker.network(NETWORK)
        self._secret_file('restic-password', secrets.token_hex(24) + '\n')
        # One fleet-wide seal key (in Vault on a real controller): the new host must accept the
        # lost host's sets.
        seal_vars = self._secret_file('seal-key.json', json.dumps(dict(micropvr_seal_key=secrets.token_hex(32))))
        self._start_repository()
        self.log('offsite: starting %s with a %d MiB records.db; repository %s' % (OFFSITE_HOST, cfg['db_mb'], REPOSITORY))
        self.start_host(OFFSITE_HOST, cfg['db_mb'], network=NETWORK)
        docker.copy_in(OFFSITE_HOST, self.debs.rstrip('/') + '/.', DEBS_DIR)
        # restic installed beforehand: the first send must not pay for an installation the second skips.
        docker.sh(OFFSITE_HOST, """set -e
            export DEBIAN_FRONTEND=noninteractive
            echo 'deb [trusted=yes] file:%s ./' >/etc/apt/sources.list.d/bench-debs.list
            apt-get update -q >/dev/null
            apt-get install -y -q --no-install-recommends restic openssh-client >/dev/null
            """ % DEBS_DIR, timeout=600)
        self._give_client(OFFSITE_HOST)
        fqdn = docker.sh(OFFSITE_HOST, 'hostname -f').stdout.strip()
        send_vars = dict(micropvr_offsite_repository=REPOSITORY, micropvr_offsite_init=True,
                         micropvr_offsite_password_file=PASSWORD_FILE)

        def task_seconds(run, host, task):
            return sum(r['seconds'] for r in run['tasks'][host]['results']
                       if r['status'] != 'skipped' and r['task'].split(' : ', 1)[-1] == task)

        def send(label):
            self.settle(OFFSITE_HOST)
            before = self.repository_bytes()
            run = self.playbook(label, 'microimpuls.micropvr.backup', [OFFSITE_HOST], extra_vars=send_vars,
                                vars_files=[seal_vars])
            grown = self.repository_bytes() - before
            sets = docker.sh(OFFSITE_HOST, 'ls %s' % BACKUP_ROOT).stdout.split()
            set_bytes = int(docker.sh(OFFSITE_HOST, 'du -sb %s/%s | cut -f1' % (BACKUP_ROOT, sorted(sets)[-1]))
                            .stdout.split()[0])
            return dict(seconds=run['seconds'], send_seconds=task_seconds(run, OFFSITE_HOST, SEND_TASK),
                        verify_seconds=task_seconds(run, OFFSITE_HOST, VERIFY_TASK),
                        prune_seconds=task_seconds(run, OFFSITE_HOST, PRUNE_TASK),
                        backup_seconds=task_seconds(run, OFFSITE_HOST, BACKUP_TASK),
                        growth_bytes=grown, set_bytes=set_bytes, cpu=run['cpu'],
                        tasks=ansible.task_times(run['tasks'][OFFSITE_HOST], top=10))

        rounds = []
        rows = None
        for index in range(cfg['runs']):
            label = '%d' % (index + 1)
            # Every round: the host back to its pristine data, no sets, no state; an empty repository.
            self.reset([OFFSITE_HOST])
            docker.sh(REPO_HOST, 'rm -rf %s' % REPO_PATH)
            first = send('offsite-first-' + label)
            docker.sh(OFFSITE_HOST, 'bench-raw change %d' % (index + 1))
            second = send('offsite-second-' + label)
            state = self.expect(OFFSITE_HOST, FROM_VERSION, 1, 'the second backup.yml')
            rows = int(state['rows'])
            digest = docker.sh(OFFSITE_HOST, 'bench-raw digest').stdout
            # Whether restic used the first snapshot as the parent of the second (it reads and
            # chunks every file again without one).
            snapshots = json.loads(docker.sh(OFFSITE_HOST, 'RESTIC_REPOSITORY=%s RESTIC_PASSWORD_FILE=%s '
                                             'RESTIC_CACHE_DIR=/tmp/bench-restic-cache restic snapshots --json'
                                             % (REPOSITORY, PASSWORD_FILE)).stdout)
            if len(snapshots) != 2:
                raise BenchError('%s: %d snapshots after two sends, expected 2' % (REPOSITORY, len(snapshots)))
            second['parent'] = sorted(snapshots, key=lambda snap: snap['time'])[-1].get('parent')
            # 7. A fresh host (no MicroPVR) recovers the lost host's newest set: the second one.
            # A failed recovery is kept as the round's error, so that item 6 is still reported;
            # bench.py fails the run after printing (a figure of a failed run means nothing).
            docker.start(SPARE_HOST, SPARE_IMAGE, network=NETWORK)
            try:
                self._give_client(SPARE_HOST)
                self.settle(SPARE_HOST)
                recover = self._recover('recover-' + label, fqdn, seal_vars, rows, digest, task_seconds)
            except BenchError as exc:
                recover = dict(error=str(exc))
                self.errors.append('item 7, round %d: %s' % (index + 1, exc))
            finally:
                docker.docker('rm', '-f', SPARE_HOST)
            rounds.append(dict(first=first, second=second, recover=recover))
            self.log('offsite %d/%d: backup.yml first %.1f s (send %.1f s, +%d bytes), second %.1f s (send %.1f s, '
                     '+%d bytes); %s'
                     % (index + 1, cfg['runs'], first['seconds'], first['send_seconds'], first['growth_bytes'],
                        second['seconds'], second['send_seconds'], second['growth_bytes'],
                        'recovery FAILED' if 'error' in recover else 'recovery %.1f s (fetch %.1f s)'
                        % (recover['seconds'], recover['fetch_seconds'])))

        def series(key, field):
            return [r[key][field] for r in rounds if field in r[key]]

        result = dict(container=OFFSITE_HOST, repository=REPOSITORY, backend='sftp (OpenSSH in container %s)'
                      % REPO_HOST, restic=docker.sh(OFFSITE_HOST, 'restic version').stdout.strip(), rows=rows,
                      lost_host=fqdn, rounds=rounds)
        for field in ('seconds', 'send_seconds', 'growth_bytes'):
            firsts, seconds = series('first', field), series('second', field)
            result[field] = dict(first=stats.summary(firsts), second=stats.summary(seconds),
                                 ratio=stats.summary(stats.pair_ratios(seconds, firsts)) if min(firsts) > 0 else None)
        result['set_bytes'] = stats.summary(series('second', 'set_bytes'))
        recovered = [r for r in rounds if 'error' not in r['recover']]
        result['recover'] = dict((field, stats.summary(series('recover', field)))
                                 for field in ('seconds', 'fetch_seconds', 'fetch_share')) if recovered else {}
        result['recover']['failed'] = len(rounds) - len(recovered)
        self.results['offsite'] = result
        for name in (OFFSITE_HOST, REPO_HOST):
            docker.docker('rm', '-f', name)


    def _recover(self, label, fqdn, seal_vars, rows, digest, task_seconds):
        run = self.playbook(label, 'microimpuls.micropvr.restore_host', [SPARE_HOST],
                            extra_vars=dict(micropvr_recover_host=fqdn, micropvr_offsite_repository=REPOSITORY,
                                            micropvr_offsite_password_file=PASSWORD_FILE),
                            vars_files=[seal_vars])
        self.expect(SPARE_HOST, FROM_VERSION, 1, 'restore_host.yml', rows=rows)
        recovered = docker.sh(SPARE_HOST, 'bench-raw digest').stdout
        if recovered != digest:
            raise BenchError('%s after restore_host.yml: rows differ from %s (%r, expected %r)'
                             % (SPARE_HOST, OFFSITE_HOST, recovered, digest))
        fetch = task_seconds(run, SPARE_HOST, FETCH_TASK)
        return dict(seconds=run['seconds'], fetch_seconds=fetch, fetch_share=fetch / run['seconds'],
                    cpu=run['cpu'], tasks=ansible.task_times(run['tasks'][SPARE_HOST], top=12))


class Probe(object):
    """bench-probe inside the container for the duration of a ``with`` block."""

    def __init__(self, name, label, interval):
        self.name, self.label, self.interval = name, label, interval
        base = '/tmp/bench-probe-%s' % label
        self.out, self.stop_file, self.ready, self.done = base + '.jsonl', base + '.stop', base + '.ready', base + '.done'
        self.samples = []
        self.dpkg = []

    def __enter__(self):
        docker.sh(self.name, 'rm -f %s %s %s %s; : > %s' % (self.out, self.stop_file, self.ready, self.done,
                                                             DPKG_STATUS_LOG))
        docker.exec_detached(self.name, ['python3', '/usr/local/bin/bench-probe', '--out', self.out,
                                         '--stop-file', self.stop_file, '--ready-file', self.ready,
                                         '--done-file', self.done, '--interval', str(self.interval)])
        self._wait_for(self.ready, 20, 'the probe saw no successful is_alive before the run')
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            time.sleep(PROBE_TAIL)  # the recovery after the last step is part of the picture
        docker.sh(self.name, 'touch %s' % self.stop_file)
        self._wait_for(self.done, 20, 'the probe did not stop')
        self.samples = [json.loads(line) for line in docker.read_file(self.name, self.out).splitlines() if line]
        self.dpkg = stats.dpkg_lines(docker.read_file(self.name, DPKG_STATUS_LOG))
        return False

    def _wait_for(self, path, seconds, message):
        deadline = time.time() + seconds
        while docker.sh(self.name, 'test -e %s' % path, check=False).returncode != 0:
            if time.time() > deadline:
                raise BenchError('%s: %s (%s)' % (self.name, message, self.label))
            time.sleep(0.1)

    def result(self, seconds, start, end):
        windows = stats.outages(self.samples, start=start, end=end + PROBE_TAIL)
        if any(not w['recovered'] for w in windows):
            raise BenchError('%s: %s: the service did not answer is_alive again' % (self.name, self.label))
        # Times relative to the start of the run, in seconds; the timeline keeps only the changes.
        return dict(seconds=seconds, longest=stats.longest(windows),
                    unavailable=sum(w['seconds'] for w in windows), probes=len(self.samples),
                    windows=[dict(start=round(w['start'] - start, 3), seconds=round(w['seconds'], 3), errors=w['errors'],
                                  **{k: round(w[k], 3) for k in ('cpu_busy', 'cpu_iowait') if k in w})
                             for w in windows],
                    timeline=stats.timeline(self.samples, start),
                    # What dpkg did inside the longest window for the package whose maintainer
                    # scripts stop, migrate and start the daemon (stats.dpkg_marks).
                    window_dpkg=stats.dpkg_marks(self.dpkg, max(windows, key=lambda w: w['seconds']),
                                                 DAEMON_PACKAGE) if windows else {})


# The tasks of rollback.yml that do the work a raw rollback does too (or that it skips: the
# safety backup); rollback_profile() puts every other task in "other tasks".
ROLLBACK_WORK = (('safety backup', 'Back up the host as it is now'),
                 # "Restore the backup set" since the module chooses the set; "Restore backup set <id>" before.
                 # It also runs the health check, a task of its own before (counted in "other tasks" then).
                 ('restore', 'Restore the backup set'), ('restore', 'Restore backup set'))


def rollback_profile(run):
    """Where rollback.yml's wall time goes, from its task marks: before the first task (Ansible's
    start), the safety backup, the restore, the other tasks (and how many), after the last one."""
    tasks = run['tasks']
    profile = dict(start=tasks[0][1] if tasks else run['seconds'], other_tasks=0.0, other_task_count=0)
    for part, dummy in ROLLBACK_WORK:
        profile[part] = 0.0
    for task, dummy, seconds in tasks:
        title = task.split(' : ', 1)[-1]
        part = next((p for p, prefix in ROLLBACK_WORK if title.startswith(prefix)), None)
        if part:
            profile[part] += seconds
        else:
            profile['other_tasks'] += seconds
            profile['other_task_count'] += 1
    profile['end'] = max(run['seconds'] - max(offset + seconds for dummy, offset, seconds in tasks), 0.0) \
        if tasks else 0.0
    # The controller's own time from one task's result to the next task's start.
    profile['between_tasks'] = max(run['seconds'] - profile['start'] - profile['end']
                                   - sum(seconds for dummy, dummy2, seconds in tasks), 0.0)
    return profile


def window_dpkg(run):
    """'half-installed +0.41 s, ..., installed +6.90 s; ends +7.10 s': the daemon package's dpkg
    statuses in the longest outage window of a probed run, from the window's start."""
    marks = run.get('window_dpkg') or {}
    if not marks.get('statuses'):
        return 'no dpkg status of %s' % DAEMON_PACKAGE
    return '%s; ends +%.2f s' % (', '.join('%s +%.2f s' % (status, seconds) for status, seconds in marks['statuses']),
                                 marks['window_seconds'])


def window_cpu(run):
    """' (CPUs 93% busy, 2% iowait)' for the longest outage window of a probed run, '' without counters."""
    windows = [w for w in run['windows'] if 'cpu_busy' in w]
    if not windows:
        return ''
    window = max(windows, key=lambda w: w['seconds'])
    return ' (CPUs %.0f%% busy, %.0f%% iowait)' % (100 * window['cpu_busy'], 100 * window['cpu_iowait'])


# The part of the restore task that took the set of the host first (micropvr_restore's
# safety_backup_seconds): a mark of its own, named like the task that did it before.
SAFETY_BACKUP_MARK = 'microimpuls.micropvr.rollback : Back up the host as it is now (in the restore task)'


def task_step_seconds(host_tasks, key='step_seconds'):
    """How long each part of the host's first task that reports them took (the step_seconds of
    rollback.yml's micropvr_restore, of backup.yml's micropvr_backup; with ``key``
    safety_backup_step_seconds, the parts of the restore's safety backup); {} when no task did."""
    for r in host_tasks['results']:
        if r['status'] != 'skipped' and isinstance(r.get(key), dict):
            return r[key]
    return {}


def step_summaries(runs):
    """{part: summary} of the step_seconds of several runs; a part a run did not report counts 0."""
    parts = sorted(set(part for steps in runs for part in steps))
    return dict((part, stats.summary([steps.get(part, 0.0) for steps in runs])) for part in parts)


def task_marks(host_tasks, start):
    """[(task, start, seconds)] of the tasks that ran, relative to the start of the run; a restore
    task that took the set of the host first is two marks, that backup and the rest."""
    marks = []
    for r in host_tasks['results']:
        if r['status'] == 'skipped':
            continue
        offset, seconds = round(r['start'] - start, 3), r['seconds']
        safety = min(r.get('safety_backup_seconds') or 0.0, seconds)
        if safety:
            marks.append((SAFETY_BACKUP_MARK, offset, safety))
            offset, seconds = round(offset + safety, 3), round(seconds - safety, 3)
        marks.append((r['task'], offset, seconds))
    return marks
