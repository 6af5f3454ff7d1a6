# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection keeps on a host between runs: the history file and the update lock.

Both live in one root-only directory (``micropvr_state_dir``), checked and created by
safepath.ensure_private_dir; every file in it is opened without following a symbolic link
(safepath.open_nofollow), so a link planted there cannot redirect a write. The history is JSON lines,
appended under an flock and fsynced, so it survives a crash of the run that writes it.
The lock is a file created with O_EXCL, because an Ansible run spans many module calls and
no process lives long enough to hold an flock for it.

While a module of the run changes packages (install, restore), the lock also names that
*step*, and the module holds an flock on STEP_FILE for as long as it works. The kernel drops
an flock when its process dies, so a lock that names a step nobody holds is the mark of a run
killed in the middle of changing the host: the next run takes over and recovers the host
from the step's backup set instead of waiting for the lock to expire.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import errno
import fcntl
import json
import os
import struct

from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import (
    UnsafePathError, ensure_private_dir, open_nofollow)

HISTORY_FILE = 'history.jsonl'
LOCK_FILE = 'update.lock'
STEP_FILE = 'step.flock'
# apt and dpkg hold POSIX (fcntl) locks on these while they change packages.
DPKG_LOCKS = ('/var/lib/dpkg/lock-frontend', '/var/lib/dpkg/lock')
DEFAULT_STATE_DIR = '/var/lib/microimpuls-micropvr'


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def ensure_dir(path):
    """Create the state directory 0700 (parents 0755) unless it exists; True when it was created.

    Raises safepath.UnsafePathError for a directory that is no private one of the collection
    (a system directory, a symbolic link, owned by someone else, writable by group or others);
    an existing directory is never chmodded.
    """
    return ensure_private_dir(path, 'state_dir')


def append_history(state_dir, record, now=None):
    """Append one event to the history; returns the record as written (with its time)."""
    ensure_dir(state_dir)
    entry = dict(record)
    entry.setdefault('time', iso(now or utc_now()))
    path = os.path.join(state_dir, HISTORY_FILE)
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(entry, sort_keys=True) + '\n')
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def record_event(state_dir, event, data, check_mode=False):
    """The history entry of ``event`` with ``data`` (a dict): appended, or only returned in
    check mode. One rule for micropvr_history and for micropvr_lock's release."""
    entry = dict(data or {}, event=event)
    return entry if check_mode else append_history(state_dir, entry)


def read_history(state_dir):
    """Every event in the history, oldest first; unreadable lines are returned as errors."""
    path = os.path.join(state_dir, HISTORY_FILE)
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise
    events = []
    with os.fdopen(fd) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append(dict(event='unreadable', line=number))
    return events


def last_updated_set(events):
    """The backup id of the host's last successful update (its pre-update set), or None.

    ``events`` as from read_history(). Retention keeps this set: it is what a rollback of the
    version now running would restore.
    """
    for entry in reversed(events):
        if entry.get('event') == 'update' and entry.get('outcome') == 'updated':
            backup_id = entry.get('backup_id')
            return backup_id if isinstance(backup_id, str) and backup_id else None
    return None


def read_lock(state_dir):
    """The current lock's content, or None when the host is not locked.

    A symbolic link in place of the lock raises safepath.UnsafePathError: it is not followed.
    """
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        with os.fdopen(open_nofollow(path, os.O_RDONLY)) as handle:
            content = handle.read()
    except (IOError, OSError):
        return None
    try:
        lock = json.loads(content)
    except ValueError:
        lock = dict(owner=None, purpose='unreadable lock file', acquired_at=None)
    return lock if isinstance(lock, dict) else dict(owner=None, purpose='unreadable lock file', acquired_at=None)


def lock_age(lock, now=None):
    """Seconds since the lock was taken, or None when it does not say."""
    try:
        taken = datetime.datetime.strptime(lock.get('acquired_at') or '', '%Y-%m-%dT%H:%M:%SZ')
    except ValueError:
        return None
    return ((now or utc_now()) - taken.replace(tzinfo=datetime.timezone.utc)).total_seconds()


def create_lock(state_dir, lock):
    """Create the lock file exclusively; False when it already exists."""
    ensure_dir(state_dir)
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    with os.fdopen(fd, 'w') as handle:
        json.dump(lock, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def remove_lock(state_dir):
    path = os.path.join(state_dir, LOCK_FILE)
    if os.path.lexists(path):
        os.unlink(path)
        return True
    return False


def write_lock(state_dir, lock):
    """Replace the content of an existing lock atomically (readers see the old or the new one)."""
    path = os.path.join(state_dir, LOCK_FILE)
    tmp = path + '.new'
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(lock, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def step_in_progress(state_dir):
    """True while some process holds the step flock (a module is changing the host)."""
    path = os.path.join(state_dir, STEP_FILE)
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError) as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return True
        raise
    finally:
        os.close(fd)
    return False


def posix_lock_holder(path):
    """Pid of the process holding a POSIX write lock on ``path``, or None (F_GETLK: takes nothing)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        query = struct.pack('hhllhh', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    finally:
        os.close(fd)
    lock_type, dummy, dummy, dummy, pid, dummy = struct.unpack('hhllhh', answer)
    return None if lock_type == fcntl.F_UNLCK else pid


def package_manager_busy(lock_paths=DPKG_LOCKS):
    """Pid of a running apt or dpkg (holder of a dpkg lock), or None."""
    for path in lock_paths:
        pid = posix_lock_holder(path)
        if pid:
            return pid
    return None


def interrupted_step(lock, state_dir, lock_paths=DPKG_LOCKS):
    """The step a dead run left in ``lock``, or None.

    Dead means: no process holds the step, and no apt or dpkg is still at work (the module
    process may die while the apt-get it started goes on).
    """
    if not lock or not isinstance(lock.get('step'), dict):
        return None
    if step_in_progress(state_dir) or package_manager_busy(lock_paths):
        return None
    return lock['step']


class LockError(Exception):
    pass


class LockRefused(Exception):
    """take_lock() could not take the host lock; ``lock`` is the lock that stands in the way."""

    def __init__(self, message, lock=None):
        super(LockRefused, self).__init__(message)
        self.lock = lock

    def __str__(self):
        return self.args[0]


def take_lock(state_dir, owner, purpose, ttl, check_mode=False, warn=None):
    """Take the host lock for run ``owner`` (M(micropvr_lock) state=present, and M(micropvr_restore)
    with O(lock)); ``dict(changed, lock[, taken_over][, interrupted])``.

    A lock of the same owner is kept as it is. Another run's lock is refused (LockRefused) while
    that run changes the host (its step runs, or its apt/dpkg still does) or while it is younger
    than ``ttl`` seconds; a lock whose step was interrupted, or an older one, is taken over, with
    a warning (``warn(message)``). In check mode nothing is written.
    """
    warn = warn or (lambda message: None)
    current = read_lock(state_dir)
    mine = dict(owner=owner, purpose=purpose, acquired_at=iso(utc_now()))
    if current is not None and current.get('owner') == owner:
        return dict(changed=False, lock=current)
    result = dict(changed=True, lock=mine)
    if current is not None:
        describe = '%s, owner %s, since %s' % (current.get('purpose') or 'unknown purpose', current.get('owner'),
                                               current.get('acquired_at'))
        running = current.get('step') or {}
        if step_in_progress(state_dir):
            raise LockRefused('the host is locked by another run (%s) whose %s step is running right now (pid %s); '
                              'wait for it to finish' % (describe, running.get('name', 'unknown'),
                                                         running.get('pid', 'unknown')), current)
        busy = package_manager_busy() if running else None
        if busy:
            raise LockRefused('the host is locked by another run (%s) whose %s step left apt/dpkg running '
                              '(pid %d holds the dpkg lock); wait for it to finish'
                              % (describe, running.get('name'), busy), current)
        interrupted = interrupted_step(current, state_dir)
        age = lock_age(current)
        if interrupted is None and age is not None and age <= ttl:
            raise LockRefused(
                'the host is locked by another run (%s, %d s ago); wait for it to finish. '
                'If that run is dead, the lock expires after %d s (micropvr_lock_ttl) or can be removed: %s/%s'
                % (describe, age, ttl, state_dir, LOCK_FILE), current)
        result['taken_over'] = current
        if interrupted is not None:
            result['interrupted'] = dict(owner=current.get('owner'), purpose=current.get('purpose'), step=interrupted)
            warn('run %s was interrupted during its %s step (started %s): the host may be half-changed; '
                 'this run takes over its lock to recover the host from backup set %s'
                 % (current.get('owner'), interrupted.get('name'), interrupted.get('started_at'),
                    interrupted.get('backup_id') or '(none: the backup gate was overridden)'))
        else:
            warn('took over an abandoned lock (%s): older than %d s (micropvr_lock_ttl)' % (describe, ttl))
    if check_mode:
        return result
    if current is not None:
        remove_lock(state_dir)
    if not create_lock(state_dir, mine):
        raise LockRefused('another run took the lock at the same moment: %s' % read_lock(state_dir), read_lock(state_dir))
    return result


def release_lock(state_dir, owner, event=None, data=None, check_mode=False, warn=None):
    """Release the host lock of run ``owner`` (M(micropvr_lock) state=absent, and M(micropvr_restore)
    with O(lock.release)), after recording ``event`` with ``data`` in the history.

    Returns ``(dict(changed, lock[, kept][, entry]), history_error)``: ``lock`` is the lock as it is
    afterwards (None when released), ``history_error`` why the event could not be written (the
    lock is released all the same), else None. The event is written before the lock goes, so that
    the next run that takes the lock sees it. Another run's lock is left alone; a lock that keeps
    an unfinished step of this run stays, because that is how the next run learns that the host
    must be recovered first. Each is said through ``warn(message)``. In check mode nothing is written.
    """
    warn = warn or (lambda message: None)
    result, history_error = {}, None
    if event:
        try:
            result['entry'] = record_event(state_dir, event, data, check_mode)
        except (OSError, UnsafePathError) as exc:
            history_error = str(exc)
    current = read_lock(state_dir)
    if current is None:
        result.update(changed=False, lock=None)
    elif current.get('owner') != owner:
        warn('the lock belongs to another run (owner %s); left in place' % current.get('owner'))
        result.update(changed=False, lock=current)
    elif isinstance(current.get('step'), dict):
        warn('the lock keeps the unfinished %s step of this run (backup set %s); the next run recovers the '
             'host from it' % (current['step'].get('name'), current['step'].get('backup_id')))
        result.update(changed=False, lock=current, kept=True)
    else:
        if not check_mode:
            remove_lock(state_dir)
        result.update(changed=True, lock=None)
    result['changed'] = result['changed'] or 'entry' in result
    return result, history_error


class StepUnfinished(Exception):
    """Raised out of a step() block that failed and left the host half-changed: the step stays
    in the lock, exactly as if the run had been killed, so that the next run recovers the host."""


@contextlib.contextmanager
def step(state_dir, owner, name, **details):
    """Mark the lock of ``owner`` with the step ``name`` while the block runs.

    With no ``owner``, nothing is marked, but a lock held by a run refuses the step: a module
    called on its own must not change a host in the middle of someone's update.
    """
    lock = read_lock(state_dir)
    if owner is None:
        if lock is not None:
            raise LockError('the host is locked by run %s (%s, since %s); wait for it to finish'
                            % (lock.get('owner'), lock.get('purpose') or 'unknown purpose', lock.get('acquired_at')))
        yield None
        return
    if lock is None or lock.get('owner') != owner:
        raise LockError('run %s does not hold the host lock (%s)'
                        % (owner, 'held by %s' % lock.get('owner') if lock else 'nobody holds it'))
    ensure_dir(state_dir)
    fd = open_nofollow(os.path.join(state_dir, STEP_FILE), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        marked = dict(lock, step=dict(details, name=name, pid=os.getpid(), started_at=iso(utc_now())))
        write_lock(state_dir, marked)
        yield marked['step']
        # A step that ended is cleared: a killed one, or one that failed half-way (StepUnfinished),
        # stays for the next run.
        write_lock(state_dir, dict((k, v) for k, v in marked.items() if k != 'step'))
    except StepUnfinished as exc:
        current = read_lock(state_dir)
        if current is not None and current.get('owner') == owner and isinstance(current.get('step'), dict):
            current['step'].update(failed=str(exc), failed_at=iso(utc_now()))
            write_lock(state_dir, current)
        raise
    except BaseException:
        current = read_lock(state_dir)
        if current is not None and current.get('owner') == owner:
            write_lock(state_dir, dict((k, v) for k, v in current.items() if k != 'step'))
        raise
    finally:
        os.close(fd)
