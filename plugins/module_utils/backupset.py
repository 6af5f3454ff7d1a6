# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup sets on disk: ids, manifest, checksums, verification, listing and retention.

A backup set is a directory ``<backup_root>/<id>/`` holding ``manifest.json`` and the files it
lists. It is built in ``<backup_root>/.incomplete-<id>/`` and renamed into place only once
complete and verified, so a directory with a valid id as its name is never half-written.

The manifest is sealed with an HMAC-SHA256 over its own canonical JSON, keyed with the host's
seal key (``<state_dir>/seal.key``, root-only, outside the backup root; or one supplied from
Ansible Vault). Whoever can write the backup root but not read that key cannot change a set
without the change being detected: a set whose seal does not verify is *tampered*. A manifest is
still input from disk: ``manifest_problems`` checks its shape and that every path in it stays
where a set's paths may point, before anything acts on it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import datetime
import errno
import hashlib
import hmac
import json
import os
import re
import stat

from ansible_collections.microimpuls.micropvr.plugins.module_utils import confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath

# 2: keyed seal (HMAC-SHA256). Sets of format 1 carry an unkeyed sha256 and cannot be authenticated.
FORMAT_VERSION = 2
MANIFEST = 'manifest.json'
SEAL_KEY_FILE = 'seal.key'
SEAL_ALGORITHM = 'hmac-sha256'
INCOMPLETE_PREFIX = '.incomplete-'
LOCK_FILE = '.lock'
# UTC time of creation, plus a counter when two sets are taken in the same second.
BACKUP_ID_PATTERN = r'[0-9]{8}T[0-9]{6}Z(-[1-9][0-9]*)?'
_BACKUP_ID_RE = re.compile(BACKUP_ID_PATTERN)
_CHUNK = 1024 * 1024
_HMAC_HEX = re.compile(r'[0-9a-f]{64}')

STATUS_VERIFIED = 'verified'
STATUS_UNVERIFIED = 'unverified'
STATUS_DAMAGED = 'damaged'
STATUS_TAMPERED = 'tampered'


class BackupSetError(Exception):
    """A backup set or id that cannot be used; the message is meant for the operator."""


def new_backup_id(now, existing):
    """A fresh id for ``now`` (an aware UTC datetime) that is not in ``existing``."""
    base = now.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    candidate, counter = base, 1
    while candidate in existing:
        counter += 1
        candidate = '%s-%d' % (base, counter)
    return candidate


def backup_id_sort_key(backup_id):
    """Chronological order of ids: the time, then the same-second counter as a number."""
    base, sep, counter = backup_id.partition('-')
    return base, int(counter) if counter.isdigit() else 1


def unique_names(names):
    """The names, each prefixed with its index when any name occurs more than once."""
    if len(set(names)) == len(names):
        return list(names)
    return ['%d-%s' % (index, name) for index, name in enumerate(names)]


def validate_backup_id(value):
    """Return ``value`` if it is a well-formed backup id, else raise BackupSetError saying why."""
    if not isinstance(value, str) or not value:
        raise BackupSetError('backup id must be a non-empty string')
    if '/' in value or '\\' in value or value in ('.', '..') or '..' in value:
        raise BackupSetError("backup id %r must be a plain name, not a path (no '/' or '..')" % value)
    if not _BACKUP_ID_RE.fullmatch(value):
        raise BackupSetError('backup id %r is not of the form YYYYMMDDTHHMMSSZ (UTC time, e.g. '
                             '20261126T221500Z)' % value)
    return value


def set_path(root, backup_id):
    """Path of set ``backup_id`` under ``root``; the id is validated, so it cannot escape root."""
    return os.path.join(root, validate_backup_id(backup_id))


def sha256_file(path):
    """The sha256 of the file at ``path``. The holes of a sparse file (the free pages a SQLite
    copy leaves out) are hashed as the zeros they read as, without reading them: a read of a hole
    fills page-cache memory with zeros, which costs as much as reading data."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        fd = handle.fileno()
        offset = 0
        for data_start, data_end in _data_extents(fd):
            _hash_zeros(digest, data_start - offset)
            offset = _hash_bytes(digest, fd, data_start, data_end)
        # Whatever the file holds past the last extent (it grew meanwhile: hash_with_identity's
        # identity check tells), read as it is.
        _hash_bytes(digest, fd, offset)
    return digest.hexdigest()


def _hash_bytes(digest, fd, offset, end=None):
    """Hash the file at ``fd`` from ``offset`` to ``end`` (to its end without one, or if that comes
    first); the offset reached."""
    while end is None or offset < end:
        chunk = os.pread(fd, _CHUNK if end is None else min(_CHUNK, end - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return offset


def _data_extents(fd):
    """(start, end) of each part of the file at ``fd`` that is not a hole, in order, up to its size
    now; the whole file as one extent where the filesystem cannot tell (no SEEK_DATA)."""
    size = os.fstat(fd).st_size
    seek_data, seek_hole = getattr(os, 'SEEK_DATA', None), getattr(os, 'SEEK_HOLE', None)
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, seek_data) if seek_data is not None else offset
            end = os.lseek(fd, start, seek_hole) if seek_hole is not None else size
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from offset to the end
                start = end = size
            elif exc.errno == errno.EINVAL and offset == 0:
                start, end = 0, size
            else:
                raise
        if start >= size:
            # A hole up to the end: one empty extent at the end, so that it is hashed as zeros.
            yield size, size
            return
        end = min(end, size)
        yield start, end
        offset = end


_ZEROS = bytes(_CHUNK)


def _hash_zeros(digest, count):
    while count > 0:
        step = min(count, _CHUNK)
        digest.update(memoryview(_ZEROS)[:step])
        count -= step


def hash_with_identity(path):
    """(sha256, identity) of the file at ``path``: its file_identity when it was the same before
    and after it was read (else None), so that the digest is known to be that of the file with
    this identity. A verification in the same process may then skip reading it again
    (verify_files' ``hashed``)."""
    before = file_identity(path)
    digest = sha256_file(path)
    return digest, (before if before is not None and file_identity(path) == before else None)


def _canonical(manifest):
    body = dict((k, v) for k, v in manifest.items() if k not in ('seal', 'manifest_sha256'))
    return json.dumps(body, sort_keys=True, separators=(',', ':')).encode('utf-8')


def parse_key(text, what):
    """The 32-byte key written as 64 hex digits in ``text``; BackupSetError naming ``what``."""
    if not isinstance(text, str):
        raise BackupSetError('%s: a seal key must be a string of 64 hex digits' % what)
    try:
        key = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        key = b''
    if len(key) != 32:
        # The value itself is secret: never repeat it.
        raise BackupSetError('%s: a seal key must be 64 hex digits (32 random bytes, e.g. from '
                             '"openssl rand -hex 32"); the value given is not' % what)
    return key


def key_id(key):
    """A short public name of a key: tells which key sealed a set without revealing it."""
    return hashlib.sha256(b'microimpuls.micropvr seal key id\n' + key).hexdigest()[:16]


def read_key_file(path, create=False):
    """The key in ``path`` (created with fresh random bytes, 0600, when missing and ``create``).

    None when it is missing and not created. The file must be a regular file owned by this user
    and private: a key that others can read or replace authenticates nothing.
    """
    flags = os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BackupSetError('seal key %s is a symlink; refusing to use it' % path)
        if exc.errno != errno.ENOENT:
            raise BackupSetError('seal key %s: %s' % (path, exc.strerror))
        if not create:
            return None
        return _create_key_file(path)
    # Checked on the descriptor before fdopen(), which refuses a directory with IsADirectoryError.
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise BackupSetError('seal key %s must be a regular file owned by uid %d with mode 0600 (it is uid %d, '
                             'mode %04o); refusing to use it'
                             % (path, os.geteuid(), st.st_uid, stat.S_IMODE(st.st_mode)))
    with os.fdopen(fd, 'rb') as handle:
        content = handle.read(1024).decode('ascii', 'replace')
    return parse_key(content, 'seal key %s' % path)


def _create_key_file(path):
    text = binascii.hexlify(os.urandom(32)).decode('ascii')
    tmp = '%s.new-%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text + '\n')
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() fails if another run created the key meanwhile: then both use that one.
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    finally:
        os.unlink(tmp)
    fsync_dir(os.path.dirname(path) or '.')
    return read_key_file(path)


class SealKeys(object):
    """The key this host seals with, and the keys whose seals it accepts."""

    def __init__(self, own, trusted=(), source=None):
        self.own = own
        self.trusted = [key for key in trusted if key != own]
        self.source = source

    def sign(self, manifest):
        if self.own is None:
            raise BackupSetError('no seal key: %s' % (self.source or 'none was given'))
        manifest.pop('manifest_sha256', None)
        manifest['seal'] = dict(algorithm=SEAL_ALGORITHM, key_id=key_id(self.own),
                                hmac=hmac.new(self.own, _canonical(manifest), hashlib.sha256).hexdigest())
        return manifest

    def problem(self, manifest):
        """None when the seal verifies with one of the keys, else why not (for the operator)."""
        seal_entry = manifest.get('seal')
        if not isinstance(seal_entry, dict):
            if 'manifest_sha256' in manifest:
                return ('manifest.json has only an unkeyed checksum (a set of format 1, from before keyed seals), '
                        'so it cannot be authenticated')
            return 'manifest.json has no seal'
        if seal_entry.get('algorithm') != SEAL_ALGORITHM or not isinstance(seal_entry.get('hmac'), str):
            return 'manifest.json has a seal of unknown kind %r' % (seal_entry.get('algorithm'),)
        if not _HMAC_HEX.fullmatch(seal_entry['hmac']):
            # compare_digest() refuses non-ASCII text: decide before comparing.
            return 'manifest.json has a seal that is not 64 hex digits'
        body = _canonical(manifest)
        for key in [k for k in [self.own] + self.trusted if k is not None]:
            if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), seal_entry['hmac']):
                return None
        known = [key_id(k) for k in [self.own] + self.trusted if k is not None]
        if not known:
            return 'this host has no seal key to check the seal with: %s' % self.source
        if seal_entry.get('key_id') not in known:
            return ('manifest.json is sealed with key %s, which this host does not have (its keys: %s); a set from '
                    'another host needs that host\'s key in micropvr_seal_trusted_keys'
                    % (seal_entry.get('key_id'), ', '.join(known) or 'none'))
        return 'manifest.json was changed after the backup was taken (its seal does not verify)'


def seal_keys(state_dir, seal_key=None, trusted_keys=(), create=False):
    """SealKeys of a host: ``seal_key`` (from Vault) if given, else ``<state_dir>/seal.key``."""
    trusted = [parse_key(text, 'trusted_seal_keys[%d]' % index) for index, text in enumerate(trusted_keys or [])]
    if seal_key:
        return SealKeys(parse_key(seal_key, 'seal_key'), trusted, 'seal_key')
    path = os.path.join(state_dir, SEAL_KEY_FILE)
    return SealKeys(read_key_file(path, create=create), trusted,
                    '%s does not exist yet (it is made by the first backup)' % path)


def seal_argument_spec():
    """Options of the modules that seal or check sets (doc fragment microimpuls.micropvr.seal)."""
    return dict(
        seal_key=dict(type='str', no_log=True),
        trusted_seal_keys=dict(type='list', elements='str', default=[], no_log=True),
    )


def module_seal_keys(module, create=False):
    """seal_keys() from the module's options; fails the module naming the option on error."""
    params = module.params
    try:
        return seal_keys(params['state_dir'], params.get('seal_key'), params.get('trusted_seal_keys'), create)
    except BackupSetError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='seal key in %s: %s' % (params['state_dir'], exc))


def write_manifest(directory, manifest, keys):
    """Seal and write the manifest atomically (temp file, fsync, rename), mode 0600."""
    keys.sign(manifest)
    path = os.path.join(directory, MANIFEST)
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write('\n')
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)
    return path


def load_manifest(directory):
    """The manifest of the set in ``directory``; BackupSetError if missing or not JSON."""
    path = os.path.join(directory, MANIFEST)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
        with os.fdopen(fd) as handle:
            manifest = json.load(handle)
    except (IOError, OSError) as exc:
        raise BackupSetError('%s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise BackupSetError('%s: not valid JSON (%s)' % (path, exc))
    if not isinstance(manifest, dict):
        raise BackupSetError('%s: not a JSON object' % path)
    return manifest


def file_entry(directory, relpath, kind, sha256=None, **extra):
    """Manifest entry for one file of the set: path relative to the set, size, sha256 (computed
    here unless the caller has just computed it of the finished file, as the SQLite copies')."""
    full = os.path.join(directory, relpath)
    entry = dict(path=relpath, kind=kind, size=os.path.getsize(full), sha256=sha256 or sha256_file(full))
    entry.update(extra)
    return entry


def verify_files(directory, manifest, keys, checkers=None, hashed=None):
    """Problems found in the set (an empty list means it verifies).

    Checks the seal, the format version, the manifest's shape and paths (see
    confine.manifest_problems), every listed file's presence, size and sha256, and files that
    the manifest does not list. ``checkers`` maps a file kind to a function ``(full_path, entry)
    -> problem or None`` for content checks (SQLite integrity, dump listings, the configuration
    archive's members) that need more than a checksum. Nothing is read through a symbolic link.
    ``hashed``: {path: (sha256, identity)} from hash_with_identity in this process (the backup
    that has just written the set): a file that still has that identity, and whose manifest
    entry names that sha256, is not read again (the first read was of the finished file too).
    """
    problems = []
    seal_problem = keys.problem(manifest)
    if seal_problem:
        problems.append(seal_problem)
    if manifest.get('format_version') != FORMAT_VERSION:
        problems.append('manifest format_version %r is not %d' % (manifest.get('format_version'), FORMAT_VERSION))
    shape = confine.manifest_problems(manifest)
    if shape:
        # A manifest of the wrong shape says nothing reliable about the files.
        return problems + shape
    listed = set()
    for entry in manifest['files']:
        relpath = entry['path']
        listed.add(relpath)
        full = os.path.join(directory, relpath)
        try:
            st = os.lstat(full)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            problems.append('%s: missing' % relpath if st is None or stat.S_ISDIR(st.st_mode)
                            else '%s: not a regular file' % relpath)
            continue
        if st.st_size != entry['size']:
            problems.append('%s: size %d, manifest says %s' % (relpath, st.st_size, entry['size']))
            continue
        digest, identity = (hashed or {}).get(relpath, (None, None))
        unchanged = identity is not None and digest == entry['sha256'] \
            and identity == stat_identity(st)
        if not unchanged and sha256_file(full) != entry['sha256']:
            problems.append('%s: sha256 does not match the manifest' % relpath)
            continue
        checker = (checkers or {}).get(entry['kind'])
        if checker is not None:
            problem = checker(full, entry)
            if problem:
                problems.append('%s: %s' % (relpath, problem))
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            relpath = os.path.relpath(os.path.join(dirpath, name), directory)
            if relpath != MANIFEST and relpath not in listed:
                problems.append('%s: not listed in the manifest' % relpath)
    return problems


def status_of(manifest, problems, keys):
    """verified, tampered (the seal does not verify), damaged (anything else), or unverified."""
    if manifest is not None and keys.problem(manifest):
        return STATUS_TAMPERED
    if problems:
        return STATUS_DAMAGED
    return STATUS_VERIFIED if manifest.get('verified_at') else STATUS_UNVERIFIED


def set_size(directory):
    total = 0
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total


def summarize(directory, backup_id, keys):
    """One line of a listing: what the manifest says about a set (no content verification)."""
    summary = dict(id=backup_id, path=directory, created_at=None, reason=None, host=None,
                   packages={}, pinned=False, verified_at=None, size=set_size(directory),
                   status=STATUS_UNVERIFIED, problems=[])
    try:
        manifest = load_manifest(directory)
    except BackupSetError as exc:
        summary.update(status=STATUS_DAMAGED, problems=[str(exc)])
        return summary
    shape = confine.shape_problems(manifest)
    if shape:
        summary.update(status=STATUS_DAMAGED, problems=['manifest.json: %s' % problem for problem in shape])
        return summary
    summary.update(
        created_at=manifest.get('created_at'),
        reason=manifest.get('reason'),
        host=manifest.get('host'),
        packages=dict((name, info['version']) for name, info in manifest['packages'].items()),
        pinned=bool(manifest.get('pinned')),
        verified_at=manifest.get('verified_at'),
    )
    seal_problem = keys.problem(manifest)
    if seal_problem:
        summary.update(status=STATUS_TAMPERED, problems=[seal_problem])
    elif manifest.get('backup_id') != backup_id:
        summary.update(status=STATUS_DAMAGED,
                       problems=['manifest names backup id %r' % manifest.get('backup_id')])
    elif summary['verified_at']:
        summary['status'] = STATUS_VERIFIED
    return summary


def list_set_dirs(root):
    """(backup ids of complete sets, names of leftover incomplete directories) under ``root``.

    Only real directories count: a symbolic link named like a set is not a set of this root
    (and retention must never follow it).
    """
    if not os.path.isdir(root):
        return [], []
    ids, incomplete = [], []
    for name in sorted(os.listdir(root)):
        try:
            if not stat.S_ISDIR(os.lstat(os.path.join(root, name)).st_mode):
                continue
        except OSError:
            continue
        if name.startswith(INCOMPLETE_PREFIX):
            incomplete.append(name)
        elif _BACKUP_ID_RE.fullmatch(name):
            ids.append(name)
    return sorted(ids, key=backup_id_sort_key), incomplete


def list_sets(root, keys):
    """Summaries of every set under ``root``, oldest first (ids sort by creation time)."""
    ids, dummy = list_set_dirs(root)
    return [summarize(os.path.join(root, backup_id), backup_id, keys) for backup_id in ids]


# The reason the update role gives the set it takes before it installs ("pre-update to <version>").
PRE_UPDATE_REASON = 'pre-update'


def newest_pre_update_set(root, keys):
    """Id of the set a rollback restores when none is named: the newest set whose manifest
    says it was verified at backup time and taken before an update, or None. Only manifests
    and seals are read (summarize()); the restore verifies the set it then acts on."""
    ids, dummy = list_set_dirs(root)
    for backup_id in reversed(ids):
        summary = summarize(os.path.join(root, backup_id), backup_id, keys)
        reason = summary['reason']
        if summary['status'] == STATUS_VERIFIED and isinstance(reason, str) and reason.startswith(PRE_UPDATE_REASON):
            return backup_id
    return None


def select_for_removal(sets, keep, keep_pinned=2, protect=()):
    """Ids that retention removes: all but the newest ``keep``, never the newest ``keep_pinned``
    pinned sets, never the newest verified set, never an id in ``protect`` (the set just taken:
    after the clock was stepped back it is not the newest by id). ``sets`` are summaries as
    from list_sets(). Older pinned sets count like any other: a pin protects the set of the
    last updates, not every set ever pinned."""
    if keep < 1:
        raise BackupSetError('keep must be at least 1, got %r' % keep)
    if keep_pinned < 0:
        raise BackupSetError('keep_pinned must not be negative, got %r' % keep_pinned)
    ordered = sorted(sets, key=lambda s: backup_id_sort_key(s['id']), reverse=True)
    verified = [s['id'] for s in ordered if s['status'] == STATUS_VERIFIED]
    pinned = [s['id'] for s in ordered if s['pinned'] and s['status'] != STATUS_TAMPERED]
    protected = set(verified[:1]) | set(pinned[:keep_pinned]) | set(protect)
    return [s['id'] for s in ordered[keep:] if s['id'] not in protected]


def fsync_dir(path):
    """Make a rename or a new entry in the directory ``path`` durable."""
    safepath.fsync_path(path)


def utc_now_iso(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# How far verify_set() checks a set's SQLite copies beyond their checksums:
#   full      PRAGMA integrity_check (indexes against tables too): the periodic verification;
#   quick     PRAGMA quick_check (pages, cells, records, freelist): a new set's own check;
#   checksum  none: the sha256 in the sealed manifest proves the copy is, byte for byte, the one
#             that passed its check when the set was taken (the gate and a restore rely on it).
SQLITE_CHECKS = ('full', 'quick', 'checksum')


def content_checkers(module, manifest, sqlite_check='full'):
    """Checks beyond the checksum, per file kind: does the file still read as what it is?"""
    if sqlite_check not in SQLITE_CHECKS:
        raise BackupSetError('sqlite_check must be one of %s, not %r' % (', '.join(SQLITE_CHECKS), sqlite_check))
    # Imported here so that the pure functions above stay importable without these helpers.
    from ansible_collections.microimpuls.micropvr.plugins.module_utils.debs import control_fields
    from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
        check_mysql_dump,
        check_pg_dump,
    )
    from ansible_collections.microimpuls.micropvr.plugins.module_utils.sqlite_snapshot import integrity_check

    def check_package(path, entry):
        fields = control_fields(module, path)
        wanted = dict(Package=entry.get('package'), Version=entry.get('version'),
                      Architecture=entry.get('architecture'))
        if fields != wanted:
            return 'control fields %s, manifest says %s' % (fields, wanted)
        return None

    def check_database(path, entry):
        if entry.get('format') == 'custom':
            return check_pg_dump(module, path)
        return check_mysql_dump(path)

    def check_archive(path, entry):
        return '; '.join(confine.archive_problems(manifest, path)) or None

    checkers = dict(package=check_package, database=check_database, config=check_archive)
    if sqlite_check != 'checksum':
        checkers['sqlite'] = lambda path, entry: integrity_check(path, sqlite_check)
    return checkers


def verify_set(module, directory, backup_id, keys, sqlite_check='full', manifest=None, hashed=None):
    """(manifest or None, problems, status) of the set in ``directory``; no problems means it verifies.

    ``sqlite_check`` says how the SQLite copies are checked beyond their checksums (SQLITE_CHECKS).
    ``manifest``: the set's manifest.json as the caller has just loaded it (load_manifest), so
    that it is not read twice; it is verified like one read here. ``hashed``: see verify_files.
    """
    if manifest is None:
        try:
            manifest = load_manifest(directory)
        except BackupSetError as exc:
            return None, [str(exc)], STATUS_DAMAGED
    problems = []
    if manifest.get('backup_id') != backup_id:
        problems.append('manifest names backup id %r, not %r' % (manifest.get('backup_id'), backup_id))
    problems.extend(verify_files(directory, manifest, keys, content_checkers(module, manifest, sqlite_check),
                                 hashed=hashed))
    return manifest, problems, status_of(manifest, problems, keys)


def file_identity(path):
    """What changes whenever a file is written, replaced or has its times reset: inode, size,
    mtime and ctime in ns (ctime cannot be set back by anyone but the clock's owner)."""
    return stat_identity(os.lstat(path))


def stat_identity(st):
    """file_identity of an lstat result (None for anything but a regular file)."""
    if not stat.S_ISREG(st.st_mode):
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def mark_verified(directory, manifest, keys, run_id=None, now=None):
    """Seal the set in ``directory`` as verified just now by the run ``run_id``.

    The manifest records the identity of every file it lists as it was when verified
    (``verified_files``) and the run that verified it (``verified_by``): later in the same run
    the gate may accept the set without reading it again (fresh_verification_problem).
    """
    manifest['verified_at'] = utc_now_iso(now)
    manifest['verified_by'] = run_id or None
    manifest['verified_files'] = file_identities(directory, manifest)
    return write_manifest(directory, manifest, keys)


def file_identities(directory, manifest):
    """{path: file_identity} of every file the manifest lists (None for one that is no regular file)."""
    identities = {}
    for entry in manifest['files']:
        try:
            identities[entry['path']] = file_identity(os.path.join(directory, entry['path']))
        except OSError:
            identities[entry['path']] = None
    return identities


def changed_since(directory, manifest, identities):
    """None when every file the manifest lists still has its identity in ``identities`` and the
    set holds nothing else; otherwise the first change found. ``manifest`` must have passed
    confine.manifest_problems."""
    if not isinstance(identities, dict):
        return 'no file identities recorded'
    listed = set()
    for entry in manifest['files']:
        listed.add(entry['path'])
        recorded = identities.get(entry['path'])
        try:
            current = file_identity(os.path.join(directory, entry['path']))
        except OSError:
            return '%s: missing' % entry['path']
        if current is None or not isinstance(recorded, list) or current != recorded:
            return '%s changed since it was verified' % entry['path']
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            relpath = os.path.relpath(path, directory)
            if relpath != MANIFEST and relpath not in listed and not os.path.isdir(path):
                return '%s is not listed in the manifest' % relpath
            if os.path.islink(path):
                return '%s is a symbolic link' % relpath
    return None


def unchanged_problem(directory, manifest, backup_id, keys, identities):
    """None when ``manifest`` (loaded from ``directory``) is a sound, sealed manifest of the set
    ``backup_id`` and no file of the set changed since ``identities`` (file_identities) were
    taken, nothing added; otherwise why the set must be read again (for the log, not an error).
    The one rule by which a verification already done is trusted: the gate (the sealed
    ``verified_files`` of this run) and a restore (the identities of its own comparison)."""
    seal_problem = keys.problem(manifest)
    if seal_problem:
        return seal_problem
    if manifest.get('format_version') != FORMAT_VERSION or manifest.get('backup_id') != backup_id:
        return 'the manifest is not of this format or names another set'
    if confine.manifest_problems(manifest):
        return 'the manifest is not sound'
    return changed_since(directory, manifest, identities)


def fresh_verification_problem(directory, manifest, backup_id, keys, run_id):
    """None when the set in ``directory`` was verified by the run ``run_id`` (its sealed
    ``verified_by``) and no file of it changed since (the sealed identities match, nothing was
    added): then reading it again would only repeat what this run has just done. Otherwise the
    reason it must be verified in full (for the log, not an error)."""
    if not run_id:
        return 'no run to trust'
    if not manifest.get('verified_at') or manifest.get('verified_by') != run_id:
        # The seal is checked below; an unsealed claim is only a reason to read the set.
        return keys.problem(manifest) or 'not verified by this run'
    return unchanged_problem(directory, manifest, backup_id, keys, manifest.get('verified_files'))
