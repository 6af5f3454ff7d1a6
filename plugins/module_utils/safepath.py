# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules for every path the collection writes through, in one place.

The modules run as root and write credentials, locks, history and whole backup sets, so a
directory given to them must be one of their own:

- ``check_private_dir``: an absolute path that is not ``/`` or a system directory (also after
  ``..`` and symbolic links are resolved); if it exists, a real directory (not a symbolic link)
  owned by the user the module runs as and not writable by group or others; every directory
  above it owned by root or that user and not writable by others (unless sticky, like /tmp), so
  nobody else can swap it. Only reads: safe in check mode.
- ``ensure_private_dir``: the same, then creates what is missing (parents 0755, the directory
  0700). A directory that already exists is never chmodded: the collection only tightens the
  modes of directories it created itself.
- ``check_relpath``: a path inside a backup set (manifest entries, archive members, files
  fetched to the controller) is plain, relative and normalized, so it cannot leave the set.
- ``open_nofollow``: files in those directories are opened without following a symbolic link.
- ``private_workdir``: a fresh 0700 directory under ``<state_dir>/work`` for credential files,
  removed on exit; the ones left by killed processes are removed by the next user.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import grp
import os
import pwd
import re
import shutil
import stat
import tempfile

# Directories that are never a place of the collection's own: the FHS top level, the directories
# Debian packages and the system itself own, and the shared temporary and runtime directories.
# A subdirectory (/var/lib/microimpuls-micropvr, /var/backups/micropvr) is what is expected.
SYSTEM_DIRS = frozenset([
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32',
    '/lost+found', '/media', '/mnt', '/nonexistent', '/opt', '/proc', '/root', '/run', '/sbin',
    '/snap', '/srv', '/sys', '/tmp', '/usr', '/var',
    # /usr
    '/usr/bin', '/usr/games', '/usr/include', '/usr/lib', '/usr/lib32', '/usr/lib64', '/usr/libexec',
    '/usr/libx32', '/usr/local', '/usr/local/bin', '/usr/local/etc', '/usr/local/games',
    '/usr/local/include', '/usr/local/lib', '/usr/local/man', '/usr/local/sbin', '/usr/local/share',
    '/usr/local/src', '/usr/sbin', '/usr/share', '/usr/share/doc', '/usr/share/man', '/usr/src',
    # /var
    '/var/backups', '/var/cache', '/var/cache/apt', '/var/cache/debconf', '/var/lib', '/var/lib/apt',
    '/var/lib/dpkg', '/var/lib/misc', '/var/lib/systemd', '/var/local', '/var/lock', '/var/log',
    '/var/log/apt', '/var/mail', '/var/opt', '/var/run', '/var/spool', '/var/spool/cron', '/var/tmp',
    '/var/www',
    # shared runtime and memory
    '/dev/shm', '/dev/mqueue', '/run/lock', '/run/shm', '/run/systemd', '/run/user',
    # /etc directories whose every file some daemon reads
    '/etc/alternatives', '/etc/apt', '/etc/cron.d', '/etc/cron.daily', '/etc/cron.hourly',
    '/etc/cron.monthly', '/etc/cron.weekly', '/etc/default', '/etc/init.d', '/etc/ld.so.conf.d',
    '/etc/logrotate.d', '/etc/modprobe.d', '/etc/network', '/etc/pam.d', '/etc/profile.d',
    '/etc/rc0.d', '/etc/rc1.d', '/etc/rc2.d', '/etc/rc3.d', '/etc/rc4.d', '/etc/rc5.d', '/etc/rc6.d',
    '/etc/rcS.d', '/etc/security', '/etc/ssh', '/etc/ssl', '/etc/sudoers.d', '/etc/sysctl.d',
    '/etc/systemd', '/etc/tmpfiles.d', '/etc/udev',
])

# Kernel filesystems: nothing below them is a directory of anyone's own.
SYSTEM_TREES = ('/dev', '/proc', '/sys')

_CONTROL = re.compile('[\x00-\x1f\x7f]')


class UnsafePathError(Exception):
    """A path the collection refuses to use; the message names the option, the path and why.

    ``UnsafePathError(option, path, reason)`` reads "option: path reason"; ``option`` may be
    None (for a file, where the path says enough).
    """

    def __init__(self, option, path=None, reason=None):
        self.option = option
        self.path = path
        self.reason = reason
        if path is None and reason is None:
            message = str(option)
        else:
            message = '%s %s' % (_show(path), reason)
            if option:
                message = '%s: %s' % (option, message)
        super(UnsafePathError, self).__init__(message)


def _show(path):
    """The path as an operator should see it: quoted when empty or not printable."""
    if isinstance(path, str) and path and not _CONTROL.search(path) and path.strip() == path:
        return path
    return repr(path)


def _user(uid):
    try:
        return 'user %s (uid %d)' % (pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        return 'uid %d' % uid


def _group(gid):
    try:
        return 'group %s (gid %d)' % (grp.getgrgid(gid).gr_name, gid)
    except KeyError:
        return 'gid %d' % gid


def _normalize(path):
    # normpath keeps a leading '//' (POSIX leaves its meaning to the system); Linux treats it as '/'.
    return '/' + os.path.normpath(path).lstrip('/')


def _resolve(path):
    """``path`` with symbolic links resolved as far as it exists, the rest appended."""
    return os.path.realpath(path)


def _nearest_existing(path):
    """The nearest ancestor of the normalized ``path`` (or itself) that exists."""
    current = path
    while not os.path.lexists(current):
        current = os.path.dirname(current)
    return current


def _system_kind(path):
    """'a system directory', 'inside <tree>, a kernel filesystem', or None."""
    if path in SYSTEM_DIRS:
        return 'a system directory'
    for tree in SYSTEM_TREES:
        if path.startswith(tree + '/'):
            return 'inside %s, a kernel filesystem' % tree
    return None


def _system_reason(original, normalized, resolved):
    """Why ``normalized`` (or one of the ``resolved`` readings of it) is no directory of our own."""
    kind = _system_kind(normalized)
    if kind:
        return 'is %s%s; give the collection a directory of its own' % (
            '' if normalized == original else normalized + ', ', kind)
    for other in resolved:
        kind = _system_kind(other)
        if kind and other != normalized:
            return 'resolves to %s, %s; give the collection a directory of its own' % (other, kind)
    return None


def _mode_problem(st, euid):
    if st.st_uid != euid:
        return ('is owned by %s, not by %s that the module runs as; give the collection a directory of its own'
                % (_user(st.st_uid), _user(euid)))
    if st.st_mode & 0o022:
        return ('is writable by group or others (mode %04o); the collection never changes the mode of a directory '
                'it did not create: remove that access (chmod go-w) or give it a directory of its own'
                % stat.S_IMODE(st.st_mode))
    return None


def _ancestor_problem(resolved_parent, euid):
    """Why a directory above the checked one lets someone else swap it (None when nothing does)."""
    current = resolved_parent
    while True:
        try:
            st = os.lstat(current)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            if st.st_uid not in (0, euid):
                return 'lies in %s, which is owned by %s (neither root nor %s), who could replace it' % (
                    current, _user(st.st_uid), _user(euid))
            if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
                return 'lies in %s, which anyone may write to (mode %04o), so anyone could replace it' % (
                    current, stat.S_IMODE(st.st_mode))
            if st.st_mode & 0o020 and st.st_gid != 0 and not st.st_mode & stat.S_ISVTX:
                return 'lies in %s, which %s may write to (mode %04o), so its members could replace it' % (
                    current, _group(st.st_gid), stat.S_IMODE(st.st_mode))
        if current == '/':
            return None
        current = os.path.dirname(current)


def check_private_dir(path, option):
    """The normalized ``path`` if it may be a private directory of the collection.

    Raises UnsafePathError naming ``option`` otherwise. Only reads the filesystem.
    """
    if path is None or path == '':
        raise UnsafePathError(option, '', 'is not set; give the collection a directory of its own')
    if not isinstance(path, str):
        raise UnsafePathError(option, path, 'is not a path')
    if '\x00' in path:
        raise UnsafePathError(option, path, 'contains a NUL character')
    if not os.path.isabs(path):
        raise UnsafePathError(option, path, 'is not an absolute path')
    normalized = _normalize(path)
    # The kernel resolves '..' after symbolic links, normpath before: check both readings.
    reason = _system_reason(path, normalized, [_resolve(normalized), _resolve(path)])
    if reason:
        raise UnsafePathError(option, path, reason)
    euid = os.geteuid()
    try:
        st = os.lstat(normalized)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise UnsafePathError(option, path, 'cannot be examined: %s' % (exc.strerror or exc))
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(option, path, 'is a symbolic link (to %s); give the real directory'
                                  % os.path.realpath(normalized))
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(option, path, 'exists and is not a directory')
        problem = _mode_problem(st, euid)
        if problem:
            raise UnsafePathError(option, path, problem)
    else:
        existing = _nearest_existing(normalized)
        if not os.path.isdir(existing):
            raise UnsafePathError(option, path, 'cannot be created: %s is not a directory' % existing)
    problem = _ancestor_problem(os.path.dirname(_resolve(normalized)), euid)
    if problem:
        raise UnsafePathError(option, path, problem)
    return normalized


def _make_dir(path, mode):
    """Create ``path`` with exactly ``mode`` (whatever the umask); False when it already existed."""
    try:
        os.mkdir(path, mode)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return True


def ensure_private_dir(path, option):
    """Check ``path`` as check_private_dir does and create it if missing; True when it was created.

    Missing parents are created 0755 and the directory itself 0700. A directory that exists is
    left exactly as it is (it must already pass the checks).
    """
    normalized = check_private_dir(path, option)
    if os.path.lexists(normalized):
        return False
    existing = _nearest_existing(normalized)
    missing = []
    current = normalized
    while current != existing:
        missing.append(current)
        current = os.path.dirname(current)
    created = False
    for directory in reversed(missing):
        created = _make_dir(directory, 0o700 if directory == normalized else 0o755)
    # Whatever happened in between (another process creating it too), it must pass the checks now.
    check_private_dir(normalized, option)
    return created


def check_relpath(path, what):
    """``path`` if it is a plain relative path that stays inside its directory; else UnsafePathError.

    The rule for paths inside a backup set: a non-empty string, relative, normalized, no ``.``,
    ``..`` or empty components, no NUL, control character or backslash, not starting with ``-``.
    """
    if not isinstance(path, str):
        raise UnsafePathError(what, path, 'is not a string')
    if not path:
        raise UnsafePathError(what, path, 'is empty')
    if '\x00' in path:
        raise UnsafePathError(what, path, 'contains a NUL character')
    if _CONTROL.search(path):
        raise UnsafePathError(what, path, 'contains a control character')
    if '\\' in path:
        raise UnsafePathError(what, path, 'contains a backslash')
    if path.startswith('/'):
        raise UnsafePathError(what, path, 'is an absolute path; it must be relative to the backup set')
    if path.startswith('-'):
        raise UnsafePathError(what, path, "starts with '-'")
    components = path.split('/')
    if '..' in components:
        raise UnsafePathError(what, path, "has a '..' component; it must stay inside the backup set")
    if '.' in components:
        raise UnsafePathError(what, path, "has a '.' component")
    if '' in components:
        raise UnsafePathError(what, path, 'has an empty component')
    if os.path.normpath(path) != path:
        raise UnsafePathError(what, path, 'is not normalized (%s)' % os.path.normpath(path))
    return path


def fsync_path(path):
    """Make the file or directory at ``path`` durable: a file's data, a directory's entries
    (a rename, a new file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# copy_file_range refused for this pair of files (another filesystem on an old kernel, a
# filesystem without it, a seccomp filter): copy through this process instead.
_NO_COPY_FILE_RANGE = frozenset([errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM,
                                 getattr(errno, 'ENOTSUP', errno.EOPNOTSUPP)])
_COPY_CHUNK = 8 * 1024 * 1024


def copy_fd(source_fd, destination_fd, length, offset=0):
    """Copy ``length`` bytes of ``source_fd`` from ``offset`` to the same offset of
    ``destination_fd``, in the kernel where it can (copy_file_range: no pass through user space,
    a reflink on filesystems that share blocks). Raises EOFError if the source is shorter."""
    done = offset
    length += offset
    in_kernel = hasattr(os, 'copy_file_range')
    while done < length:
        count = min(_COPY_CHUNK, length - done)
        if in_kernel:
            try:
                copied = os.copy_file_range(source_fd, destination_fd, count, done, done)
            except OSError as exc:
                if exc.errno not in _NO_COPY_FILE_RANGE:
                    raise
                in_kernel = False
                continue
        else:
            data = os.pread(source_fd, count, done)
            copied = 0
            while copied < len(data):
                copied += os.pwrite(destination_fd, data[copied:], done + copied)
        if not copied:
            raise EOFError('the source ended at byte %d, before byte %d' % (done, length))
        done += copied


def open_nofollow(path, flags, mode=0o600):
    """os.open with O_NOFOLLOW and O_CLOEXEC; a symbolic link raises UnsafePathError naming ``path``.

    Other errors (a missing file, EEXIST under O_EXCL) are raised as the OSError they are.
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(None, path, 'is a symbolic link; refusing to follow it')
        raise


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def remove_stale_workdirs(work_root, prefix):
    """Remove ``<work_root>/<prefix><pid>-*`` directories whose process is gone; their names."""
    pattern = re.compile(r'^%s([0-9]+)-' % re.escape(prefix))
    removed = []
    try:
        names = os.listdir(work_root)
    except OSError:
        return removed
    for name in sorted(names):
        match = pattern.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        full = os.path.join(work_root, name)
        try:
            if not stat.S_ISDIR(os.lstat(full).st_mode):
                continue
        except OSError:
            continue
        shutil.rmtree(full, ignore_errors=True)
        removed.append(name)
    return removed


@contextlib.contextmanager
def private_workdir(state_dir, prefix):
    """A fresh 0700 directory ``<state_dir>/work/<prefix><pid>-<random>``, removed on exit.

    The state directory and its ``work`` directory are created private (ensure_private_dir).
    Directories of the same prefix left by processes that no longer run (a killed restore or
    health check) are removed first, so that their credential files do not outlive them.
    """
    ensure_private_dir(state_dir, 'state_dir')
    work_root = os.path.join(_normalize(state_dir), 'work')
    ensure_private_dir(work_root, 'state_dir')
    remove_stale_workdirs(work_root, prefix)
    work = tempfile.mkdtemp(prefix='%s%d-' % (prefix, os.getpid()), dir=work_root)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
