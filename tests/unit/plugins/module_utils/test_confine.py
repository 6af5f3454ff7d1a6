"""confine: what a backup set may make a restore do (issue 13), against a sandbox root.

Every test restores into a sandbox directory passed as ``root`` (the host's ``/``); nothing
outside tmp_path is written. Manifests name host paths (``/etc/micropvr``), archives hold
names relative to ``/`` (``etc/micropvr/micropvr.conf``), as micropvr_backup writes them.

``confined_restore`` runs what micropvr_restore runs, in its order: the manifest's checks
(``verify_set``), what the host allows (``verified_set``), the archive's members (the
``config`` content check), and only then the extraction and a model of the SQLite step (a
copy onto ``source``). The old restore extracted every member with the ``fully_trusted``
filter and copied SQLite files onto whatever ``source`` said; with it, each test of a forged
set below changes the sandbox.

The helpers here (sandbox trees, archives, manifests, snapshots) are shared with
test_confine_fuzz.py.
"""

import errno
import hashlib
import os
import shutil
import stat
import tarfile

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import confine
from ansible_collections.microimpuls.micropvr.plugins.module_utils.confine import ConfinementError
from backup_sets import tar_entries

# --- what the sandboxed host allows -----------------------------------------------------------------------------------

HOST_CONFIG_PATHS = ['/etc/micropvr', '/usr/local/nginx-micropvr/conf']
INIT_SCRIPTS = ['/etc/init.d/micropvr', '/etc/init.d/micropvs']
HOST_SQLITE = ['/var/lib/micropvr/records.db']
HOST_PACKAGES = ['micropvr', 'micropvs']
HOST_DATABASES = [('postgresql', 'middleware')]
HOST = (HOST_CONFIG_PATHS, INIT_SCRIPTS, HOST_SQLITE, HOST_PACKAGES, HOST_DATABASES)
# Everything a restore may change: below these, nothing else.
ALLOWED = HOST_CONFIG_PATHS + INIT_SCRIPTS + HOST_SQLITE
SET_PATHS = ['/etc/micropvr', '/usr/local/nginx-micropvr/conf', '/etc/init.d/micropvr']

MTIME = 1764195300  # 2025-11-26T22:15:00Z


def host_path(root, path):
    """Where the host path ``path`` lies in the sandbox ``root``."""
    return os.path.join(str(root), path.lstrip('/'))


def write_file(path, data, mode=0o644, uid=0, gid=0, mtime=MTIME):
    path = str(path)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), 0o755)
    with open(path, 'wb') as handle:
        handle.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))
    return path


def make_dir(path, mode=0o755, uid=0, gid=0):
    path = str(path)
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def build_host(root):
    """The sandboxed host before a restore: MicroPVR's old configuration and the rest of a system."""
    root = str(root)
    make_dir(root)
    write_file(host_path(root, '/etc/micropvr/micropvr.conf'), b'{"version": "old"}\n', 0o640, 0, 1000)
    write_file(host_path(root, '/etc/micropvr/conf.d/local.json'), b'{"port": 8080}\n')
    write_file(host_path(root, '/etc/micropvr/local.override'), b'not in any set\n', 0o600)
    write_file(host_path(root, '/usr/local/nginx-micropvr/conf/nginx.conf'), b'worker_processes 1;\n')
    write_file(host_path(root, '/etc/init.d/micropvr'), b'#!/bin/sh\n# old\n', 0o755)
    write_file(host_path(root, '/etc/init.d/ssh'), b'#!/bin/sh\n', 0o755)
    write_file(host_path(root, '/etc/cron.d/e2scrub_all'), b'# cron\n')
    write_file(host_path(root, '/etc/shadow'), b'root:*:19000:0:99999:7:::\n', 0o640, 0, 42)
    write_file(host_path(root, '/etc/passwd'), b'root:x:0:0:root:/root:/bin/bash\n')
    write_file(host_path(root, '/root/.ssh/authorized_keys'), b'ssh-ed25519 AAAA admin\n', 0o600)
    write_file(host_path(root, '/usr/bin/micropvr'), b'\x7fELF old\n', 0o755)
    write_file(host_path(root, '/usr/share/doc/micropvr/copyright'), b'GPL\n')
    write_file(host_path(root, '/var/lib/micropvr/records.db'), b'old records\n', 0o640)
    make_dir(host_path(root, '/tmp'), 0o1777)
    make_dir(host_path(root, '/root'), 0o700)
    return root


# --- archives and manifests -------------------------------------------------------------------------------------------

def member(name, kind='file', data=b'', target=None, mode=None, uid=0, gid=0, mtime=MTIME):
    """One member of a config.tar to forge: kind file, directory, symlink, hardlink, fifo, chr, blk."""
    if mode is None:
        mode = 0o755 if kind == 'directory' else 0o644
    return dict(name=name, kind=kind, data=data, target=target, mode=mode, uid=uid, gid=gid, mtime=mtime)


_TAR_TYPES = dict(file=tarfile.REGTYPE, directory=tarfile.DIRTYPE, symlink=tarfile.SYMTYPE,
                  hardlink=tarfile.LNKTYPE, fifo=tarfile.FIFOTYPE, chr=tarfile.CHRTYPE, blk=tarfile.BLKTYPE)


def write_tar(path, members):
    """A PAX config.tar holding exactly ``members`` (dicts from member())."""
    with tarfile.open(str(path), 'w', format=tarfile.PAX_FORMAT) as archive:
        for spec in members:
            info = tarfile.TarInfo(spec['name'])
            info.type = _TAR_TYPES[spec['kind']]
            info.mode, info.uid, info.gid, info.mtime = spec['mode'], spec['uid'], spec['gid'], spec['mtime']
            info.uname = info.gname = ''
            if spec['kind'] in ('symlink', 'hardlink'):
                info.linkname = spec['target']
            if spec['kind'] in ('chr', 'blk'):
                info.devmajor, info.devminor = 1, 3
            if spec['kind'] == 'file':
                info.size = len(spec['data'])
                archive.addfile(info, _Bytes(spec['data']))
            else:
                archive.addfile(info)
    return str(path)


class _Bytes(object):
    def __init__(self, data):
        self.data, self.offset = data, 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = len(self.data) - self.offset
        chunk = self.data[self.offset:self.offset + size]
        self.offset += len(chunk)
        return chunk


# The new configuration a legitimate set brings back (names relative to /, in archive order).
NEW_CONF = b'{"version": "new", "channels": 42}\n'
LEGIT_MEMBERS = [
    member('etc/micropvr', 'directory', mode=0o755),
    member('etc/micropvr/micropvr.conf', data=NEW_CONF, mode=0o640, gid=1000),
    member('etc/micropvr/conf.d', 'directory', mode=0o2750, gid=1000),
    member('etc/micropvr/conf.d/local.json', data=b'{"port": 9090}\n', mode=0o600, uid=1000, gid=1000),
    member('etc/micropvr/current.conf', 'symlink', target='micropvr.conf', mode=0o777),
    member('usr/local/nginx-micropvr/conf', 'directory'),
    member('usr/local/nginx-micropvr/conf/nginx.conf', data=b'worker_processes 4;\n'),
    member('etc/init.d/micropvr', data=b'#!/bin/sh\n# new\n', mode=0o755),
]


def _file_record(directory, relpath, kind, data, **extra):
    path = os.path.join(directory, relpath)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as handle:
        handle.write(data)
    record = dict(path=relpath, kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    record.update(extra)
    return record


def make_set(set_dir, members=None, entries_from=None, paths=None, archive_path=None):
    """A set in ``set_dir`` (directory, manifest): config.tar of ``members`` (default LEGIT_MEMBERS),
    a SQLite copy, a package and a PostgreSQL dump. The manifest's entries are those of the
    archive ``entries_from`` (default: the set's own archive), its paths ``paths`` (SET_PATHS).

    ``archive_path`` writes the archive elsewhere (for a set whose entries are derived from a
    legitimate archive while config.tar holds the forged one).
    """
    set_dir = str(set_dir)
    os.makedirs(set_dir)
    archive = write_tar(os.path.join(set_dir, 'config.tar'), LEGIT_MEMBERS if members is None else members)
    files = [dict(path='config.tar', kind='config', size=os.path.getsize(archive),
                  sha256=hashlib.sha256(open(archive, 'rb').read()).hexdigest())]
    files.append(_file_record(set_dir, 'sqlite/records.db', 'sqlite', b'new records\n', source=HOST_SQLITE[0]))
    files.append(_file_record(set_dir, 'packages/micropvr_2.0-1_amd64.deb', 'package', b'!<arch>\nnew\n',
                              package='micropvr', version='2.0-1', architecture='amd64'))
    files.append(_file_record(set_dir, 'databases/postgresql-middleware.dump', 'database', b'PGDMP',
                              format='custom'))
    manifest = dict(
        format_version=2,
        backup_id='20261126T221500Z',
        created_at='2026-11-26T22:15:00Z',
        host='pvr1.example.net',
        reason='pre-update',
        pinned=False,
        packages=dict(micropvr=dict(version='2.0-1', architecture='amd64', file='packages/micropvr_2.0-1_amd64.deb',
                                    source='apt-cache')),
        services=dict(micropvr='running'),
        config=dict(archive='config.tar', paths=list(SET_PATHS if paths is None else paths),
                    entries=tar_entries(archive if entries_from is None else entries_from)),
        sqlite=[dict(source=HOST_SQLITE[0], file='sqlite/records.db', user_version=3, tables={},
                     journal_mode='delete', mode='0640', uid=0, gid=0)],
        databases=[dict(engine='postgresql', database='middleware', file='databases/postgresql-middleware.dump',
                        format='custom', tables={})],
        files=files,
        verified_at=None,
    )
    return set_dir, manifest


def add_set_file(set_dir, manifest, relpath, kind, data=b'x', **extra):
    """List one more file of the set (written into it) in manifest['files']."""
    manifest['files'].append(_file_record(set_dir, relpath, kind, data, **extra))


def all_problems(manifest, archive, host=HOST):
    """What micropvr_restore refuses a set for, in its order; empty when it may be restored."""
    problems = confine.manifest_problems(manifest)
    if problems:
        return problems
    problems = confine.host_problems(manifest, *host)
    if problems:
        return problems
    return confine.archive_problems(manifest, archive)


def confined_restore(set_dir, manifest, root, host=HOST):
    """The restore's file steps into the sandbox ``root``; the problems that refused it (or [])."""
    archive = os.path.join(set_dir, manifest['config']['archive'])
    problems = all_problems(manifest, archive, host)
    if problems:
        return problems
    confine.extract_config(manifest, archive, root=str(root))
    for saved in manifest['sqlite']:
        # micropvr_restore.restore_sqlite: a copy of the set's file renamed onto ``source``
        shutil.copyfile(os.path.join(set_dir, saved['file']), host_path(root, saved['source']))
    return []


# --- snapshots --------------------------------------------------------------------------------------------------------

def snapshot(root, exclude=(), dir_mtimes=True):
    """{host path: (type, mode, uid, gid, content or link target, mtime)} of everything in ``root``.

    Symbolic links are recorded, never followed. Paths within ``exclude`` (host paths) are left
    out; ``dir_mtimes=False`` leaves out the mtime of directories (a rename inside one changes it).
    """
    root = str(root)
    tree = {}

    def record(path, host):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            kind, content = 'symlink', os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            kind, content = 'directory', None
        elif stat.S_ISREG(st.st_mode):
            with open(path, 'rb') as handle:
                kind, content = 'file', hashlib.sha256(handle.read()).hexdigest()
        else:
            kind, content = 'other %o' % stat.S_IFMT(st.st_mode), None
        mtime = st.st_mtime_ns if (kind != 'directory' or dir_mtimes) and kind != 'symlink' else None
        tree[host] = (kind, '%04o' % stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content, mtime)

    record(root, '/')
    for dirpath, dirnames, filenames in os.walk(root):
        rel = '/' + os.path.relpath(dirpath, root) if dirpath != root else ''
        keep = []
        for name in sorted(dirnames + filenames):
            host = '%s/%s' % (rel, name)
            if exclude and confine.within(host, exclude):
                continue
            record(os.path.join(dirpath, name), host)
            if name in dirnames and not os.path.islink(os.path.join(dirpath, name)):
                keep.append(name)
        dirnames[:] = [name for name in dirnames if name in keep]
    return tree


def temp_leftovers(root):
    """Temporary files of a restore left anywhere in ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        found.extend(os.path.join(dirpath, name) for name in dirnames + filenames if 'micropvr-restore' in name)
    return found


# --- 1. every finding of issue 13, item 1: refused, naming the member or path, nothing changed ------------------------

def _legit():
    return list(LEGIT_MEMBERS)


# (id, members of config.tar, which entries the manifest has, what the problem names)
# entries: 'legit' = those of LEGIT_MEMBERS (config.tar differs from the manifest),
#          'forged' = those of the forged archive itself (a manifest edited to match, and resealed).
MEMBER_CASES = [
    ('cron-member-not-in-entries', _legit() + [member('etc/cron.d/evil', data=b'* * * * * root sh -c x\n')],
     'legit', 'etc/cron.d/evil'),
    ('cron-member-listed', _legit() + [member('etc/cron.d/evil', data=b'* * * * * root sh -c x\n')],
     'forged', '/etc/cron.d/evil'),
    ('cron-member-first', [member('etc/cron.d/evil', data=b'x\n')] + _legit(), 'legit', 'etc/cron.d/evil'),
    ('symlink-to-root-ssh-then-write-through',
     _legit() + [member('etc/micropvr/link', 'symlink', target='{root}/root/.ssh'),
                 member('etc/micropvr/link/authorized_keys', data=b'ssh-ed25519 EVIL attacker\n', mode=0o600)],
     'legit', 'etc/micropvr/link'),
    ('symlink-to-root-ssh-then-write-through-listed',
     _legit() + [member('etc/micropvr/link', 'symlink', target='{root}/root/.ssh'),
                 member('etc/micropvr/link/authorized_keys', data=b'ssh-ed25519 EVIL attacker\n', mode=0o600)],
     'forged', '/etc/micropvr/link'),
    ('relative-symlink-then-write-through-listed',
     _legit() + [member('etc/micropvr/link', 'symlink', target='../../root/.ssh'),
                 member('etc/micropvr/link/authorized_keys', data=b'ssh-ed25519 EVIL attacker\n', mode=0o600)],
     'forged', '/etc/micropvr/link'),
    ('file-member-usr', _legit() + [member('usr', data=b'gone\n')], 'legit', 'usr'),
    ('file-member-usr-listed', _legit() + [member('usr', data=b'gone\n')], 'forged', "'/usr'"),
    ('file-member-dot', _legit() + [member('.', data=b'everything gone\n')], 'legit', 'member: . '),
    ('file-member-dot-listed', _legit() + [member('.', data=b'everything gone\n')], 'forged', "'/.'"),
    ('directory-member-dot', [member('.', 'directory', mode=0o777)] + _legit(), 'legit', 'member: . '),
    ('directory-member-dot-slash', [member('./', 'directory', mode=0o777)] + _legit(), 'legit', 'member: . '),
    ('file-member-dot-slash', _legit() + [member('./', data=b'x')], 'legit', 'member: ./ '),
    ('dotdot-member', _legit() + [member('etc/micropvr/../../root/.ssh/authorized_keys', data=b'EVIL\n')],
     'legit', 'etc/micropvr/../../root/.ssh/authorized_keys'),
    ('dotdot-member-listed', _legit() + [member('etc/micropvr/../cron.d/evil', data=b'EVIL\n')],
     'forged', '/etc/micropvr/../cron.d/evil'),
    ('leading-dotdot-member', _legit() + [member('../outside', data=b'EVIL\n')], 'legit', '../outside'),
    ('absolute-member', _legit() + [member('{root}/etc/cron.d/evil', data=b'EVIL\n')], 'legit',
     '{root}/etc/cron.d/evil'),
    ('absolute-member-listed', _legit() + [member('{root}/etc/micropvr/evil', data=b'EVIL\n')],
     'forged', "'/{root}/etc/micropvr/evil'"),
    ('character-device-member', _legit() + [member('etc/micropvr/null', 'chr', mode=0o666)], 'legit',
     'etc/micropvr/null'),
    ('character-device-member-listed', _legit() + [member('etc/micropvr/null', 'chr', mode=0o666)], 'forged',
     '/etc/micropvr/null'),
    ('block-device-member-listed', _legit() + [member('etc/micropvr/sda', 'blk', mode=0o660)], 'forged',
     '/etc/micropvr/sda'),
    ('fifo-member', _legit() + [member('etc/micropvr/fifo', 'fifo')], 'legit', 'etc/micropvr/fifo'),
    ('fifo-member-listed', _legit() + [member('etc/micropvr/fifo', 'fifo')], 'forged', '/etc/micropvr/fifo'),
    ('symlink-entry-absolute-outside',
     _legit() + [member('etc/micropvr/shadow', 'symlink', target='{root}/etc/shadow')], 'forged',
     '/etc/micropvr/shadow'),
    ('symlink-entry-relative-outside',
     _legit() + [member('etc/micropvr/conf.d/keys', 'symlink', target='../../../root/.ssh')],
     'forged', '/etc/micropvr/conf.d/keys'),
    ('symlink-entry-relative-up-two', _legit() + [member('etc/micropvr/etc', 'symlink', target='../../')],
     'forged', '/etc/micropvr/etc'),
    ('hardlink-to-outside', _legit() + [member('etc/micropvr/shadow', 'hardlink', target='etc/shadow')],
     'forged', '/etc/micropvr/shadow'),
    ('hardlink-to-outside-unlisted', _legit() + [member('etc/micropvr/shadow', 'hardlink', target='etc/shadow')],
     'legit', 'etc/micropvr/shadow'),
    ('entry-not-under-paths-by-prefix',
     _legit() + [member('etc/micropvr.d', 'directory'), member('etc/micropvr.d/evil', data=b'x')],
     'forged', '/etc/micropvr.d'),
    ('setuid-file-listed', _legit() + [member('etc/micropvr/helper', data=b'\x7fELF', mode=0o4755)], 'forged',
     '/etc/micropvr/helper'),
]


def _replace(members, which, **change):
    out = []
    for spec in members:
        if spec['name'] == which:
            spec = dict(spec, **change)
        out.append(spec)
    return out


# A member that differs from its entry in the manifest (the manifest is the legitimate one).
MISMATCH_CASES = [
    ('type-directory', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', kind='directory'),
     'etc/micropvr/micropvr.conf'),
    ('type-symlink', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', kind='symlink', target='{root}/etc/shadow'),
     'etc/micropvr/micropvr.conf'),
    ('type-fifo', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', kind='fifo'), 'etc/micropvr/micropvr.conf'),
    ('mode-setuid', _replace(LEGIT_MEMBERS, 'etc/init.d/micropvr', mode=0o4755), 'etc/init.d/micropvr'),
    ('mode-world-writable', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', mode=0o666),
     'etc/micropvr/micropvr.conf'),
    ('owner', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', uid=1000), 'etc/micropvr/micropvr.conf'),
    ('group', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', gid=0), 'etc/micropvr/micropvr.conf'),
    ('size', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', data=NEW_CONF + b'evil\n'),
     'etc/micropvr/micropvr.conf'),
    ('symlink-target', _replace(LEGIT_MEMBERS, 'etc/micropvr/current.conf', target='{root}/etc/shadow'),
     'etc/micropvr/current.conf'),
    ('renamed', _replace(LEGIT_MEMBERS, 'etc/micropvr/micropvr.conf', name='etc/micropvr/micropvr.conf.evil'),
     'etc/micropvr/micropvr.conf.evil'),
    ('missing-member', LEGIT_MEMBERS[:-1], 'config.tar has 7 members, the manifest 8 entries'),
]


@pytest.fixture
def sandbox(tmp_path):
    """(sandbox root with a host tree, a directory for sets)."""
    root = build_host(tmp_path / 'root')
    return root, tmp_path / 'sets'


def in_sandbox(text, root):
    """``text`` with ``{root}`` replaced by the sandbox: absolute names and link targets of forged
    members point into the sandbox, so that even a restore that follows them stays in tmp_path."""
    return text.replace('{root}', str(root)) if isinstance(text, str) else text


def _forged_set(sets, members, entries, root):
    members = [dict(spec, name=in_sandbox(spec['name'], root), target=in_sandbox(spec['target'], root))
               for spec in members]
    legit_archive = write_tar(str(sets) + '-legit.tar', LEGIT_MEMBERS)
    return make_set(os.path.join(str(sets), 'set'), members, entries_from=legit_archive if entries == 'legit' else None)


@pytest.mark.parametrize('members, entries, named', [c[1:] for c in MEMBER_CASES], ids=[c[0] for c in MEMBER_CASES])
def test_a_forged_member_is_refused_and_nothing_changes(sandbox, members, entries, named):
    root, sets = sandbox
    set_dir, manifest = _forged_set(sets, members, entries, root)
    named = in_sandbox(named, root)
    before = snapshot(root)
    problems = confined_restore(set_dir, manifest, root)
    assert problems and any(named in problem for problem in problems), problems
    assert snapshot(root) == before


@pytest.mark.parametrize('members, named', [c[1:] for c in MISMATCH_CASES], ids=[c[0] for c in MISMATCH_CASES])
def test_a_member_that_differs_from_its_entry_is_refused(sandbox, members, named):
    root, sets = sandbox
    set_dir, manifest = _forged_set(sets, members, 'legit', root)
    named = in_sandbox(named, root)
    before = snapshot(root)
    problems = confined_restore(set_dir, manifest, root)
    assert problems and any(named in problem for problem in problems), problems
    assert snapshot(root) == before


@pytest.mark.parametrize('members, entries, named', [c[1:] for c in MEMBER_CASES if c[2] == 'legit']
                         + [(c[1], 'legit', c[2]) for c in MISMATCH_CASES],
                         ids=[c[0] for c in MEMBER_CASES if c[2] == 'legit'] + [c[0] for c in MISMATCH_CASES])
def test_extraction_itself_refuses_a_member_that_is_not_its_entry(sandbox, members, entries, named):
    """Checked again while extracting (the archive could change after it was verified): the
    member is refused before it is written, and nothing outside the configuration paths changes."""
    root, sets = sandbox
    set_dir, manifest = _forged_set(sets, members, entries, root)
    named = in_sandbox(named, root)
    before = snapshot(root, exclude=ALLOWED, dir_mtimes=False)
    with pytest.raises(ConfinementError) as excinfo:
        confine.extract_config(manifest, os.path.join(set_dir, 'config.tar'), root=root)
    assert named in str(excinfo.value)
    assert snapshot(root, exclude=ALLOWED, dir_mtimes=False) == before
    assert temp_leftovers(root) == []


def _paths_plus(extra):
    def edit(set_dir, manifest):
        manifest['config']['paths'] = manifest['config']['paths'] + extra
    return edit


def _package_file(path):
    def edit(set_dir, manifest):
        manifest['packages']['micropvr']['file'] = path
    return edit


def _sqlite_source(path):
    def edit(set_dir, manifest):
        manifest['sqlite'][0]['source'] = path
    return edit


def _unlisted_dump(set_dir, manifest):
    with open(os.path.join(set_dir, 'databases', 'other.dump'), 'wb') as handle:
        handle.write(b'PGDMP')
    manifest['databases'][0]['file'] = 'databases/other.dump'


def _foreign_package(set_dir, manifest):
    add_set_file(set_dir, manifest, 'packages/openssh-server_1_amd64.deb', 'package', b'!<arch>\n',
                 package='openssh-server', version='1', architecture='amd64')
    manifest['packages']['openssh-server'] = dict(version='1', architecture='amd64',
                                                  file='packages/openssh-server_1_amd64.deb')


def _foreign_database(set_dir, manifest):
    add_set_file(set_dir, manifest, 'databases/mysql-mysql.sql', 'database', b'-- dump\n', format='sql')
    manifest['databases'].append(dict(engine='mysql', database='mysql', file='databases/mysql-mysql.sql',
                                      format='sql'))


def _top_outside(path, kind='file'):
    """A forged member at ``path`` that the manifest also lists as one of its configuration paths."""
    def edit(set_dir, manifest):
        members = LEGIT_MEMBERS + [member(path.lstrip('/'), kind, data=b'EVIL\n')]
        write_tar(os.path.join(set_dir, 'config.tar'), members)
        manifest['config']['entries'] = tar_entries(os.path.join(set_dir, 'config.tar'))
        manifest['config']['paths'] = manifest['config']['paths'] + [path]
        manifest['files'][0].update(size=os.path.getsize(os.path.join(set_dir, 'config.tar')))
    return edit


# (id, edit of a legitimate set, what the problem names)
MANIFEST_CASES = [
    ('config-path-usr', _top_outside('/usr'), '/usr'),
    ('config-path-cron-file', _top_outside('/etc/cron.d/evil'), '/etc/cron.d/evil'),
    ('config-path-root-ssh', _top_outside('/root/.ssh/authorized_keys'), '/root/.ssh/authorized_keys'),
    ('config-path-other-init-script', _top_outside('/etc/init.d/ssh'), '/etc/init.d/ssh'),
    ('config-path-relative', _paths_plus(['etc/micropvr']), 'config.paths[3]'),
    ('config-path-root', _paths_plus(['/']), 'config.paths[3]'),
    ('config-path-dotdot', _paths_plus(['/etc/micropvr/../cron.d']), 'config.paths[3]'),
    ('package-file-absolute', _package_file('/tmp/anything.deb'), 'packages.micropvr.file'),
    ('package-file-dotdot', _package_file('../anything.deb'), 'packages.micropvr.file'),
    ('package-file-inner-dotdot', _package_file('packages/../../../tmp/anything.deb'), 'packages.micropvr.file'),
    ('package-file-unlisted', _package_file('packages/other.deb'), 'packages.micropvr.file'),
    ('package-file-of-another-kind', _package_file('sqlite/records.db'), 'packages.micropvr.file'),
    ('sqlite-source-shadow', _sqlite_source('/etc/shadow'), '/etc/shadow'),
    ('sqlite-source-authorized-keys', _sqlite_source('/root/.ssh/authorized_keys'), '/root/.ssh/authorized_keys'),
    ('sqlite-source-dotdot', _sqlite_source('/var/lib/micropvr/../../../etc/shadow'), 'sqlite[0].source'),
    ('sqlite-source-relative', _sqlite_source('etc/shadow'), 'sqlite[0].source'),
    ('sqlite-file-absolute', lambda d, m: m['sqlite'][0].update(file='/nonexistent/records.db'), 'sqlite[0].file'),
    ('database-file-unlisted', _unlisted_dump, 'databases[0].file'),
    ('database-file-absolute', lambda d, m: m['databases'][0].update(file='/nonexistent/x.dump'), 'databases[0].file'),
    ('package-not-on-host', _foreign_package, 'openssh-server'),
    ('database-not-on-host', _foreign_database, 'mysql database mysql'),
    ('config-archive-absolute', lambda d, m: m['config'].update(archive='/nonexistent/config.tar'), 'config.archive'),
]


@pytest.mark.parametrize('edit, named', [c[1:] for c in MANIFEST_CASES], ids=[c[0] for c in MANIFEST_CASES])
def test_a_manifest_that_reaches_outside_is_refused_and_nothing_changes(sandbox, edit, named):
    root, sets = sandbox
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'))
    edit(set_dir, manifest)
    before = snapshot(root)
    problems = confined_restore(set_dir, manifest, root)
    assert problems and any(named in problem for problem in problems), problems
    assert snapshot(root) == before


def test_the_legitimate_set_of_these_tests_passes_every_check(sandbox):
    root, sets = sandbox
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'))
    assert all_problems(manifest, os.path.join(set_dir, 'config.tar')) == []


# --- found while writing these tests (see the report of issue 13): each a regression test -----------------------------

def _forged_manifest_problems(sets, members, paths=None):
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'), members, paths=paths)
    return set_dir, manifest, all_problems(manifest, os.path.join(set_dir, 'config.tar'))


def test_a_symlink_that_steps_back_out_of_another_symlink_is_refused(sandbox):
    """``b -> .`` and ``c -> b/..`` both read as inside /etc/micropvr, but the kernel resolves
    ``b/..`` from where b leads: c leads to /etc, and ``l -> c/../root/.ssh`` to /root/.ssh."""
    root, sets = sandbox
    members = LEGIT_MEMBERS + [member('etc/micropvr/b', 'symlink', target='.'),
                               member('etc/micropvr/c', 'symlink', target='b/..'),
                               member('etc/micropvr/l', 'symlink', target='c/../root/.ssh')]
    set_dir, manifest, problems = _forged_manifest_problems(sets, members)
    assert any('/etc/micropvr/c' in p for p in problems), problems
    assert any('/etc/micropvr/l' in p for p in problems), problems
    before = snapshot(root)
    assert confined_restore(set_dir, manifest, root) == problems
    assert snapshot(root) == before


def test_a_configuration_path_below_a_symlink_of_the_set_is_refused(sandbox):
    """A configuration path skips the "directory first" rule; below a symbolic link of the set it
    was written through the link: here, with the links above, to /root/.ssh/authorized_keys."""
    root, sets = sandbox
    members = LEGIT_MEMBERS + [member('etc/micropvr/b', 'symlink', target='.'),
                               member('etc/micropvr/c', 'symlink', target='b/..'),
                               member('etc/micropvr/l', 'symlink', target='c/../root/.ssh'),
                               member('etc/micropvr/l/authorized_keys', data=b'ssh-ed25519 EVIL\n', mode=0o600)]
    set_dir, manifest, problems = _forged_manifest_problems(
        sets, members, paths=SET_PATHS + ['/etc/micropvr/l/authorized_keys'])
    assert any('/etc/micropvr/l/authorized_keys' in p for p in problems), problems
    before = snapshot(root)
    assert confined_restore(set_dir, manifest, root) == problems
    assert snapshot(root) == before


def test_a_configuration_path_below_a_file_of_the_set_is_refused(sandbox):
    root, sets = sandbox
    members = LEGIT_MEMBERS + [member('etc/micropvr/sub/x', data=b'x'), member('etc/micropvr/sub', data=b'file')]
    set_dir, manifest, problems = _forged_manifest_problems(sets, members, paths=SET_PATHS + ['/etc/micropvr/sub/x'])
    assert any('/etc/micropvr/sub/x' in p for p in problems), problems


def test_extraction_never_writes_through_a_symlink_on_the_host(sandbox):
    """A symbolic link inside the configuration paths that is not in the set (made by an admin, or
    left by another tool) is not followed when a configuration path lies below it."""
    root, sets = sandbox
    victim = make_dir(os.path.join(root, 'victim'))
    write_file(os.path.join(victim, 'keep'), b'keep\n')
    os.symlink(victim, host_path(root, '/etc/micropvr/elsewhere'))
    members = LEGIT_MEMBERS + [member('etc/micropvr/elsewhere/keep', data=b'EVIL\n')]
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'), members,
                                 paths=SET_PATHS + ['/etc/micropvr/elsewhere/keep'])
    assert all_problems(manifest, os.path.join(set_dir, 'config.tar')) == []
    before = snapshot(root, exclude=ALLOWED, dir_mtimes=False)
    with pytest.raises(ConfinementError) as excinfo:
        confine.extract_config(manifest, os.path.join(set_dir, 'config.tar'), root=root)
    assert '/etc/micropvr/elsewhere' in str(excinfo.value)
    assert snapshot(root, exclude=ALLOWED, dir_mtimes=False) == before
    assert temp_leftovers(root) == []


def test_a_configuration_path_below_one_of_the_hosts_is_refused(sandbox):
    """Below one of the host's configuration paths but without it: what lies between them is the
    host's, and extract_config does not look at it (here a link to a victim directory)."""
    root, sets = sandbox
    victim = make_dir(os.path.join(root, 'victim'))
    write_file(os.path.join(victim, 'keep'), b'keep\n')
    os.symlink(victim, host_path(root, '/etc/micropvr/elsewhere'))
    members = [member('etc/micropvr/elsewhere/keep', data=b'EVIL\n')]
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'), members, paths=['/etc/micropvr/elsewhere/keep'])
    before = snapshot(root)
    problems = confined_restore(set_dir, manifest, root)
    assert any('/etc/micropvr/elsewhere/keep, which lies below micropvr_config_paths' in p for p in problems), problems
    assert snapshot(root) == before
    # one of the host's paths itself, or below another path of the set, is fine
    assert confine.host_problems(dict(manifest, config=dict(manifest['config'], paths=['/etc/micropvr'])),
                                 *HOST) == []
    assert confine.host_problems(dict(manifest, config=dict(
        manifest['config'], paths=['/etc/micropvr', '/etc/micropvr/elsewhere/keep'])), *HOST) == []


@pytest.mark.parametrize('name', ['etc/micropvr/a\\b', 'etc/micropvr/new\nline', 'etc/micropvr/tab\there',
                                  'etc/micropvr/del\x7f'])
def test_an_entry_its_member_could_never_match_is_refused_by_the_manifest_check(sandbox, name):
    """Found by test_confine_fuzz: manifest_problems let an entry through whose config.tar member
    archive_problems always refuses (check_relpath: no backslash, no control character)."""
    root, sets = sandbox
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'), LEGIT_MEMBERS + [member(name, data=b'x')])
    problems = confine.manifest_problems(manifest)
    assert any(p.startswith('config.entries[8]: ') for p in problems), problems
    assert confine.archive_problems(manifest, os.path.join(set_dir, 'config.tar'))


@pytest.mark.parametrize('field, value', [
    ('uid', 2 ** 32), ('gid', 2 ** 32), ('uid', 2 ** 32 - 1), ('gid', 2 ** 64), ('mtime', 2 ** 70),
    ('mtime', -2 ** 70),
])
def test_an_owner_or_time_the_system_cannot_set_is_refused_before_anything_changes(sandbox, field, value):
    """These passed the checks and then failed half-way through the extraction with an
    OverflowError (uid -1 would have meant "leave the owner as it is")."""
    root, sets = sandbox
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'))
    manifest['config']['entries'][1][field] = value
    problems = confine.manifest_problems(manifest)
    assert any('config.entries[1]' in p for p in problems), problems


@pytest.mark.parametrize('saved, named', [
    (dict(mode='0640'), 'sqlite[0]'),
    (dict(mode='0640', uid=0), 'sqlite[0]'),
    (dict(mode='4755', uid=0, gid=0), 'sqlite[0].mode'),
    (dict(mode='0640', uid=2 ** 32, gid=0), 'sqlite[0]'),
])
def test_the_owner_and_mode_of_a_sqlite_database_are_checked(sandbox, saved, named):
    """restore_sqlite chowns the copy to ``uid``/``gid`` when ``mode`` is given: a KeyError or
    OverflowError there came after the services were stopped."""
    root, sets = sandbox
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'))
    for key in ('mode', 'uid', 'gid'):
        manifest['sqlite'][0].pop(key, None)
    manifest['sqlite'][0].update(saved)
    problems = confine.manifest_problems(manifest)
    assert any(named in p for p in problems), problems


def test_a_long_file_name_is_restored(sandbox):
    """A name of 250 bytes (allowed by Linux, saved by a backup) left no room for the temporary
    name beside it: the extraction failed with ENAMETOOLONG half-way."""
    root, sets = sandbox
    name = 'etc/micropvr/' + 'n' * 250
    members = LEGIT_MEMBERS + [member(name, data=b'long\n'),
                               member('etc/micropvr/' + 'm' * 250, 'symlink', target='micropvr.conf')]
    set_dir, manifest = make_set(os.path.join(str(sets), 'set'), members)
    assert confined_restore(set_dir, manifest, root) == []
    with open(host_path(root, '/' + name), 'rb') as handle:
        assert handle.read() == b'long\n'
    assert os.readlink(host_path(root, '/etc/micropvr/' + 'm' * 250)) == 'micropvr.conf'
    assert temp_leftovers(root) == []


# --- 2. a legitimate tree comes back exactly --------------------------------------------------------------------------

def build_source_tree(source):
    """The host at backup time: owners, modes, mtimes, symlinks inside, a hard link."""
    source = str(source)
    make_dir(host_path(source, '/etc/micropvr'), 0o755)
    write_file(host_path(source, '/etc/micropvr/micropvr.conf'), NEW_CONF, 0o640, 0, 1000, mtime=MTIME)
    os.link(host_path(source, '/etc/micropvr/micropvr.conf'), host_path(source, '/etc/micropvr/micropvr.conf.hard'))
    make_dir(host_path(source, '/etc/micropvr/conf.d'), 0o2750, 0, 1000)
    write_file(host_path(source, '/etc/micropvr/conf.d/local.json'), b'{"port": 9090}\n', 0o600, 1000, 1000,
               mtime=MTIME + 60)
    write_file(host_path(source, '/etc/micropvr/conf.d/empty'), b'', 0o444, mtime=MTIME - 3600)
    os.symlink('micropvr.conf', host_path(source, '/etc/micropvr/current.conf'))
    os.symlink('/etc/micropvr/conf.d', host_path(source, '/etc/micropvr/conf.d.link'))
    os.symlink('../../micropvr/conf.d/local.json', host_path(source, '/etc/micropvr/conf.d/up.json'))
    # replaced on the target: a file where the host has a directory, and the other way round
    write_file(host_path(source, '/etc/micropvr/plugins'), b'plugins = none\n', 0o644, mtime=MTIME + 5)
    make_dir(host_path(source, '/etc/micropvr/channels'), 0o750)
    write_file(host_path(source, '/etc/micropvr/channels/1.json'), b'{"id": 1}\n', 0o640, mtime=MTIME + 7)
    make_dir(host_path(source, '/etc/micropvr/was-link'), 0o755)
    make_dir(host_path(source, '/usr/local/nginx-micropvr/conf'), 0o755)
    write_file(host_path(source, '/usr/local/nginx-micropvr/conf/nginx.conf'), b'worker_processes 4;\n',
               mtime=MTIME + 9)
    write_file(host_path(source, '/etc/init.d/micropvr'), b'#!/bin/sh\n# new\n', 0o755, mtime=MTIME + 11)
    for path in ('/etc/micropvr/channels', '/etc/micropvr/conf.d', '/etc/micropvr/was-link', '/etc/micropvr',
                 '/usr/local/nginx-micropvr/conf'):
        os.utime(host_path(source, path), (MTIME + 100, MTIME + 100))
    return source


def archive_tree(source, set_dir, paths=SET_PATHS):
    """config.tar of ``paths`` in ``source`` with names relative to / (micropvr_backup's way)."""
    os.makedirs(str(set_dir))
    archive = os.path.join(str(set_dir), 'config.tar')
    with tarfile.open(archive, 'w', format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            tar.add(host_path(source, path), arcname=path.lstrip('/'), recursive=True)
    return archive


def prepare_target(root):
    """The host before the restore: older files, a directory where the set has a file and the
    other way round, a symlink where the set has a directory, files of its own in the paths."""
    build_host(root)
    make_dir(host_path(root, '/etc/micropvr/plugins'))
    write_file(host_path(root, '/etc/micropvr/plugins/a.so'), b'old plugin\n')
    write_file(host_path(root, '/etc/micropvr/channels'), b'old channels file\n')
    os.symlink(host_path(root, '/root'), host_path(root, '/etc/micropvr/was-link'))
    os.symlink('nowhere', host_path(root, '/etc/micropvr/current.conf'))
    write_file(host_path(root, '/etc/micropvr/conf.d/mine.json'), b'an admin file\n', 0o600)


def _restored_set(tmp_path):
    source = build_source_tree(tmp_path / 'source')
    set_dir = tmp_path / 'sets' / 'set'
    archive = archive_tree(source, set_dir)
    set_dir, manifest = str(set_dir), dict(config=dict(archive='config.tar', paths=list(SET_PATHS),
                                                       entries=tar_entries(archive)))
    return source, set_dir, archive, manifest


def test_a_legitimate_tree_is_restored_exactly(tmp_path):
    source, set_dir, archive, manifest = _restored_set(tmp_path)
    root = str(tmp_path / 'root')
    prepare_target(root)
    full = make_set(str(tmp_path / 'sets' / 'full'), entries_from=archive)[1]
    full['config']['entries'] = manifest['config']['entries']
    assert confine.manifest_problems(full) == []
    assert confine.host_problems(full, *HOST) == []
    assert confine.archive_problems(manifest, archive) == []
    outside = snapshot(root, exclude=ALLOWED, dir_mtimes=False)
    mine = snapshot(host_path(root, '/etc/micropvr/conf.d'))['/mine.json']

    confine.extract_config(manifest, archive, root=root)

    restored = snapshot(root)
    expected = snapshot(source)
    for entry in manifest['config']['entries']:
        # owners, modes, contents, link targets, and the mtimes of files and directories
        assert restored[entry['path']] == expected[entry['path']], entry['path']
    got = os.lstat(host_path(root, '/etc/micropvr/micropvr.conf'))
    assert got.st_ino == os.lstat(host_path(root, '/etc/micropvr/micropvr.conf.hard')).st_ino
    assert got.st_nlink == 2
    assert int(got.st_mtime) == MTIME
    assert os.readlink(host_path(root, '/etc/micropvr/conf.d.link')) == '/etc/micropvr/conf.d'
    assert not os.path.exists(host_path(root, '/etc/micropvr/plugins/a.so'))
    # what is not in the set is left alone: in the paths, and outside them
    assert snapshot(host_path(root, '/etc/micropvr/conf.d'))['/mine.json'] == mine
    assert restored['/etc/micropvr/local.override'][4] == hashlib.sha256(b'not in any set\n').hexdigest()
    assert snapshot(root, exclude=ALLOWED, dir_mtimes=False) == outside
    assert os.path.isdir(os.path.join(root, 'root')) and not os.path.islink(host_path(root, '/etc/micropvr/was-link'))
    assert temp_leftovers(root) == []
    # and a second restore changes nothing (but the mtime of /etc/init.d, where a file was renamed)
    restored = snapshot(root, dir_mtimes=False)
    confine.extract_config(manifest, archive, root=root)
    assert snapshot(root, dir_mtimes=False) == restored


def test_a_missing_configuration_path_is_created(tmp_path):
    source, set_dir, archive, manifest = _restored_set(tmp_path)
    root = str(tmp_path / 'root')
    build_host(root)
    shutil.rmtree(host_path(root, '/usr/local'))
    confine.extract_config(manifest, archive, root=root)
    assert snapshot(root)['/usr/local/nginx-micropvr/conf/nginx.conf'] == \
        snapshot(source)['/usr/local/nginx-micropvr/conf/nginx.conf']


class Interrupt(object):
    """Makes the ``count``-th call of ``os.<name>`` (counting from 1) fail with ENOSPC;
    for ``write``, the file objects of the restore write half a chunk first."""

    def __init__(self, monkeypatch, name, count):
        self.name, self.count, self.calls = name, count, 0
        if name == 'write':
            real = os.fdopen

            def fdopen(fd, *args, **kwargs):
                handle = real(fd, *args, **kwargs)
                return _FullDisk(handle, self) if 'w' in (args[0] if args else kwargs.get('mode', 'r')) else handle
            monkeypatch.setattr(os, 'fdopen', fdopen)
        else:
            real = getattr(os, name)

            def call(*args, **kwargs):
                if self.tick():
                    raise OSError(errno.ENOSPC, 'No space left on device (injected)')
                return real(*args, **kwargs)
            monkeypatch.setattr(os, name, call)

    def tick(self):
        self.calls += 1
        return self.calls == self.count


class _FullDisk(object):
    def __init__(self, handle, interrupt):
        self.handle, self.interrupt = handle, interrupt

    def write(self, data):
        if self.interrupt.tick():
            self.handle.write(data[:len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, 'No space left on device (injected)')
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


def _file_states(root, manifest, old):
    """{path: 'old' | 'new' | 'absent'} of every file and link entry; fails on anything else."""
    digests = dict((e['path'], e['sha256']) for e in manifest['config']['entries'] if e['type'] == 'file')
    states = {}
    for entry in manifest['config']['entries']:
        if entry['type'] == 'directory':
            continue
        path = host_path(root, entry['path'])
        now = snapshot(os.path.dirname(path)).get('/' + os.path.basename(path))
        if now is None:
            assert entry['path'] not in old, '%s went missing' % entry['path']
            state = 'absent'
        elif entry['type'] == 'symlink':
            state = 'new' if now[0] == 'symlink' and now[4] == entry['target'] else 'old'
        else:
            new = digests[entry['path'] if entry['type'] == 'file' else entry['target']]
            state = 'new' if now[0] == 'file' and now[4] == new else 'old'
        if state == 'old':
            assert now == old.get(entry['path']), '%s is neither the old nor the new one' % entry['path']
        states[entry['path']] = state
    return states


def _count_calls(tmp_path, monkeypatch, name, manifest, archive):
    root = str(tmp_path / 'count')
    build_host(root)
    with monkeypatch.context() as patch:
        counter = Interrupt(patch, name, -1)
        confine.extract_config(manifest, archive, root=root)
    shutil.rmtree(root)
    return counter.calls


@pytest.mark.parametrize('name', ['rename', 'fsync', 'write', 'fchown', 'symlink', 'link', 'utime'])
def test_an_interrupted_restore_leaves_each_file_old_or_new(tmp_path, monkeypatch, name):
    """ENOSPC at every call of os.<name> in turn: every file is either the old one or the new
    one, none is missing or partial, no temporary file is left, and the next restore completes."""
    source, set_dir, archive, manifest = _restored_set(tmp_path)
    # Replacing a directory by a file (or the other way round) cannot be one rename: keep to files.
    manifest['config']['entries'] = [e for e in manifest['config']['entries']
                                     if e['path'] not in ('/etc/micropvr/plugins', '/etc/micropvr/channels',
                                                          '/etc/micropvr/channels/1.json', '/etc/micropvr/was-link')]
    with tarfile.open(archive) as tar:
        kept = [m for m in tar.getmembers() if '/' + m.name in set(e['path'] for e in manifest['config']['entries'])]
        archive = os.path.join(set_dir, 'files-only.tar')
        with tarfile.open(archive, 'w', format=tarfile.PAX_FORMAT) as out:
            for info in kept:
                out.addfile(info, tar.extractfile(info) if info.isfile() else None)
    calls = _count_calls(tmp_path, monkeypatch, name, manifest, archive)
    assert calls > 0
    for count in range(1, calls + 1):
        root = str(tmp_path / ('root-%d' % count))
        build_host(root)
        old = snapshot(root)
        with monkeypatch.context() as patch:
            Interrupt(patch, name, count)
            with pytest.raises(OSError) as excinfo:
                confine.extract_config(manifest, archive, root=root)
        assert excinfo.value.errno == errno.ENOSPC
        _file_states(root, manifest, old)
        assert temp_leftovers(root) == []
        confine.extract_config(manifest, archive, root=root)
        assert set(_file_states(root, manifest, old).values()) == {'new'}
        shutil.rmtree(root)
