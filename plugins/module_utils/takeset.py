# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Taking a backup set: what M(micropvr_backup) does, and what M(micropvr_restore) does first when
it takes the set of the host as it is to fall back on (its option ``safety_backup``).

Every function takes the module (``params`` with the options of ``argument_spec()``, and
``fail_json``, which ends the run; a caller that must go on after a failure passes a module
whose ``fail_json`` raises instead).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import functools
import hashlib
import os
import shutil
import socket
import stat
import tarfile
import time

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.module_utils import confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils import state as hoststate
from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import (
    DEFAULT_CONFIG_PATHS,
    INIT_DIR,
    Timings,
    host_argument_spec,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.debs import estimated_size, obtain_deb
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    database_argument_spec,
    dump,
    dump_digests,
    dump_filename,
    restore_test,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import (
    discover_sqlite_databases,
    free_space,
    package_versions,
    read_micropvr_config,
    service_state,
)
from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import (
    CHECK_LEVELS,
    MAX_DATABASES_PER_SNAPSHOT,
    belongs_to_database,
    snapshot,
)

MIB = 1024 * 1024


def argument_spec():
    spec = host_argument_spec()
    # The nginx configuration is saved as part of config_paths.
    del spec['nginx_config']
    spec.update(
        config_paths=dict(type='list', elements='path', default=list(DEFAULT_CONFIG_PATHS)),
        databases=dict(type='list', elements='dict', default=[], options=database_argument_spec()),
        reason=dict(type='str', default='manual'),
        pin=dict(type='bool', default=False),
        keep=dict(type='int'),
        keep_pinned=dict(type='int', default=2),
        space_margin_mb=dict(type='int', default=64),
        lock_timeout=dict(type='int', default=600),
        restore_test=dict(type='bool', default=False),
        sqlite_check=dict(type='str', default='quick', choices=list(CHECK_LEVELS)),
        state_dir=dict(type='path', default=hoststate.DEFAULT_STATE_DIR),
        lock_owner=dict(type='str'),
        tools=dict(type='list', elements='str', default=[]),
    )
    spec.update(backupset.seal_argument_spec())
    return spec


def check_roots(module):
    """The backup root and the state dir are safe places (also in check mode), and apart: the
    seal key in the state dir must not travel with the sets it authenticates."""
    params = module.params
    try:
        root = safepath.check_private_dir(params['backup_root'], 'micropvr_backup_root')
        state_dir = safepath.check_private_dir(params['state_dir'], 'micropvr_state_dir')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    if confine.within(state_dir, [root]) or confine.within(root, [state_dir]):
        module.fail_json(msg='state_dir %s and backup_root %s must not contain each other: the seal key in the '
                             'state dir must not be stored with the sets it authenticates' % (state_dir, root))


def wait_for_host_lock(module, poll=2.0):
    """Wait (at most lock_timeout) while another run holds the host lock; fail after that."""
    params = module.params
    deadline = time.time() + params['lock_timeout']
    while True:
        lock = hoststate.read_lock(params['state_dir'])
        if lock is None or lock.get('owner') == params['lock_owner']:
            return
        step = lock.get('step') if isinstance(lock.get('step'), dict) else None
        if step and not hoststate.step_in_progress(params['state_dir']):
            module.fail_json(msg='refusing to back up: run %s (%s) left its %s step unfinished, so the host may be '
                                 'half-changed; recover it first with playbooks/rollback.yml or playbooks/update.yml '
                                 '(they restore backup set %s by themselves)'
                                 % (lock.get('owner'), lock.get('purpose'), step.get('name'), step.get('backup_id')),
                             lock=lock)
        if time.time() >= deadline:
            module.fail_json(msg='refusing to back up: the host is locked by run %s (%s, since %s) and it did not '
                                 'finish within %d s (lock_timeout); run the backup when it is done. If that run is '
                                 'dead, its lock is in %s/%s'
                                 % (lock.get('owner'), lock.get('purpose'), lock.get('acquired_at'),
                                    params['lock_timeout'], params['state_dir'], hoststate.LOCK_FILE), lock=lock)
        time.sleep(poll)


def _walk_files(path):
    """Every non-directory below (or at) ``path``; symlinks are not followed."""
    if not os.path.isdir(path) or os.path.islink(path):
        yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        # os.walk lists a symlink to a directory among the directories and does not descend.
        links = [name for name in dirnames if os.path.islink(os.path.join(dirpath, name))]
        for name in sorted(filenames + links):
            yield os.path.join(dirpath, name)


def _size_if_present(path):
    """Size of ``path``, 0 when it vanished after it was listed (see _add_tree)."""
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def plan_backup(module):
    """Everything the set will hold, checked to exist, with a size estimate. Writes nothing."""
    params = module.params
    if params['keep'] is not None and params['keep'] < 1:
        module.fail_json(msg='keep must be at least 1, got %d' % params['keep'])
    if params['keep_pinned'] < 0:
        module.fail_json(msg='keep_pinned must not be negative, got %d' % params['keep_pinned'])
    if params['space_margin_mb'] < 0:
        module.fail_json(msg='space_margin_mb must not be negative, got %d' % params['space_margin_mb'])

    # One dpkg-query for the packages and the tools.
    queried = package_versions(module, list(params['packages']) + list(params['tools']))
    packages = dict((name, queried[name]) for name in params['packages'])
    missing = ['%s (%s)' % (name, info['state']) for name, info in packages.items() if not info['installed']]
    if missing:
        module.fail_json(msg='packages: not installed: %s' % ', '.join(missing))

    config_paths = []
    for path in (os.path.normpath(p) for p in params['config_paths']):
        config_paths.append(path)
        # A configuration path that is a symbolic link (conf -> /srv/nginx-conf) is saved as the
        # link and as the tree it leads to: the files MicroPVR reads are behind it.
        if os.path.islink(path):
            resolved = os.path.realpath(path)
            if os.path.exists(resolved) and resolved not in config_paths:
                config_paths.append(resolved)
    for service in params['services']:
        script = os.path.join(INIT_DIR, service)
        if not os.path.isfile(script):
            module.fail_json(msg='services: %s has no init script %s' % (service, script))
        config_paths.append(script)
    absent = [p for p in config_paths if not os.path.lexists(p)]
    if absent:
        module.fail_json(msg='config_paths: does not exist: %s' % ', '.join(absent))

    if params['sqlite_databases']:
        sqlite_paths = [os.path.normpath(p) for p in params['sqlite_databases']]
    else:
        config_info, dummy = read_micropvr_config(params['config_file'])
        if not config_info['valid']:
            module.fail_json(msg='config_file: %s. The SQLite databases it names cannot be known, so no backup was '
                                 'taken: fix the file, or name the databases explicitly in micropvr_sqlite_databases '
                                 '(sqlite_databases)' % config_info['error'])
        sqlite_paths = discover_sqlite_databases(params['config_file'], config_info['sqlite_databases'])
    absent = [p for p in sqlite_paths if not os.path.isfile(p)]
    if absent:
        module.fail_json(msg='sqlite_databases: does not exist: %s' % ', '.join(absent))
    if len(sqlite_paths) > MAX_DATABASES_PER_SNAPSHOT:
        module.fail_json(msg='sqlite_databases: at most %d databases can be copied in one snapshot, got %d'
                         % (MAX_DATABASES_PER_SNAPSHOT, len(sqlite_paths)))
    basenames = [os.path.basename(p) for p in sqlite_paths]

    for db in params['databases']:
        if db.get('login_password') is not None and db.get('login_password_file'):
            module.fail_json(msg='databases: %s %s sets both login_password and login_password_file'
                             % (db['engine'], db['name']))
        if db.get('login_password_file') and not os.path.isfile(db['login_password_file']):
            module.fail_json(msg='databases: %s %s: login_password_file %s does not exist'
                             % (db['engine'], db['name'], db['login_password_file']))

    config_files = [f for p in config_paths for f in _walk_files(p) if not belongs_to_database(f, sqlite_paths)]
    estimate = sum(_size_if_present(f) for f in config_files)
    estimate += sum(os.path.getsize(p) for p in sqlite_paths)
    estimate += sum(estimated_size(module, name, info['version'], info['architecture'], info['installed_size_kib'])
                    for name, info in packages.items())
    space = free_space(params['backup_root'])
    required = estimate + params['space_margin_mb'] * MIB
    plan = dict(config_paths=config_paths, sqlite_databases=sqlite_paths,
                missing_tools=[name for name in params['tools'] if not queried[name]['installed']],
                sqlite_names=backupset.unique_names(basenames),
                packages=dict((n, i['version']) for n, i in packages.items()),
                databases=['%s/%s' % (db['engine'], db['name']) for db in params['databases']],
                estimated_bytes=estimate, required_bytes=required, free_bytes=space['free_bytes'])
    if space['free_bytes'] < required:
        module.fail_json(
            msg='not enough free space for a backup set in %s: need about %.1f MiB (estimated set size '
                '%.1f MiB + margin %d MiB), only %.1f MiB free on the filesystem of %s; nothing was written'
                % (params['backup_root'], required / float(MIB), estimate / float(MIB), params['space_margin_mb'],
                   space['free_bytes'] / float(MIB), space['measured_at']),
            plan=plan)
    return plan, packages


class RootLock(object):
    """flock on <backup_root>/.lock: one backup run per backup root at a time."""

    def __init__(self, module, root, timeout):
        self.module, self.path, self.timeout, self.handle = module, os.path.join(root, backupset.LOCK_FILE), timeout, None

    def __enter__(self):
        try:
            fd = safepath.open_nofollow(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except safepath.UnsafePathError as exc:
            self.module.fail_json(msg='backup_root: %s' % exc)
        self.handle = os.fdopen(fd, 'r+')
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.time() >= deadline:
                    holder = self.handle.read().strip() or 'unknown'
                    self.module.fail_json(msg='another backup is running on %s (pid %s); waited %d s'
                                          % (os.path.dirname(self.path), holder, self.timeout))
                time.sleep(1)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write('%d\n' % os.getpid())
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _tar_entries(path):
    """Per-member metadata of config.tar, with the sha256 of each regular file as archived."""
    entries = []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            entry = dict(path='/' + member.name, mode='%04o' % member.mode, uid=member.uid, gid=member.gid,
                         mtime=int(member.mtime))
            if member.isfile():
                digest = hashlib.sha256()
                handle = archive.extractfile(member)
                for chunk in iter(functools.partial(handle.read, MIB), b''):
                    digest.update(chunk)
                entry.update(type='file', size=member.size, sha256=digest.hexdigest())
            elif member.isdir():
                entry['type'] = 'directory'
            elif member.issym():
                entry.update(type='symlink', target=member.linkname)
            elif member.islnk():
                entry.update(type='hardlink', target='/' + member.linkname)
            else:
                entry['type'] = 'other'
            entries.append(entry)
    return entries


def _add_tree(archive, path, sqlite_paths, excluded, top=True):
    """Add ``path`` and what is below it, in tarfile's own order, leaving out the SQLite databases
    and their side files before they are even stat'ed: a -journal (or a -mj super-journal) comes
    and goes while MicroPVR writes, and tarfile's recursive add fails when one vanishes between
    listdir and lstat. Any other entry below ``path`` that vanishes after it was listed (a
    temporary file renamed into place) was not there when the archive got to it: it is left out.
    A configured path itself that is gone is an error. ``excluded`` are files left out too (the
    copies a restore is writing beside the databases while it takes this set, see
    micropvr_restore's SqliteStager)."""
    if belongs_to_database(path, sqlite_paths) or path in excluded:
        return
    try:
        # tarfile writes nothing for a member it could not lstat or open.
        archive.add(path, arcname=path.lstrip('/'), recursive=False)
        names = sorted(os.listdir(path)) if os.path.isdir(path) and not os.path.islink(path) else []
    except (FileNotFoundError, NotADirectoryError):
        if top:
            raise
        return
    for name in names:
        _add_tree(archive, os.path.join(path, name), sqlite_paths, excluded, top=False)


def _write_config_archive(work, plan):
    path = os.path.join(work, 'config.tar')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        with tarfile.open(fileobj=handle, mode='w', format=tarfile.PAX_FORMAT) as archive:
            excluded = frozenset(plan.get('excluded_files', ()))
            for source in plan['config_paths']:
                _add_tree(archive, source, plan['sqlite_databases'], excluded)
        handle.flush()
        os.fsync(handle.fileno())
    return 'config.tar'


def _fsync_tree(top):
    for dirpath, _dirnames, filenames in os.walk(top):
        for name in filenames:
            safepath.fsync_path(os.path.join(dirpath, name))
        backupset.fsync_dir(dirpath)


def _restrict(top):
    """Directories 0700, files 0600: a backup set holds secrets (configs, dumps)."""
    for dirpath, _dirnames, filenames in os.walk(top):
        _chmod(dirpath, 0o700)
        for name in filenames:
            _chmod(os.path.join(dirpath, name), 0o600)


def _chmod(path, mode):
    # Only when needed: any chmod changes the file's ctime, part of the identity under which the
    # set's verification trusts a digest taken by this run (build_set's hashed).
    if stat.S_IMODE(os.lstat(path).st_mode) != mode:
        os.chmod(path, mode)


def build_set(module, plan, packages, work, backup_id, now, hashed, timings):
    """Write every part of the set into ``work``; return its manifest (not yet verified).

    ``hashed`` (a dict) receives {path: (sha256, identity)} of the files hashed after they were
    finished (the SQLite copies), for the set's verification (backupset.verify_files).
    ``timings`` (common.Timings) times each part."""
    params = module.params
    files = []

    timings.start('archive the configuration')
    archive = _write_config_archive(work, plan)
    files.append(backupset.file_entry(work, archive, 'config'))

    sqlite_info = []
    if plan['sqlite_databases']:
        os.mkdir(os.path.join(work, 'sqlite'), 0o700)
        pairs = [(source, os.path.join(work, 'sqlite', name))
                 for source, name in zip(plan['sqlite_databases'], plan['sqlite_names'])]
        for dummy, destination in pairs:
            # Private from the first page, and no chmod after it is hashed (see _chmod).
            os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # Each copy is hashed while it is checked (two cores, one pass each), from the finished
        # file: the set's verification does not read it a third time while it stays unchanged.
        timings.start('lock the SQLite databases')
        copies = snapshot(pairs, check=params['sqlite_check'], file_digest=backupset.hash_with_identity,
                          on_locked=functools.partial(timings.start, 'copy the SQLite databases'),
                          on_copied=functools.partial(timings.start, 'check and hash the SQLite copies'))
        for (source, destination), info in zip(pairs, copies):
            relpath = os.path.relpath(destination, work)
            owner = os.stat(source)
            sha256, identity = info.pop('file_digest')
            hashed[relpath] = (sha256, identity)
            # A rollback puts the database back with the owner and mode it had.
            info.update(file=relpath, mode='%04o' % stat.S_IMODE(owner.st_mode), uid=owner.st_uid, gid=owner.st_gid)
            sqlite_info.append(info)
            files.append(backupset.file_entry(work, relpath, 'sqlite', sha256=sha256, source=source))

    timings.start('save the packages')
    package_info = {}
    os.mkdir(os.path.join(work, 'packages'), 0o700)
    for name, info in sorted(packages.items()):
        path, source = obtain_deb(module, name, info['version'], info['architecture'],
                                  os.path.join(work, 'packages'), work)
        relpath = os.path.relpath(path, work)
        package_info[name] = dict(version=info['version'], architecture=info['architecture'], file=relpath,
                                  source=source)
        files.append(backupset.file_entry(work, relpath, 'package', package=name, version=info['version'],
                                          architecture=info['architecture']))

    database_info = []
    if params['databases']:
        timings.start('dump the external databases')
        os.mkdir(os.path.join(work, 'databases'), 0o700)
        filenames = backupset.unique_names([dump_filename(db) for db in params['databases']])
        # Credential files live in the state dir's private work area, which the next run cleans
        # if this one is killed; never in the set.
        with safepath.private_workdir(params['state_dir'], 'backup-') as credentials_dir:
            for db, filename in zip(params['databases'], filenames):
                relpath = os.path.join('databases', filename)
                extra = dump(module, db, os.path.join(work, relpath), credentials_dir)
                # Row counts and checksums of what the dump holds: a rollback is checked against them.
                extra.update(file=relpath, tables=dump_digests(module, db['engine'], os.path.join(work, relpath)))
                if params['restore_test']:
                    problems = restore_test(module, db, os.path.join(work, relpath), credentials_dir)
                    if problems:
                        module.fail_json(msg='%s database %s: %s' % (db['engine'], db['name'], '; '.join(problems)))
                    extra['restore_tested'] = True
                database_info.append(extra)
                files.append(backupset.file_entry(work, relpath, 'database', format=extra['format']))

    timings.start('write the manifest')
    services = dict((name, service_state(module, name)['state']) for name in params['services'])
    return dict(
        format_version=backupset.FORMAT_VERSION,
        backup_id=backup_id,
        created_at=backupset.utc_now_iso(now),
        host=socket.getfqdn(),
        reason=params['reason'],
        pinned=params['pin'],
        packages=package_info,
        services=services,
        config=dict(archive=archive, paths=plan['config_paths'], entries=_tar_entries(os.path.join(work, archive))),
        sqlite=sqlite_info,
        # The level the copies were checked at (the set's verification uses it again).
        sqlite_check=params['sqlite_check'],
        databases=database_info,
        files=files,
        verified_at=None,
    )


def public_manifest(manifest):
    """The manifest as the module returns it: without the checksum of every configuration file,
    which AWX would keep in its job events (config.entries stays in manifest.json)."""
    public = dict(manifest)
    public['config'] = dict((k, v) for k, v in manifest['config'].items() if k != 'entries')
    public['config']['entry_count'] = len(manifest['config']['entries'])
    return public


def run_backup(module, plan, packages, keys, timings=None):
    """Take the set; the module's result. ``timings`` (common.Timings, a new one when not given)
    times each part, returned as ``step_seconds``."""
    timings = timings or Timings()
    params = module.params
    root = params['backup_root']
    try:
        created = safepath.ensure_private_dir(root, 'micropvr_backup_root')
    except safepath.UnsafePathError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=created, plan=plan, missing_tools=[], removed=[], removed_incomplete=[])
    timings.start('lock the backup root')
    with RootLock(module, root, params['lock_timeout']):
        ids, incomplete = backupset.list_set_dirs(root)
        # Holding the lock, no other run is writing: these are leftovers of a crashed run.
        for name in incomplete:
            shutil.rmtree(os.path.join(root, name))
            result['removed_incomplete'].append(name)
        now = datetime.datetime.now(datetime.timezone.utc)
        backup_id = backupset.new_backup_id(now, set(ids))
        work = os.path.join(root, backupset.INCOMPLETE_PREFIX + backup_id)
        final = os.path.join(root, backup_id)
        os.mkdir(work, 0o700)
        done = False
        try:
            hashed = {}
            manifest = build_set(module, plan, packages, work, backup_id, now, hashed, timings)
            _restrict(work)
            backupset.write_manifest(work, manifest, keys)
            timings.start('verify the set')
            verified, problems, status = backupset.verify_set(module, work, backup_id, keys,
                                                              sqlite_check=params['sqlite_check'], hashed=hashed)
            if problems:
                module.fail_json(msg='the new backup set did not verify; it was removed: %s' % '; '.join(problems))
            # Sealed with the identities of the files just verified: the install gate of the same
            # run (lock_owner) accepts the set without reading it all again.
            backupset.mark_verified(work, manifest, keys, params['lock_owner'])
            timings.start('flush the set to disk')
            _fsync_tree(work)
            os.rename(work, final)
            backupset.fsync_dir(root)
            done = True
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOSPC:
                module.fail_json(msg='the backup root %s ran out of space while the set was written (estimated '
                                     'size %.1f MiB; %s); the partial set was removed. Free space there, or set '
                                     'micropvr_backup_root to a larger filesystem, and run again'
                                     % (root, plan['estimated_bytes'] / float(MIB), exc.strerror or exc), plan=plan)
            module.fail_json(msg='backup failed, the partial set was removed: %s' % exc, plan=plan)
        except Exception as exc:  # pylint: disable=broad-except
            module.fail_json(msg='backup failed, the partial set was removed: %s: %s'
                             % (type(exc).__name__, exc), plan=plan)
        finally:
            if not done:
                shutil.rmtree(work, ignore_errors=True)
        timings.start('remove old sets')
        result.update(changed=True, backup_id=backup_id, backup_path=final, manifest=public_manifest(manifest),
                      size=backupset.set_size(final))
        if params['keep'] is not None:
            for victim in backupset.select_for_removal(backupset.list_sets(root, keys), params['keep'],
                                                       params['keep_pinned'], protect=[backup_id]):
                shutil.rmtree(os.path.join(root, victim))
                result['removed'].append(victim)
    timings.stop()
    result['step_seconds'] = timings.seconds
    return result


def prepare(module):
    """Everything a backup checks before it writes: the roots, the host lock, the plan;
    (plan, packages) as plan_backup returns them."""
    check_roots(module)
    try:
        wait_for_host_lock(module)
    except safepath.UnsafePathError as exc:
        module.fail_json(msg='refusing to back up: %s' % exc)
    return plan_backup(module)


def take(module, plan, packages, timings=None):
    """Take the set that ``plan`` describes (run_backup's result), creating the host's seal key
    first when this is its first set."""
    if not module.params['seal_key']:
        # The first backup creates the key file in the state dir, which may not exist yet.
        try:
            hoststate.ensure_dir(module.params['state_dir'])
        except safepath.UnsafePathError as exc:
            module.fail_json(msg=str(exc))
    keys = backupset.module_seal_keys(module, create=True)
    return run_backup(module, plan, packages, keys, timings)
