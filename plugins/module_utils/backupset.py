# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup sets on disk: ids, manifest, checksums, verification, listing and retention.

A backup set is a directory ``<backup_root>/<id>/`` holding ``manifest.json`` and the files it
lists. It is built in ``<backup_root>/.incomplete-<id>/`` and renamed into place only once
complete and verified, so a directory with a valid id as its name is never half-written.
The manifest is sealed with a sha256 over its own canonical JSON, so an edited checksum or
version is detected as well as a damaged file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import re

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
INCOMPLETE_PREFIX = '.incomplete-'
LOCK_FILE = '.lock'
# UTC time of creation, plus a counter when two sets are taken in the same second.
BACKUP_ID_PATTERN = r'[0-9]{8}T[0-9]{6}Z(-[1-9][0-9]*)?'
_BACKUP_ID_RE = re.compile(BACKUP_ID_PATTERN)
_CHUNK = 1024 * 1024

STATUS_VERIFIED = 'verified'
STATUS_UNVERIFIED = 'unverified'
STATUS_DAMAGED = 'damaged'


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
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(manifest):
    body = dict((k, v) for k, v in manifest.items() if k != 'manifest_sha256')
    return json.dumps(body, sort_keys=True, separators=(',', ':')).encode('utf-8')


def seal(manifest):
    """Store the sha256 of the manifest's canonical JSON in ``manifest_sha256``."""
    manifest['manifest_sha256'] = hashlib.sha256(_canonical(manifest)).hexdigest()
    return manifest


def seal_matches(manifest):
    return manifest.get('manifest_sha256') == hashlib.sha256(_canonical(manifest)).hexdigest()


def write_manifest(directory, manifest):
    """Seal and write the manifest atomically (temp file, fsync, rename), mode 0600."""
    seal(manifest)
    path = os.path.join(directory, MANIFEST)
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
        with open(path) as handle:
            manifest = json.load(handle)
    except (IOError, OSError) as exc:
        raise BackupSetError('%s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise BackupSetError('%s: not valid JSON (%s)' % (path, exc))
    if not isinstance(manifest, dict):
        raise BackupSetError('%s: not a JSON object' % path)
    return manifest


def file_entry(directory, relpath, kind, **extra):
    """Manifest entry for one file of the set: path relative to the set, size, sha256."""
    full = os.path.join(directory, relpath)
    entry = dict(path=relpath, kind=kind, size=os.path.getsize(full), sha256=sha256_file(full))
    entry.update(extra)
    return entry


def verify_files(directory, manifest, checkers=None):
    """Problems found in the set (an empty list means it verifies).

    Checks the seal, the format version, every listed file's presence, size and sha256, and
    files that the manifest does not list. ``checkers`` maps a file kind to a function
    ``(full_path, entry) -> problem or None`` for content checks (SQLite integrity, dump
    listings) that need more than a checksum.
    """
    problems = []
    if not seal_matches(manifest):
        problems.append('manifest.json was changed after the backup was taken (seal mismatch)')
    if manifest.get('format_version') != FORMAT_VERSION:
        problems.append('manifest format_version %r is not %d' % (manifest.get('format_version'), FORMAT_VERSION))
    listed = set()
    for entry in manifest.get('files', []):
        relpath = entry.get('path', '')
        listed.add(relpath)
        full = os.path.join(directory, relpath)
        if os.path.isabs(relpath) or '..' in relpath.split('/'):
            problems.append('%s: path escapes the backup set' % relpath)
            continue
        if not os.path.isfile(full):
            problems.append('%s: missing' % relpath)
            continue
        size = os.path.getsize(full)
        if size != entry.get('size'):
            problems.append('%s: size %d, manifest says %s' % (relpath, size, entry.get('size')))
            continue
        if sha256_file(full) != entry.get('sha256'):
            problems.append('%s: sha256 does not match the manifest' % relpath)
            continue
        checker = (checkers or {}).get(entry.get('kind'))
        if checker is not None:
            problem = checker(full, entry)
            if problem:
                problems.append('%s: %s' % (relpath, problem))
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in filenames:
            relpath = os.path.relpath(os.path.join(dirpath, name), directory)
            if relpath != MANIFEST and relpath not in listed:
                problems.append('%s: not listed in the manifest' % relpath)
    return problems


def set_size(directory):
    total = 0
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in filenames:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total


def summarize(directory, backup_id):
    """One line of a listing: what the manifest says about a set (no content verification)."""
    summary = dict(id=backup_id, path=directory, created_at=None, reason=None, host=None,
                   packages={}, pinned=False, verified_at=None, size=set_size(directory),
                   status=STATUS_UNVERIFIED, problems=[])
    try:
        manifest = load_manifest(directory)
    except BackupSetError as exc:
        summary.update(status=STATUS_DAMAGED, problems=[str(exc)])
        return summary
    summary.update(
        created_at=manifest.get('created_at'),
        reason=manifest.get('reason'),
        host=manifest.get('host'),
        packages=dict((name, info.get('version')) for name, info in manifest.get('packages', {}).items()),
        pinned=bool(manifest.get('pinned')),
        verified_at=manifest.get('verified_at'),
    )
    if manifest.get('backup_id') != backup_id:
        summary.update(status=STATUS_DAMAGED,
                       problems=['manifest names backup id %r' % manifest.get('backup_id')])
    elif not seal_matches(manifest):
        summary.update(status=STATUS_DAMAGED,
                       problems=['manifest.json was changed after the backup was taken (seal mismatch)'])
    elif summary['verified_at']:
        summary['status'] = STATUS_VERIFIED
    return summary


def list_set_dirs(root):
    """(backup ids of complete sets, names of leftover incomplete directories) under ``root``."""
    if not os.path.isdir(root):
        return [], []
    ids, incomplete = [], []
    for name in sorted(os.listdir(root)):
        if not os.path.isdir(os.path.join(root, name)):
            continue
        if name.startswith(INCOMPLETE_PREFIX):
            incomplete.append(name)
        elif _BACKUP_ID_RE.fullmatch(name):
            ids.append(name)
    return sorted(ids, key=backup_id_sort_key), incomplete


def list_sets(root):
    """Summaries of every set under ``root``, oldest first (ids sort by creation time)."""
    ids, dummy = list_set_dirs(root)
    return [summarize(os.path.join(root, backup_id), backup_id) for backup_id in ids]


def select_for_removal(sets, keep):
    """Ids that retention removes: all but the newest ``keep``, never a pinned set, never the
    newest verified set. ``sets`` are summaries as from list_sets()."""
    if keep < 1:
        raise BackupSetError('keep must be at least 1, got %r' % keep)
    ordered = sorted(sets, key=lambda s: backup_id_sort_key(s['id']), reverse=True)
    verified = [s['id'] for s in ordered if s['status'] == STATUS_VERIFIED]
    protected = set(verified[:1])
    return [s['id'] for s in ordered[keep:] if not s['pinned'] and s['id'] not in protected]


def fsync_dir(path):
    """Make a rename or a new entry in the directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def utc_now_iso(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def content_checkers(module):
    """Checks beyond the checksum, per file kind: does the file still read as what it is?"""
    # Imported here so that the pure functions above stay importable without these helpers.
    import tarfile

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
        try:
            with tarfile.open(path) as archive:
                archive.getmembers()
        except (tarfile.TarError, EOFError) as exc:
            return 'not a readable tar archive: %s' % exc
        return None

    return dict(sqlite=lambda path, entry: integrity_check(path), package=check_package,
                database=check_database, config=check_archive)


def verify_set(module, directory, backup_id):
    """(manifest or None, problems) for the set in ``directory``; no problems means it verifies."""
    try:
        manifest = load_manifest(directory)
    except BackupSetError as exc:
        return None, [str(exc)]
    problems = []
    if manifest.get('backup_id') != backup_id:
        problems.append('manifest names backup id %r, not %r' % (manifest.get('backup_id'), backup_id))
    problems.extend(verify_files(directory, manifest, content_checkers(module)))
    return manifest, problems
