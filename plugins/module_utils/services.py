# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a service already run what a package install just put on disk?

An apt-get install of MicroPVR runs the packages' maintainer scripts, which (dh_installinit's
default) stop the daemon in prerm and start the new one in postinst. Restarting it once more
afterwards is a second, needless outage. A service needs no restart when it is running and every
one of its processes was started after the install began and runs no binary or library that was
replaced (``/proc/<pid>/exe`` or a mapping shown as "(deleted)"). Anything else, or anything
this module cannot prove, means: restart (the safe side).

Process start times are compared on the boot-time clock: ``/proc/<pid>/stat`` field 22 counts
clock ticks since boot, and ``time.clock_gettime(CLOCK_BOOTTIME)`` reads the same clock, so no
wall-clock step and no whole-second ``btime`` rounding can make an old process look new.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import INIT_DIR
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import service_state

PROC = '/proc'
DELETED = ' (deleted)'
# Mapped files under these trees come from packages; a deleted one there is a replaced
# library. Others ("/memfd:x (deleted)", files under /tmp or /dev/shm) say nothing about an update.
PACKAGED_TREES = ('/usr/', '/lib', '/bin/', '/sbin/', '/opt/', '/etc/')
# Programs that run a script named by their first argument (how a "#!" line is executed).
INTERPRETERS = ('python', 'perl', 'ruby', 'node', 'php', 'sh', 'bash', 'dash')
# Paths an init script names for its pid file: PIDFILE=... or --pidfile ... (shell words).
_ASSIGNMENT = re.compile(r'^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(["\']?)([^"\'\s;#]*)\2\s*(?:[;#].*)?$')
_PIDFILE_OPTION = re.compile(r'--pidfile[= ]+(["\']?)([^"\'\s;]+)\1')
_VARIABLE = re.compile(r'\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?')


def clock_ticks():
    return os.sysconf('SC_CLK_TCK')


def boot_clock():
    """Seconds since boot on the clock /proc/<pid>/stat start times count on."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def parse_stat(text):
    """pid, comm, state, ppid and start time (clock ticks since boot) from /proc/<pid>/stat.

    comm is in parentheses and may itself hold spaces and parentheses ("(sd-pam)", "a) b"),
    so the fields after it are found after the LAST ")".
    """
    head, sep, tail = text.rpartition(')')
    if not sep or '(' not in head:
        raise ValueError('not a /proc/<pid>/stat line: %r' % text[:80])
    pid, dummy, comm = head.partition('(')
    fields = tail.split()
    # tail starts at field 3 (state); field 22 (starttime) is fields[19].
    if len(fields) < 20:
        raise ValueError('short /proc/<pid>/stat line: %r' % text[:80])
    return dict(pid=int(pid), comm=comm, state=fields[0], ppid=int(fields[1]), start_ticks=int(fields[19]))


def read_process(pid, proc=PROC):
    """What decides whether process ``pid`` is fresh; None when it is gone (or not readable)."""
    base = os.path.join(proc, str(pid))
    try:
        with open(os.path.join(base, 'stat')) as handle:
            stat = parse_stat(handle.read())
        with open(os.path.join(base, 'cmdline'), 'rb') as handle:
            argv = [arg.decode('utf-8', 'replace') for arg in handle.read().split(b'\0') if arg]
    except (OSError, ValueError):
        return None
    try:
        exe = os.readlink(os.path.join(base, 'exe'))
    except OSError:
        # Without CAP_SYS_PTRACE (a container's root) the exe of another user's process (nginx
        # workers as www-data) cannot be read; such a process is judged by its start time: one
        # started after the install began was exec'd from the files installed, or forked from a
        # parent that is itself checked.
        exe = None
    # The maps are read later, only for a service's own processes.
    stat.update(exe=exe, argv=argv, deleted_maps=[])
    return stat


def deleted_mappings(base):
    """Packaged files (libraries) this process still maps although they were deleted or replaced."""
    found = set()
    try:
        with open(os.path.join(base, 'maps')) as handle:
            for line in handle:
                if not line.rstrip('\n').endswith(DELETED):
                    continue
                parts = line.split(None, 5)
                path = parts[5].rstrip('\n')[:-len(DELETED)] if len(parts) == 6 else ''
                if path.startswith(PACKAGED_TREES):
                    found.add(path)
    except OSError:
        pass
    return sorted(found)


def all_pids(proc=PROC):
    return [int(name) for name in os.listdir(proc) if name.isdigit()]


def init_script_pidfiles(text):
    """Absolute pid-file paths an init script names (PIDFILE=..., --pidfile ...), with simple
    ``$VAR``/``${VAR}`` references to its own plain assignments resolved."""
    variables = {}
    candidates = []
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            variables[match.group(1)] = match.group(3)
            if 'PID' in match.group(1).upper():
                candidates.append(match.group(3))
        candidates.extend(m.group(2) for m in _PIDFILE_OPTION.finditer(line))
    paths = []
    for value in candidates:
        for dummy in range(5):  # nested references (PIDFILE=$RUNDIR/x, RUNDIR=$PREFIX/run)
            value = _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
        if value.startswith('/') and '$' not in value and value not in paths:
            paths.append(value)
    return paths


def read_pidfile(path):
    try:
        with open(path) as handle:
            text = handle.read().split()
    except OSError:
        return None
    return int(text[0]) if text and text[0].isdigit() else None


def program_paths(process):
    """The files a process runs: its exe, and for an interpreter (a "#!/usr/bin/python3" script
    such as the stand-in's /usr/sbin/micropvr runs as "python3 /usr/sbin/micropvr") the script,
    its first argument that is not an option. A file merely named as an argument ("less
    /usr/sbin/micropvr") does not count."""
    exe = process['exe'] or ''
    exe = exe[:-len(DELETED)] if exe.endswith(DELETED) else exe
    paths = [exe] if exe else []
    if os.path.basename(exe).startswith(INTERPRETERS):
        script = next((arg for arg in process['argv'][1:4] if not arg.startswith('-')), '')
        if script.startswith('/'):
            paths.append(script)
    return paths


def find_service_processes(pidfile_pids, package_files, processes):
    """The processes of one service: those its pid files name, those that run one of its
    package's files, and all their descendants (nginx workers, forked children).

    ``processes`` maps pid -> read_process() of every process on the host.
    """
    chosen = set(pid for pid in pidfile_pids if pid in processes)
    if package_files:
        chosen.update(pid for pid, proc in processes.items()
                      if any(path in package_files for path in program_paths(proc)))
    children = {}
    for pid, proc in processes.items():
        children.setdefault(proc['ppid'], []).append(pid)
    todo = list(chosen)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in chosen:
                chosen.add(child)
                todo.append(child)
    return [processes[pid] for pid in sorted(chosen)]


def decide(running, status_rc, processes, install_start_ticks, package, updated_packages):
    """(fresh, reason) for one service from facts about it; pure, so unit tests pin it down.

    ``install_start_ticks`` is the boot-clock time (in clock ticks) taken just before apt-get ran.
    """
    if not running:
        return False, 'not running (status exit %s): started' % status_rc
    if not processes:
        return False, 'running, but none of its processes was found (pid file, package files): restarted to be sure'
    stale = []
    for proc in processes:
        if (proc['exe'] or '').endswith(DELETED):
            stale.append('pid %d runs the replaced binary %s' % (proc['pid'], proc['exe']))
        elif proc['start_ticks'] < install_start_ticks:
            stale.append('pid %d (%s) started before the install' % (proc['pid'], proc['comm']))
        elif proc['deleted_maps']:
            stale.append('pid %d maps replaced files: %s' % (proc['pid'], ', '.join(proc['deleted_maps'][:3])))
    if stale:
        return False, '; '.join(stale)
    pids = ', '.join(str(proc['pid']) for proc in processes)
    if package and package in updated_packages:
        return True, 'the install (maintainer scripts of %s) started it: pid %s, after the install began' % (package, pids)
    return True, 'pid %s started after the install began and runs no replaced file' % pids


def package_files(module, packages):
    """Every path dpkg lists for each package (``dpkg-query -L``), as {package: set}."""
    dpkg_query = module.get_bin_path('dpkg-query', required=True)
    result = {}
    for name in packages:
        rc, out, err = module.run_command([dpkg_query, '-L', name])
        # Directories ("/usr", "/etc") would match any process that merely names one.
        result[name] = set(line for line in out.splitlines()
                           if line.startswith('/') and not os.path.isdir(line)) if rc == 0 else set()
    return result


def script_owners(module, scripts):
    """{init script path: package} for the scripts dpkg knows (``dpkg-query -S``)."""
    if not scripts:
        return {}
    rc, out, err = module.run_command([module.get_bin_path('dpkg-query', required=True), '-S'] + list(scripts))
    owners = {}
    for line in out.splitlines():
        package, sep, path = line.partition(': ')
        if sep and path.strip() in scripts and ', ' not in package and not package.startswith('diversion by'):
            owners[path.strip()] = package.split(':')[0]
    return owners


def init_script(module, name, **fail_result):
    """The path of the executable init script of service ``name``; fails the module (with
    ``fail_result``) naming it when there is none."""
    script = os.path.join(INIT_DIR, name)
    if not os.access(script, os.X_OK):
        module.fail_json(msg='services: %s has no init script %s' % (name, script), **fail_result)
    return script


def run_service(module, name, action, **fail_result):
    """``/etc/init.d/<name> <action>`` (stop, start, restart): (rc, output). Fails the module
    (with ``fail_result``) when the service has no executable init script."""
    rc, out, err = module.run_command([init_script(module, name, **fail_result), action])
    return rc, (out + err).strip()


def service_freshness(module, services, updated_packages, install_start):
    """{service: {running, fresh, reason, pids}} after an install that began at ``install_start``
    (boot_clock() seconds), and the services to restart, in the order given."""
    start_ticks = int(install_start * clock_ticks())
    scripts = dict((name, os.path.join(INIT_DIR, name)) for name in services)
    owners = script_owners(module, [path for path in scripts.values() if os.path.exists(path)])
    files = package_files(module, sorted(set(owners.values())))
    processes = {}
    for pid in all_pids():
        proc = read_process(pid)
        if proc is not None and pid != os.getpid():
            processes[pid] = proc
    result = {}
    for name in services:
        state = service_state(module, name)
        if not state['exists']:
            result[name] = dict(running=False, fresh=False, pids=[],
                                reason='no executable init script %s: restarted as asked' % scripts[name])
            continue
        try:
            with open(scripts[name]) as handle:
                pidfiles = init_script_pidfiles(handle.read())
        except (OSError, UnicodeDecodeError):
            pidfiles = []
        package = owners.get(scripts[name])
        procs = find_service_processes([pid for pid in map(read_pidfile, pidfiles) if pid],
                                       files.get(package, set()), processes)
        for proc in procs:
            proc['deleted_maps'] = deleted_mappings(os.path.join(PROC, str(proc['pid'])))
        running = state['status_rc'] == 0
        fresh, reason = decide(running, state['status_rc'], procs, start_ticks, package, updated_packages)
        result[name] = dict(running=running, fresh=fresh, reason=reason, pids=[p['pid'] for p in procs])
    return result, [name for name in services if not result[name]['fresh']]
