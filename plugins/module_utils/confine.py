# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup set may make a restore do, and the confined restore of its configuration.

A restore runs as root and writes what the set says, so a set is executable input. Three
layers keep it to MicroPVR's own files, each failing before anything on the host changes:

- ``manifest_problems``: the manifest has the expected shape, every file it names is a relative
  path listed in ``files`` with the right kind, and every configuration entry lies under the
  set's configuration paths (symbolic link targets included).
- ``archive_problems``: ``config.tar`` holds exactly the manifest's entries, in order, with the
  types, owners and modes the manifest says - nothing else.
- ``host_problems``: the set's configuration paths, SQLite databases, packages and external
  databases are ones this host's own settings name.

``extract_config`` then writes the archive member by member (temporary file, fsync, rename),
never through a symbolic link and never outside the entries, so an interrupted restore leaves
each file either old or new.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile

from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import UnsafePathError, check_relpath, fsync_path

FILE_KINDS = ('config', 'sqlite', 'package', 'database')
ENTRY_TYPES = ('file', 'directory', 'symlink', 'hardlink')
ENGINES = ('postgresql', 'mysql')
DUMP_FORMATS = ('custom', 'sql')
JOURNAL_MODES = ('delete', 'truncate', 'persist', 'memory', 'wal', 'off')
# Debian policy 5.6.1: package names.
_PACKAGE_NAME = re.compile(r'[a-z0-9][a-z0-9+.-]+')
_MODE = re.compile(r'[0-7]{4}')
_SHA256 = re.compile(r'[0-9a-f]{64}')
_MIB = 1024 * 1024
# Owners the system can set: (uid_t) -1 means "leave the owner as it is" to chown().
_MAX_ID = 2 ** 32 - 2
# Times os.utime() can set (a 64-bit time_t).
_MAX_TIME = 2 ** 63 - 1
# Of a file's name, what the name of its temporary file beside it repeats (NAME_MAX is 255).
_TEMP_NAME_PART = 100

_TEXT = (str,)
_OPTIONAL_TEXT = (str, type(None))


class ConfinementError(Exception):
    """The set would make the restore act outside what it may touch; the message names what."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(value, spec, where, problems):
    """Check ``value`` against ``spec``: a tuple of types, or a dict {key: (types, required)}."""
    if isinstance(spec, tuple):
        if int in spec and isinstance(value, bool):
            problems.append('%s: %r is not a number' % (where, value))
        elif not isinstance(value, spec):
            problems.append('%s: %s where %s was expected' % (
                where, type(value).__name__, ' or '.join(t.__name__ for t in spec)))
        return
    if not isinstance(value, dict):
        problems.append('%s: %s where an object was expected' % (where, type(value).__name__))
        return
    for key, (types, required) in spec.items():
        if key not in value:
            if required:
                problems.append('%s: %s is missing' % (where, key) if where else '%s is missing' % key)
            continue
        _shape(value[key], types, '%s.%s' % (where, key) if where else key, problems)


_TOP = dict(
    format_version=((int,), True), backup_id=(_TEXT, True), created_at=(_OPTIONAL_TEXT, True),
    host=(_OPTIONAL_TEXT, False), reason=(_OPTIONAL_TEXT, False), pinned=((bool,), False),
    verified_at=(_OPTIONAL_TEXT, False), packages=((dict,), True), services=((dict,), False),
    config=((dict,), True), sqlite=((list,), True), databases=((list,), False), files=((list,), True),
    seal=((dict,), False), manifest_sha256=(_TEXT, False), verified_by=(_OPTIONAL_TEXT, False),
    verified_files=((dict,), False),
)
_FILE = dict(path=(_TEXT, True), kind=(_TEXT, True), size=((int,), True), sha256=(_TEXT, True))
_PACKAGE = dict(version=(_TEXT, True), architecture=(_TEXT, True), file=(_TEXT, True),
                source=(_OPTIONAL_TEXT, False))
_CONFIG = dict(archive=(_TEXT, True), paths=((list,), True), entries=((list,), True))
_ENTRY = dict(path=(_TEXT, True), type=(_TEXT, True), mode=(_TEXT, True), uid=((int,), True),
              gid=((int,), True), mtime=((int,), True))
_SQLITE = dict(source=(_TEXT, True), file=(_TEXT, True), user_version=((int,), False), tables=((dict,), False),
               journal_mode=(_OPTIONAL_TEXT, False), mode=(_TEXT, False), uid=((int,), False), gid=((int,), False),
               digest_format=((int,), False))
_DATABASE = dict(engine=(_TEXT, True), database=(_TEXT, True), file=(_TEXT, True), format=(_TEXT, True),
                 tables=((dict,), False))


def shape_problems(manifest):
    """What is wrong with the manifest's structure (types of every field a restore reads)."""
    problems = []
    _shape(manifest, _TOP, '', problems)
    if problems:
        return problems
    for index, entry in enumerate(manifest['files']):
        _shape(entry, _FILE, 'files[%d]' % index, problems)
    for name, info in manifest['packages'].items():
        _shape(info, _PACKAGE, 'packages.%s' % name, problems)
    _shape(manifest['config'], _CONFIG, 'config', problems)
    if not problems:
        for index, path in enumerate(manifest['config']['paths']):
            _shape(path, _TEXT, 'config.paths[%d]' % index, problems)
        for index, entry in enumerate(manifest['config']['entries']):
            where = 'config.entries[%d]' % index
            _shape(entry, _ENTRY, where, problems)
            if isinstance(entry, dict) and entry.get('type') == 'file':
                _shape(entry, dict(size=((int,), True), sha256=(_TEXT, True)), where, problems)
            elif isinstance(entry, dict) and entry.get('type') in ('symlink', 'hardlink'):
                _shape(entry, dict(target=(_TEXT, True)), where, problems)
    for index, entry in enumerate(manifest['sqlite']):
        _shape(entry, _SQLITE, 'sqlite[%d]' % index, problems)
    for index, entry in enumerate(manifest.get('databases', [])):
        _shape(entry, _DATABASE, 'databases[%d]' % index, problems)
    return problems


def _absolute(path):
    """True for an absolute, normalized path other than '/' without NUL or '//'."""
    return (isinstance(path, str) and path.startswith('/') and path != '/' and '\0' not in path
            and os.path.normpath(path) == path and not path.startswith('//'))


def within(path, tops):
    """True when ``path`` is one of ``tops`` or lies below one of them (lexically)."""
    return any(path == top or path.startswith(top.rstrip('/') + '/') for top in tops)


def link_destination(link_path, target):
    """Where a symbolic link at ``link_path`` pointing to ``target`` leads, lexically."""
    if target.startswith('/'):
        return os.path.normpath(target)
    return os.path.normpath(os.path.join(os.path.dirname(link_path), target))


def _set_file(by_path, relpath, kind, where, problems):
    """The files[] entry for ``relpath`` (a path inside the set) of ``kind``, else a problem."""
    try:
        check_relpath(relpath, where)
    except UnsafePathError as exc:
        problems.append(str(exc))
        return None
    entry = by_path.get(relpath)
    if entry is None:
        problems.append('%s: %s is not listed in the manifest\'s files' % (where, relpath))
    elif entry['kind'] != kind:
        problems.append('%s: %s is listed as a %s file, not %s' % (where, relpath, entry['kind'], kind))
        return None
    return entry


def _mode_problem(entry, where):
    if not _MODE.fullmatch(entry['mode']):
        return '%s: mode %r is not four octal digits' % (where, entry['mode'])
    mode = int(entry['mode'], 8)
    if entry['type'] == 'file' and mode & (stat.S_ISUID | stat.S_ISGID):
        return '%s: %s would be restored set-uid or set-gid (mode %s)' % (where, entry['path'], entry['mode'])
    if not (0 <= entry['uid'] <= _MAX_ID and 0 <= entry['gid'] <= _MAX_ID):
        return ('%s: owner %d:%d of %s is no uid:gid the system can set'
                % (where, entry['uid'], entry['gid'], entry['path']))
    if abs(entry['mtime']) > _MAX_TIME:
        return '%s: mtime %d of %s is out of range' % (where, entry['mtime'], entry['path'])
    return None


def _steps_out_of_link(link_path, target, links):
    """The symbolic link of the set that ``target`` (of the link at ``link_path``) leaves with '..'.

    The kernel resolves '..' from where a symbolic link leads, not lexically: with ``b -> .``,
    ``b/..`` reads as the directory of b but leads to its parent. None when no '..' does that.
    """
    current = '/' if target.startswith('/') else os.path.dirname(link_path)
    for part in target.split('/'):
        if part == '..':
            if current in links:
                return current
            current = os.path.dirname(current)
        elif part not in ('', '.'):
            current = os.path.join(current, part)
    return None


def _non_directory_above(path, types):
    """The nearest entry above ``path`` that the set makes something else than a directory."""
    parent = os.path.dirname(path)
    while parent != '/':
        if types.get(parent, 'directory') != 'directory':
            return parent
        parent = os.path.dirname(parent)
    return None


def config_problems(config):
    """Problems of the configuration part: paths, entries, link targets, parents."""
    problems = []
    paths = config['paths']
    for index, path in enumerate(paths):
        if not _absolute(path):
            problems.append('config.paths[%d]: %r is not an absolute, normalized path below /' % (index, path))
    if problems:
        return problems
    if len(set(paths)) != len(paths):
        problems.append('config.paths: a path is listed twice')
    seen = {}
    types = {}
    for entry in config['entries']:
        types.setdefault(entry['path'], entry['type'])
    links = set(path for path, kind in types.items() if kind == 'symlink')
    for index, entry in enumerate(config['entries']):
        where = 'config.entries[%d]' % index
        path = entry['path']
        if not _absolute(path) or not within(path, paths):
            problems.append('%s: %r is not under the set\'s configuration paths (%s)' % (where, path, ', '.join(paths)))
            continue
        try:
            # the rule for its config.tar member (member_problem): refused here too, naming the entry
            check_relpath(path[1:], where)
        except UnsafePathError as exc:
            problems.append(str(exc))
            continue
        if path in seen:
            problems.append('%s: %s is listed twice' % (where, path))
            continue
        if entry['type'] not in ENTRY_TYPES:
            problems.append('%s: %s is of type %r; only files, directories and links are restored'
                            % (where, path, entry['type']))
            continue
        problem = _mode_problem(entry, where)
        if problem:
            problems.append(problem)
            continue
        parent = os.path.dirname(path)
        if path not in paths and seen.get(parent) != 'directory':
            problems.append('%s: %s comes before (or without) its directory %s' % (where, path, parent))
            continue
        above = _non_directory_above(path, types)
        if above:
            # A configuration path is not held to the rule above: it must not lie below a link either.
            problems.append('%s: %s lies below %s, which the set makes a %s, not a directory'
                            % (where, path, above, types[above]))
            continue
        if entry['type'] == 'file' and (entry['size'] < 0 or not _SHA256.fullmatch(entry['sha256'])):
            problems.append('%s: %s has no valid size and sha256' % (where, path))
            continue
        if entry['type'] == 'symlink':
            target = entry['target']
            if not target or '\0' in target or not within(link_destination(path, target), paths):
                problems.append('%s: symbolic link %s points to %r, outside the configuration paths (%s); add the '
                                'directory it points to to micropvr_config_paths and take a new backup'
                                % (where, path, target, ', '.join(paths)))
                continue
            through = _steps_out_of_link(path, target, links)
            if through:
                problems.append('%s: symbolic link %s points to %r, which steps back out of the symbolic link %s '
                                "with '..' (the system resolves that from where %s leads)"
                                % (where, path, target, through, through))
                continue
        if entry['type'] == 'hardlink' and seen.get(entry['target']) != 'file':
            problems.append('%s: hard link %s points to %r, which is not a file earlier in the set'
                            % (where, path, entry['target']))
            continue
        seen[path] = entry['type']
    return problems


def manifest_problems(manifest):
    """Everything wrong with a manifest before any of its files is read (empty when it is sound).

    Pure: needs neither the set's files nor the host.
    """
    if not isinstance(manifest, dict):
        return ['manifest.json is not a JSON object']
    problems = shape_problems(manifest)
    if problems:
        return problems
    by_path = {}
    for index, entry in enumerate(manifest['files']):
        where = 'files[%d]' % index
        try:
            check_relpath(entry['path'], where)
        except UnsafePathError as exc:
            problems.append(str(exc))
            continue
        if entry['path'] == 'manifest.json' or entry['path'] in by_path:
            problems.append('%s: %s is listed twice' % (where, entry['path']))
        elif entry['kind'] not in FILE_KINDS:
            problems.append('%s: unknown kind %r' % (where, entry['kind']))
        elif entry['size'] < 0 or not _SHA256.fullmatch(entry['sha256']):
            problems.append('%s: %s has no valid size and sha256' % (where, entry['path']))
        else:
            by_path[entry['path']] = entry
    for name, info in sorted(manifest['packages'].items()):
        where = 'packages.%s' % name
        if not _PACKAGE_NAME.fullmatch(name):
            problems.append('%s: %r is not a Debian package name' % (where, name))
            continue
        entry = _set_file(by_path, info['file'], 'package', where + '.file', problems)
        if entry is not None and (entry.get('package'), entry.get('version')) != (name, info['version']):
            problems.append('%s: the file %s is listed as %s %s' % (where, info['file'], entry.get('package'),
                                                                    entry.get('version')))
    _set_file(by_path, manifest['config']['archive'], 'config', 'config.archive', problems)
    problems.extend(config_problems(manifest['config']))
    sources = set()
    for index, saved in enumerate(manifest['sqlite']):
        where = 'sqlite[%d]' % index
        if not _absolute(saved['source']):
            problems.append('%s.source: %r is not an absolute, normalized path' % (where, saved['source']))
        elif saved['source'] in sources:
            problems.append('%s.source: %s is listed twice' % (where, saved['source']))
        sources.add(saved['source'])
        _set_file(by_path, saved['file'], 'sqlite', where + '.file', problems)
        if saved.get('journal_mode') not in (None,) + JOURNAL_MODES:
            problems.append('%s.journal_mode: %r is not a SQLite journal mode' % (where, saved['journal_mode']))
        if 'mode' in saved and not _MODE.fullmatch(saved['mode']):
            problems.append('%s.mode: %r is not four octal digits' % (where, saved['mode']))
        elif 'mode' in saved and int(saved['mode'], 8) & (stat.S_ISUID | stat.S_ISGID):
            problems.append('%s.mode: %s would be restored set-uid or set-gid (mode %s)'
                            % (where, saved['source'], saved['mode']))
        if 'mode' in saved and not all(0 <= saved.get(key, -1) <= _MAX_ID for key in ('uid', 'gid')):
            # restore_sqlite gives the copy this owner whenever the mode is recorded
            problems.append('%s: mode %s without a valid uid and gid' % (where, saved['mode']))
    for index, saved in enumerate(manifest.get('databases', [])):
        where = 'databases[%d]' % index
        if saved['engine'] not in ENGINES:
            problems.append('%s.engine: %r is not one of %s' % (where, saved['engine'], ', '.join(ENGINES)))
        if saved['format'] not in DUMP_FORMATS:
            problems.append('%s.format: %r is not one of %s' % (where, saved['format'], ', '.join(DUMP_FORMATS)))
        if not saved['database'] or '\0' in saved['database']:
            problems.append('%s.database: %r is not a database name' % (where, saved['database']))
        _set_file(by_path, saved['file'], 'database', where + '.file', problems)
    return problems


def _member_type(member):
    if member.isreg():
        return 'file'
    if member.isdir():
        return 'directory'
    if member.issym():
        return 'symlink'
    if member.islnk():
        return 'hardlink'
    return 'other'


def member_problem(member, entry):
    """Why a member of config.tar is not the manifest entry it stands for (None when it is)."""
    name = member.name
    try:
        check_relpath(name, 'config.tar member')
    except UnsafePathError as exc:
        return str(exc)
    if entry is None:
        return 'config.tar member %s is not in the manifest' % name
    if '/' + name != entry['path']:
        return 'config.tar member %s is out of order: the manifest has %s here' % (name, entry['path'])
    kind = _member_type(member)
    if kind != entry['type']:
        return 'config.tar member %s is a %s, the manifest says %s' % (name, kind, entry['type'])
    if ('%04o' % member.mode, member.uid, member.gid) != (entry['mode'], entry['uid'], entry['gid']):
        return 'config.tar member %s has owner or mode %d:%d %04o, the manifest says %d:%d %s' % (
            name, member.uid, member.gid, member.mode, entry['uid'], entry['gid'], entry['mode'])
    if kind == 'file' and member.size != entry['size']:
        return 'config.tar member %s has %d bytes, the manifest says %d' % (name, member.size, entry['size'])
    if kind == 'symlink' and member.linkname != entry['target']:
        return 'config.tar member %s points to %r, the manifest says %r' % (name, member.linkname, entry['target'])
    if kind == 'hardlink' and '/' + member.linkname != entry['target']:
        return 'config.tar member %s links to %r, the manifest says %r' % (name, member.linkname, entry['target'])
    tar_filter = getattr(tarfile, 'tar_filter', None)
    if tar_filter is not None:
        # The standard library's own rules for archives (PEP 706), as a second opinion.
        try:
            tar_filter(member, '/')
        except tarfile.FilterError as exc:
            return 'config.tar member %s: %s' % (name, exc)
    return None


def archive_problems(manifest, archive_path):
    """Problems of config.tar against the manifest's entries (empty when they are the same)."""
    entries = manifest['config']['entries']
    try:
        with tarfile.open(archive_path) as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        return ['not a readable tar archive: %s' % exc]
    problems = []
    for index, member in enumerate(members):
        problem = member_problem(member, entries[index] if index < len(entries) else None)
        if problem:
            problems.append(problem)
            break
    if not problems and len(members) != len(entries):
        problems.append('config.tar has %d members, the manifest %d entries' % (len(members), len(entries)))
    return problems


def host_problems(manifest, config_paths, init_scripts, sqlite_databases, packages, databases):
    """What the set would touch that this host's settings do not name.

    ``config_paths``: the host's configuration paths (and where they lead, if they are links);
    ``init_scripts``: init scripts of its services; ``sqlite_databases``: databases its settings
    name; ``packages``: its MicroPVR packages; ``databases``: (engine, name) of its external ones.
    """
    problems = []
    allowed = [os.path.normpath(p) for p in config_paths]
    tops = manifest['config']['paths']
    for path in tops:
        if not within(path, allowed) and path not in init_scripts:
            problems.append('the set restores %s, which is not under micropvr_config_paths (%s) and not an init '
                            'script of micropvr_services' % (path, ', '.join(allowed)))
        elif path not in allowed and path not in init_scripts and not within(path, [t for t in tops if t != path]):
            # extract_config writes it into whatever lies between the host's path and it (a link, too)
            problems.append('the set restores %s, which lies below micropvr_config_paths (%s) without being one of '
                            'them or below another configuration path of the set; take a new backup (or set '
                            'micropvr_config_paths as it was when this set was taken)' % (path, ', '.join(allowed)))
    for saved in manifest['sqlite']:
        if not within(saved['source'], manifest['config']['paths']) and saved['source'] not in sqlite_databases:
            problems.append('the set restores the SQLite database %s, which is neither under its configuration '
                            'paths nor named by micropvr_sqlite_databases or micropvr.conf' % saved['source'])
    for name in sorted(manifest['packages']):
        if name not in packages:
            problems.append('the set installs package %s, which micropvr_packages (%s) does not list'
                            % (name, ', '.join(packages)))
    for saved in manifest.get('databases', []):
        if (saved['engine'], saved['database']) not in databases:
            problems.append('the set restores %s database %s, which micropvr_databases does not list'
                            % (saved['engine'], saved['database']))
    return problems


# --- the confined extraction -------------------------------------------------------------------

def _host_path(root, path):
    return os.path.join(root, path.lstrip('/')) if root != '/' else path


def check_parents(root, path, tops):
    """Refuse to write ``path`` below anything but a real directory inside the configuration
    paths: a symbolic link there (the set's or the host's own) would take the write elsewhere."""
    parent = os.path.dirname(path)
    while within(parent, tops):
        try:
            st = os.lstat(_host_path(root, parent))
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ConfinementError('%s lies below %s, which is %s on this host; refusing to write through it'
                                   % (path, parent, 'a symbolic link to %r' % os.readlink(_host_path(root, parent))
                                      if stat.S_ISLNK(st.st_mode) else 'no directory'))
        parent = os.path.dirname(parent)


def _make_room(target, want_directory):
    """Remove what stands at ``target`` when it is not of the wanted kind; never follows links."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not want_directory:
            shutil.rmtree(target)
    elif want_directory or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        os.unlink(target)


def _put_in_place(tmp, target):
    """Rename ``tmp`` over ``target``; remove ``tmp`` instead when anything fails."""
    try:
        _make_room(target, False)
        os.rename(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _write_file(archive, member, entry, target):
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=directory,
                               prefix='.%s.micropvr-restore-' % os.path.basename(target)[:_TEMP_NAME_PART])
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, 'wb') as out:
            source = archive.extractfile(member)
            for chunk in iter(lambda: source.read(_MIB), b''):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != entry['sha256']:
                raise ConfinementError('config.tar member %s does not match its sha256 in the manifest' % member.name)
            os.fchown(out.fileno(), entry['uid'], entry['gid'])
            os.fchmod(out.fileno(), int(entry['mode'], 8))
            out.flush()
            os.fsync(out.fileno())
        os.utime(tmp, (entry['mtime'], entry['mtime']))
    except BaseException:
        os.unlink(tmp)
        raise
    _put_in_place(tmp, target)


def _write_link(entry, target, root):
    directory = os.path.dirname(target)
    tmp = os.path.join(directory, '.%s.micropvr-restore-%d'
                       % (os.path.basename(target)[:_TEMP_NAME_PART], os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        if entry['type'] == 'symlink':
            os.symlink(entry['target'], tmp)
            os.lchown(tmp, entry['uid'], entry['gid'])
        else:
            os.link(_host_path(root, entry['target']), tmp, follow_symlinks=False)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    _put_in_place(tmp, target)


def extract_config(manifest, archive_path, root='/'):
    """Put the configuration entries of the set back under ``root`` (``/`` on a host).

    The manifest must have passed manifest_problems and host_problems. Each member is checked
    again as it is read (the archive could have changed since it was verified). Files are
    written beside their target and renamed over it; directories get their owner and mode last.
    """
    entries = manifest['config']['entries']
    tops = manifest['config']['paths']
    directories, touched, index = [], set(), -1
    with tarfile.open(archive_path) as archive:
        for index, member in enumerate(archive):
            entry = entries[index] if index < len(entries) else None
            problem = member_problem(member, entry)
            if problem:
                raise ConfinementError(problem)
            check_parents(root, entry['path'], tops)
            target = _host_path(root, entry['path'])
            parent = os.path.dirname(target)
            if entry['path'] in tops and not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            if entry['type'] == 'directory':
                _make_room(target, True)
                if not os.path.lexists(target):
                    os.mkdir(target, 0o700)
                directories.append((target, entry))
            elif entry['type'] == 'file':
                _write_file(archive, member, entry, target)
            else:
                _write_link(entry, target, root)
            touched.add(parent)
        if index + 1 != len(entries):
            raise ConfinementError('config.tar has %d members, the manifest %d entries' % (index + 1, len(entries)))
    for target, entry in reversed(directories):
        os.chown(target, entry['uid'], entry['gid'], follow_symlinks=False)
        os.chmod(target, int(entry['mode'], 8))
        os.utime(target, (entry['mtime'], entry['mtime']), follow_symlinks=False)
        touched.add(target)
    for directory in sorted(touched):
        fsync_path(directory)
