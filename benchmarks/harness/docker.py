"""Bench containers through the docker CLI: every one is named bench-* and carries LABEL.

Everything the harness creates (containers, the prepared images, the network) is labelled, so cleanup()
removes exactly those, also after a crashed or interrupted run, and never touches Molecule's
micropvr-* containers.
"""

import os
import shutil
import subprocess
import time

DOCKER = os.environ.get('BENCH_DOCKER', 'docker')
LABEL = 'org.microimpuls.micropvr.bench=1'
NAME_PREFIX = 'bench-'
# PID 1 must reap the daemons' orphans, as in every test-bed container.
INIT_COMMAND = ['/usr/bin/tini', '-s', '--', 'sleep', 'infinity']


class CommandError(RuntimeError):
    """A command that failed; the message carries its output."""


def _run(args, check=True, timeout=None, input_text=None):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input_text, check=False)
    if check and proc.returncode != 0:
        raise CommandError('%s failed (rc=%d):\n%s%s' % (' '.join(args), proc.returncode,
                                                         _tail(proc.stdout), _tail(proc.stderr)))
    return proc


def _tail(text, lines=25):
    text = (text or '').rstrip()
    return '\n'.join(text.splitlines()[-lines:]) + '\n' if text else ''


def docker(*args, check=True, timeout=None):
    return _run([DOCKER] + list(args), check=check, timeout=timeout)


def check_engine():
    proc = docker('info', '--format', '{{.ServerVersion}}', check=False, timeout=60)
    if proc.returncode != 0:
        raise CommandError('the docker engine does not answer (run `make testbed` first): %s' % proc.stderr.strip())
    return proc.stdout.strip()


def root_dir():
    """The Docker data root, where the containers' files (and so the generated databases) live."""
    return docker('info', '--format', '{{.DockerRootDir}}').stdout.strip() or '/var/lib/docker'


def root_free_mib():
    return shutil.disk_usage(root_dir()).free // 1048576


def image_exists(image):
    return docker('image', 'inspect', image, check=False).returncode == 0


def start(name, image, network=None):
    """Start a fresh container ``name`` (removed first if it exists), on ``network`` if given.

    On a user-defined network the containers reach each other by name (Docker's DNS), as the
    off-host benchmark's hosts reach the repository server.
    """
    if not name.startswith(NAME_PREFIX):
        raise ValueError('bench containers are named %s*, not %s' % (NAME_PREFIX, name))
    docker('rm', '-f', name, check=False)
    placement = ['--network', network] if network else []
    docker('run', '-d', '--name', name, '--hostname', name, '--label', LABEL, *placement, image, *INIT_COMMAND)
    return name


def network(name):
    """A fresh user-defined network ``name`` (labelled like the containers, so cleanup() removes it)."""
    if not name.startswith(NAME_PREFIX):
        raise ValueError('bench networks are named %s*, not %s' % (NAME_PREFIX, name))
    docker('network', 'rm', name, check=False)
    docker('network', 'create', '--label', LABEL, name)
    return name


def sh(name, script, check=True, timeout=None):
    """Run a bash script in the container; the CompletedProcess (output captured)."""
    return docker('exec', name, 'bash', '-c', script, check=check, timeout=timeout)


def exec_timed(name, args, timeout=None):
    """Run a command in the container; (seconds, start, end) measured from this side, as for Ansible."""
    started = time.time()
    t0 = time.perf_counter()
    docker('exec', name, *args, timeout=timeout)
    return time.perf_counter() - t0, started, time.time()


def exec_detached(name, args):
    docker('exec', '-d', name, *args)


def copy_in(name, source, destination, mode=None):
    docker('cp', source, '%s:%s' % (name, destination))
    if mode is not None:
        sh(name, 'chmod %s %s' % (mode, destination))


def read_file(name, path):
    return docker('exec', name, 'cat', path).stdout


def container_cpu_seconds(names):
    """CPU time the containers have used so far (cgroup accounting read on this host), or None."""
    total = 0.0
    for name in names:
        container_id = docker('inspect', '-f', '{{.Id}}', name).stdout.strip()
        for path, scale in (('/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage' % container_id, 1e-9),
                            ('/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat' % container_id, 1e-6),
                            ('/sys/fs/cgroup/docker/%s/cpu.stat' % container_id, 1e-6)):
            if os.path.exists(path):
                with open(path) as handle:
                    text = handle.read()
                if path.endswith('cpu.stat'):  # cgroup v2: "usage_usec N"
                    text = dict(line.split() for line in text.splitlines()).get('usage_usec', '0')
                total += int(text.split()[0]) * scale
                break
        else:
            return None
    return total


def machine_busy_seconds():
    """CPU time all CPUs of this machine have been busy so far (/proc/stat), or None."""
    try:
        with open('/proc/stat') as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (IOError, OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / float(os.sysconf('SC_CLK_TCK'))


def commit(name, image):
    docker('commit', '--change', 'LABEL %s' % LABEL, name, image)


def cleanup():
    """Remove every labelled container, network and image; returns what was removed."""
    removed = []
    ids = docker('ps', '-aq', '--filter', 'label=%s' % LABEL, check=False).stdout.split()
    if ids:
        docker('rm', '-f', *ids, check=False)
        removed.extend(ids)
    # A network goes only once no container uses it, hence after the containers.
    for net in docker('network', 'ls', '-q', '--filter', 'label=%s' % LABEL, check=False).stdout.split():
        if docker('network', 'rm', net, check=False).returncode == 0:
            removed.append(net)
    images = docker('images', '-q', '--filter', 'label=%s' % LABEL, check=False).stdout.split()
    for image in sorted(set(images)):
        # The test-bed images carry no bench label; only what the harness committed is removed.
        if docker('rmi', '-f', image, check=False).returncode == 0:
            removed.append(image)
    return removed
