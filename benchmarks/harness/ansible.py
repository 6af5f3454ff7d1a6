"""Run the collection's playbooks against bench containers and time them.

Every run gets an empty ANSIBLE_CONFIG (Ansible's defaults, whatever ~/.ansible.cfg says) and an
explicit ANSIBLE_PIPELINING, or a given configuration file (the recommended
docs/ansible.cfg.example, copied as *.cfg) that decides pipelining itself; then the docker
connection Molecule uses, and the bench_tasks callback,
which writes one JSON line per task result so that tasks per host and per-task times can be read.
"""

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CALLBACK_DIR = os.path.join(os.path.dirname(HERE), 'callback_plugins')


class PlaybookError(RuntimeError):
    """A playbook run that failed; the message carries the end of its output."""


def write_inventory(path, hosts):
    lines = ['---', 'micropvr:', '  hosts:']
    for host in hosts:
        lines += ['    %s:' % host,
                  '      ansible_connection: community.docker.docker',
                  '      ansible_python_interpreter: /usr/bin/python3']
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


DOCKER_SHIM = """#!/bin/sh
# bench: count the docker CLI calls of the connection plugin, then run the real docker.
echo "$1" >>"$BENCH_DOCKER_LOG"
exec %s "$@"
"""


def docker_shim(workdir):
    """A directory with a ``docker`` that logs each call's subcommand to $BENCH_DOCKER_LOG and
    runs the real one; put first on PATH, it counts the connection plugin's calls."""
    real = shutil.which('docker')
    if real is None:
        raise PlaybookError('docker: not found on PATH')
    shim_dir = os.path.join(workdir, 'docker-shim')
    os.makedirs(shim_dir, exist_ok=True)
    shim = os.path.join(shim_dir, 'docker')
    with open(shim, 'w') as handle:
        handle.write(DOCKER_SHIM % shlex.quote(real))
    os.chmod(shim, 0o755)
    return shim_dir


def run_playbook(workdir, label, playbook, hosts, extra_vars=None, pipelining=False, forks=None, vars_files=(),
                 config=None, count_docker_calls=False, cpus=None):
    """Run ``playbook`` (FQCN) against ``hosts``; return timing and per-host task counts.

    ``vars_files``: files of extra variables (``-e @file``), for secrets such as a seal key,
    which must not appear in a process's arguments as ``extra_vars`` do.
    ``config``: an ansible.cfg to run with instead of the empty one; ``pipelining`` is then not
    set in the environment (which would override the file), the file's own setting applies.
    ``cpus``: a CPU list (``taskset --cpu-list``) that ansible-playbook, its workers and their
    docker CLI calls are confined to.
    Raises PlaybookError when ansible-playbook fails: a benchmark of a failed run means nothing.
    """
    bin_dir = os.path.dirname(os.path.abspath(sys.executable))
    playbook_bin = os.path.join(bin_dir, 'ansible-playbook')
    if not os.path.exists(playbook_bin):
        playbook_bin = 'ansible-playbook'
    inventory = write_inventory(os.path.join(workdir, '%s.hosts.yml' % label), hosts)
    task_log = os.path.join(workdir, '%s.tasks.jsonl' % label)
    output_log = os.path.join(workdir, '%s.log' % label)
    if config is None:
        config = os.path.join(workdir, 'ansible.cfg')
        if not os.path.exists(config):
            with open(config, 'w') as handle:
                handle.write('# Empty on purpose: the benchmarks run with Ansible\'s defaults.\n')
    elif not config.endswith('.cfg') or not os.path.isfile(config):
        raise ValueError('%s: not a file named *.cfg (Ansible ignores any other name)' % config)
    for path in (task_log,):
        if os.path.exists(path):
            os.unlink(path)
    env = dict(os.environ,
               ANSIBLE_CONFIG=config,
               ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
               ANSIBLE_CALLBACKS_ENABLED='bench_tasks',
               ANSIBLE_FORCE_COLOR='false',
               ANSIBLE_NOCOLOR='1',
               ANSIBLE_RETRY_FILES_ENABLED='false',
               BENCH_TASK_LOG=task_log)
    env.pop('ANSIBLE_PIPELINING', None)
    docker_log = None
    if count_docker_calls:
        docker_log = os.path.join(workdir, '%s.docker-calls' % label)
        open(docker_log, 'w').close()
        env.update(PATH=docker_shim(workdir) + os.pathsep + env.get('PATH', ''), BENCH_DOCKER_LOG=docker_log)
    if pipelining is not None:
        env['ANSIBLE_PIPELINING'] = 'True' if pipelining else 'False'
    args = [playbook_bin, '-i', inventory, playbook, '--forks', str(max(forks or len(hosts), 1))]
    for key, value in sorted((extra_vars or {}).items()):
        args += ['-e', json.dumps({key: value})]
    for path in vars_files:
        args += ['-e', '@' + path]
    args = confined(cpus, args)
    started = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(output_log, 'w') as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            controller_main = exited_process_cpu(proc.pid)
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM): no ansible-playbook left running, as subprocess.run does.
            proc.kill()
            proc.wait()
            raise
        proc.wait()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ansible-playbook, its workers and the docker CLI processes of the connection plugin.
    controller_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The kernel's part: mostly forking a worker per task and host and copying the pages it writes.
    controller_system = after.ru_stime - before.ru_stime
    ended = time.time()
    with open(output_log) as handle:
        output = handle.read()
    if proc.returncode != 0:
        raise PlaybookError('%s (%s) failed (rc=%d), full output in %s:\n%s'
                            % (playbook, label, proc.returncode, output_log, '\n'.join(output.splitlines()[-40:])))
    tasks = read_task_log(task_log)
    run = dict(seconds=seconds, start=started, end=ended, playbook=playbook, hosts=list(hosts),
               pipelining=pipelining, config=config, tasks=tasks, log=output_log, controller_cpu=controller_cpu,
               controller_system=controller_system, controller_main=controller_main, cpus=cpus)
    if docker_log:
        with open(docker_log) as handle:
            run['docker_calls'] = sum(1 for line in handle if line.strip())
    return run


def confined(cpus, command):
    """``command`` run on the CPUs of the list ``cpus`` (taskset), or as it is when None."""
    return ['taskset', '--cpu-list', cpus] + command if cpus else command


def exited_process_cpu(pid):
    """CPU seconds (user + system) of process ``pid`` itself, without its children: waits until it
    exits and reads its /proc entry before it is reaped (``WNOWAIT``: the caller's wait() reaps it),
    when the figures are final. For ansible-playbook, the main process apart from its workers.
    None where /proc does not say (not Linux)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    try:
        with open('/proc/%d/stat' % pid) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    # utime and stime are the 14th and 15th fields of proc(5); fields[0] is the 3rd (state).
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def docker_call_cpu(workdir, host, calls=20, cpus=None):
    """CPU seconds the controller pays for one docker CLI call through the shim (``docker exec
    HOST true``: the CLI's start, the API round trip, the exit), the mean of ``calls``."""
    env = dict(os.environ, BENCH_DOCKER_LOG=os.devnull)
    shim = os.path.join(docker_shim(workdir), 'docker')
    command = confined(cpus, [shim, 'exec', host, 'true'])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for dummy in range(calls):
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / calls


def null_task_cpu(workdir, hosts, tasks=20, cpus=None, remote=False, config=None):
    """What Ansible itself costs the controller per host and task when the task does nothing: a
    playbook of ``tasks`` ``ansible.builtin.debug`` tasks (no connection, no module), or with
    ``remote`` of ``ansible.builtin.ping`` tasks (one module run on the host each, through the
    connection), over ``hosts`` at once, ``--forks`` = hosts, with ``config`` (an ansible.cfg) if
    given. Returns the controller's CPU seconds per evaluation (one task on one host: a worker
    forked, the task templated, run and its result processed; the playbook's start spread over
    them) and the main process's part of it."""
    module = 'ansible.builtin.ping' if remote else 'ansible.builtin.debug'
    label = 'null-tasks-%s' % module.split('.')[-1]
    playbook = os.path.join(workdir, label + '.yml')
    lines = ['---', '- name: Tasks that do nothing on the hosts', '  hosts: all', '  gather_facts: false', '  tasks:']
    for number in range(1, tasks + 1):
        lines += ['    - name: Null task %d' % number, '      %s:' % module]
        if not remote:
            lines += ['        msg: %d' % number]
    with open(playbook, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    run = run_playbook(workdir, label, playbook, hosts, cpus=cpus, config=config, pipelining=None if config else False)
    evaluations = float(len(hosts) * tasks)
    return dict(cpu=run['controller_cpu'] / evaluations,
                main=run['controller_main'] / evaluations if run['controller_main'] is not None else None)


def read_task_log(path):
    """Per host: results by status, and each result's task, action and duration."""
    hosts = {}
    if not os.path.exists(path):
        return hosts
    with open(path) as handle:
        for line in handle:
            record = json.loads(line)
            if record.get('event') != 'result':
                continue
            host = hosts.setdefault(record['host'], dict(counts={}, results=[]))
            host['counts'][record['status']] = host['counts'].get(record['status'], 0) + 1
            host['results'].append(dict(task=record['task'], action=record['action'], status=record['status'],
                                        start=record['start'], end=record['end'],
                                        seconds=round(record['end'] - record['start'], 3)))
            for key in ('safety_backup_seconds', 'step_seconds', 'safety_backup_step_seconds'):
                if key in record:
                    host['results'][-1][key] = record[key]
    return hosts


def tasks_run(host_tasks):
    """Tasks that ran on a host (every result but skipped ones)."""
    return sum(n for status, n in host_tasks['counts'].items() if status != 'skipped')


def evaluations(host_tasks):
    """Task results of a host, skipped ones too: each cost the controller a worker."""
    return sum(host_tasks['counts'].values())


def task_times(host_tasks, top=None):
    """[(task, seconds)] of the results that ran, slowest first."""
    rows = [(r['task'], r['seconds']) for r in host_tasks['results'] if r['status'] != 'skipped']
    rows.sort(key=lambda row: row[1], reverse=True)
    return rows[:top] if top else rows
