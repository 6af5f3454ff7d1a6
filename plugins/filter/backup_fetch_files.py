# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: backup_fetch_files.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.microimpuls.micropvr.plugins.module_utils.backupset import BACKUP_ID_PATTERN, MANIFEST
from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import UnsafePathError, check_relpath

_BACKUP_ID = re.compile(BACKUP_ID_PATTERN)
_SHA256 = re.compile(r'[0-9a-f]{64}')


def _fail(message):
    raise AnsibleFilterError('backup_fetch_files: %s; nothing is fetched to the controller' % message)


def _check_entry(index, entry, seen):
    where = 'manifest.files[%d].path' % index
    if not isinstance(entry, Mapping) or 'path' not in entry:
        _fail('manifest.files[%d] is not a file entry with a path: %r' % (index, entry))
    path = entry['path']
    try:
        check_relpath(path, where)
    except UnsafePathError as exc:
        _fail(str(exc))
    if path == MANIFEST:
        _fail('%s: %s is the manifest itself, not a file of the set' % (where, path))
    if path in seen:
        _fail('%s: %s is listed twice' % (where, path))
    size = entry.get('size')
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        _fail('manifest.files[%d].size of %s is not a size in bytes: %r' % (index, path, size))
    digest = entry.get('sha256')
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        _fail('manifest.files[%d].sha256 of %s is not a sha256 in hex: %r' % (index, path, digest))
    return path


def backup_fetch_files(backup_set):
    """The paths to fetch of a set the managed host reported, each checked; manifest.json last.

    The host is not trusted: its backup id must be a backup id and every path a plain relative
    path (safepath.check_relpath), so that no controller path built from them leaves the set's
    directory.
    """
    if not isinstance(backup_set, Mapping):
        _fail('expected the result of micropvr_backup, got %r' % (backup_set,))
    backup_id = backup_set.get('backup_id')
    if not isinstance(backup_id, str) or not _BACKUP_ID.fullmatch(backup_id):
        _fail('the host reported backup id %r, which is not of the form YYYYMMDDTHHMMSSZ[-N]' % (backup_id,))
    manifest = backup_set.get('manifest')
    if not isinstance(manifest, Mapping) or not is_sequence(manifest.get('files')):
        _fail('the result of micropvr_backup for set %s has no manifest with a files list' % backup_id)
    paths, seen = [], set()
    for index, entry in enumerate(manifest['files']):
        path = _check_entry(index, entry, seen)
        paths.append(path)
        seen.add(path)
    # A file cannot also be a directory of another one ("a" and "a/b"): fetch would write through it.
    for path in paths:
        components = path.split('/')
        for depth in range(1, len(components)):
            parent = '/'.join(components[:depth])
            if parent in seen:
                _fail('manifest.files: %s is listed both as a file and as a directory of %s' % (parent, path))
    return paths + [MANIFEST]


class FilterModule(object):
    def filters(self):
        return {'backup_fetch_files': backup_fetch_files}
