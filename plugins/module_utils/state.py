# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection keeps on a host between runs: the history file and the update lock.

Both live in one root-only directory (``micropvr_state_dir``). The history is JSON lines,
appended under an flock and fsynced, so it survives a crash of the run that writes it.
The lock is a file created with O_EXCL, because an Ansible run spans many module calls and
no process lives long enough to hold an flock for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import json
import os

HISTORY_FILE = 'history.jsonl'
LOCK_FILE = 'update.lock'
DEFAULT_STATE_DIR = '/var/lib/microimpuls-micropvr'


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def ensure_dir(path):
    """Create the state directory with mode 0700; tighten it if it is open to others."""
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)


def append_history(state_dir, record, now=None):
    """Append one event to the history; returns the record as written (with its time)."""
    ensure_dir(state_dir)
    entry = dict(record)
    entry.setdefault('time', iso(now or utc_now()))
    path = os.path.join(state_dir, HISTORY_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(entry, sort_keys=True) + '\n')
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def read_history(state_dir):
    """Every event in the history, oldest first; unreadable lines are returned as errors."""
    path = os.path.join(state_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return []
    events = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append(dict(event='unreadable', line=number))
    return events


def read_lock(state_dir):
    """The current lock's content, or None when the host is not locked."""
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        with open(path) as handle:
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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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
    if os.path.exists(path):
        os.unlink(path)
        return True
    return False
