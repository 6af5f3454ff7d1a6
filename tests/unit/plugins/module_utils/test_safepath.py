"""module_utils/safepath: which directories the collection accepts as its own, and how it creates them.

The tests run as root, so "another user" is a directory chowned to an unused uid.
"""

import errno
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import safepath
from ansible_collections.microimpuls.micropvr.plugins.module_utils.safepath import UnsafePathError

OTHER_UID = 54321

BRIEF_SYSTEM_DIRS = [
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/media', '/mnt', '/opt', '/proc',
    '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin',
    '/usr/share', '/var', '/var/backups', '/var/cache', '/var/lib', '/var/local', '/var/log', '/var/mail',
    '/var/opt', '/var/run', '/var/spool', '/var/tmp',
]


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


@pytest.fixture
def private(tmp_path):
    """A directory that passes: root's, 0700."""
    directory = tmp_path / 'private'
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def umask():
    saved = os.umask(0o022)
    os.umask(saved)

    def set_umask(value):
        os.umask(value)
    yield set_umask
    os.umask(saved)


# --- check_private_dir ---------------------------------------------------------------------------

def test_every_directory_of_the_brief_is_a_system_directory():
    assert set(BRIEF_SYSTEM_DIRS) <= safepath.SYSTEM_DIRS


@pytest.mark.parametrize('path', sorted(safepath.SYSTEM_DIRS))
def test_system_directories_are_refused(path):
    with pytest.raises(UnsafePathError) as info:
        safepath.check_private_dir(path, 'micropvr_state_dir')
    assert str(info.value).startswith('micropvr_state_dir: %s is ' % path)


@pytest.mark.parametrize('path, message', [
    ('/tmp', 'micropvr_state_dir: /tmp is a system directory; give the collection a directory of its own'),
    ('/', 'micropvr_state_dir: / is a system directory; give the collection a directory of its own'),
    ('/home', 'micropvr_state_dir: /home is a system directory; give the collection a directory of its own'),
    ('/tmp/', 'micropvr_state_dir: /tmp/ is /tmp, a system directory; give the collection a directory of its own'),
    ('//tmp', 'micropvr_state_dir: //tmp is /tmp, a system directory; give the collection a directory of its own'),
    ('/srv/../tmp', 'micropvr_state_dir: /srv/../tmp is /tmp, a system directory; give the collection a directory '
                    'of its own'),
    ('/var/lib/../..', 'micropvr_state_dir: /var/lib/../.. is /, a system directory; give the collection a '
                       'directory of its own'),
    ('/proc/self/cwd', 'micropvr_state_dir: /proc/self/cwd is inside /proc, a kernel filesystem; give the '
                       'collection a directory of its own'),
    ('', "micropvr_state_dir: '' is not set; give the collection a directory of its own"),
    (None, "micropvr_state_dir: '' is not set; give the collection a directory of its own"),
    ('var/lib/micropvr', 'micropvr_state_dir: var/lib/micropvr is not an absolute path'),
    ('./state', 'micropvr_state_dir: ./state is not an absolute path'),
    ('/var/lib/x\x00y', "micropvr_state_dir: '/var/lib/x\\x00y' contains a NUL character"),
])
def test_refused_paths_name_the_option_the_path_and_why(path, message):
    with pytest.raises(UnsafePathError) as info:
        safepath.check_private_dir(path, 'micropvr_state_dir')
    assert str(info.value) == message
    assert info.value.option == 'micropvr_state_dir'


def test_a_symbolic_link_to_tmp_is_refused(tmp_path):
    (tmp_path / 'state').symlink_to('/tmp')
    with pytest.raises(UnsafePathError, match=r'^micropvr_state_dir: \S+/state resolves to /tmp, a system directory'):
        safepath.check_private_dir(str(tmp_path / 'state'), 'micropvr_state_dir')


def test_dotdot_after_a_symbolic_link_is_read_as_the_kernel_reads_it(tmp_path):
    """normpath says <tmp>/state, the kernel says /tmp: the stricter reading wins."""
    (tmp_path / 'link').symlink_to('/var/lib')
    path = str(tmp_path / 'link' / '..' / '..' / 'tmp')
    with pytest.raises(UnsafePathError, match='resolves to /tmp, a system directory'):
        safepath.check_private_dir(path, 'micropvr_state_dir')


def test_a_symbolic_link_to_a_private_directory_is_refused_too(tmp_path, private):
    (tmp_path / 'state').symlink_to(private)
    with pytest.raises(UnsafePathError, match=r'state is a symbolic link \(to %s\); give the real directory'
                                              % private):
        safepath.check_private_dir(str(tmp_path / 'state'), 'micropvr_state_dir')


def test_a_directory_owned_by_another_user_is_refused(private):
    os.chown(str(private), OTHER_UID, -1)
    with pytest.raises(UnsafePathError) as info:
        safepath.check_private_dir(str(private), 'micropvr_state_dir')
    assert str(info.value) == ('micropvr_state_dir: %s is owned by uid %d, not by user root (uid 0) that the module '
                               'runs as; give the collection a directory of its own' % (private, OTHER_UID))


@pytest.mark.parametrize('mode', [0o770, 0o720, 0o707, 0o702, 0o777, 0o1777])
def test_a_directory_writable_by_group_or_others_is_refused_and_left_alone(private, mode):
    os.chmod(str(private), mode)
    with pytest.raises(UnsafePathError, match=r'is writable by group or others \(mode %04o\)' % mode):
        safepath.check_private_dir(str(private), 'micropvr_state_dir')
    with pytest.raises(UnsafePathError):
        safepath.ensure_private_dir(str(private), 'micropvr_state_dir')
    assert mode_of(private) == mode


@pytest.mark.parametrize('mode', [0o700, 0o750, 0o755, 0o711])
def test_a_directory_of_its_own_passes(private, mode):
    os.chmod(str(private), mode)
    assert safepath.check_private_dir(str(private), 'micropvr_state_dir') == str(private)
    assert safepath.check_private_dir(str(private) + '/', 'micropvr_state_dir') == str(private)
    assert mode_of(private) == mode


def test_a_file_is_refused(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(UnsafePathError, match='file exists and is not a directory'):
        safepath.check_private_dir(str(tmp_path / 'file'), 'micropvr_state_dir')
    with pytest.raises(UnsafePathError, match='cannot be created: %s is not a directory' % (tmp_path / 'file')):
        safepath.check_private_dir(str(tmp_path / 'file' / 'state'), 'micropvr_state_dir')


def test_a_missing_directory_passes_and_nothing_is_created(private):
    path = private / 'a' / 'b'
    assert safepath.check_private_dir(str(path), 'micropvr_state_dir') == str(path)
    assert list(private.iterdir()) == []


def test_the_default_state_dir_passes_whether_or_not_it_exists():
    assert safepath.check_private_dir('/var/lib/microimpuls-micropvr', 'micropvr_state_dir') == \
        '/var/lib/microimpuls-micropvr'


def test_a_directory_inside_one_that_another_user_owns_is_refused(tmp_path):
    """The other user could rename the directory away and put a symbolic link in its place."""
    outer = tmp_path / 'outer'
    outer.mkdir(mode=0o755)
    (outer / 'state').mkdir(mode=0o700)
    os.chown(str(outer), OTHER_UID, -1)
    for path in (outer / 'state', outer / 'missing' / 'state'):
        with pytest.raises(UnsafePathError, match='lies in %s, which is owned by uid %d' % (outer, OTHER_UID)):
            safepath.check_private_dir(str(path), 'micropvr_state_dir')


def test_a_directory_inside_a_world_writable_one_is_refused_unless_sticky(tmp_path):
    outer = tmp_path / 'outer'
    outer.mkdir()
    (outer / 'state').mkdir(mode=0o700)
    os.chmod(str(outer), 0o777)
    with pytest.raises(UnsafePathError, match=r'lies in %s, which anyone may write to \(mode 0777\)' % outer):
        safepath.check_private_dir(str(outer / 'state'), 'micropvr_state_dir')
    os.chmod(str(outer), 0o1777)  # like /tmp: nobody can rename what is not theirs
    assert safepath.check_private_dir(str(outer / 'state'), 'micropvr_state_dir') == str(outer / 'state')


def test_a_directory_inside_a_group_writable_one_is_refused(tmp_path):
    outer = tmp_path / 'outer'
    outer.mkdir()
    os.chown(str(outer), 0, 50)
    os.chmod(str(outer), 0o2775)
    with pytest.raises(UnsafePathError, match=r'lies in %s, which (group \S+ \(gid 50\)|gid 50) may write to' % outer):
        safepath.check_private_dir(str(outer / 'state'), 'micropvr_state_dir')


# --- ensure_private_dir --------------------------------------------------------------------------

@pytest.mark.parametrize('mask', [0o022, 0o077, 0o000])
def test_ensure_creates_the_directory_0700_and_parents_0755_whatever_the_umask(private, umask, mask):
    umask(mask)
    path = private / 'a' / 'b' / 'state'
    assert safepath.ensure_private_dir(str(path), 'micropvr_state_dir') is True
    assert mode_of(path) == 0o700
    assert mode_of(private / 'a') == 0o755 and mode_of(private / 'a' / 'b') == 0o755
    assert mode_of(private) == 0o700
    assert safepath.ensure_private_dir(str(path), 'micropvr_state_dir') is False


def test_ensure_never_chmods_a_directory_it_did_not_create(private):
    os.chmod(str(private), 0o755)
    assert safepath.ensure_private_dir(str(private), 'micropvr_state_dir') is False
    assert mode_of(private) == 0o755


def test_ensure_refuses_tmp_and_leaves_its_sticky_bit():
    before = os.lstat('/tmp').st_mode
    with pytest.raises(UnsafePathError, match='^backup_root: /tmp is a system directory'):
        safepath.ensure_private_dir('/tmp', 'backup_root')
    assert os.lstat('/tmp').st_mode == before and before & stat.S_ISVTX


def test_ensure_refuses_before_creating_anything(tmp_path):
    outer = tmp_path / 'outer'
    outer.mkdir()
    os.chown(str(outer), OTHER_UID, -1)
    with pytest.raises(UnsafePathError):
        safepath.ensure_private_dir(str(outer / 'a' / 'state'), 'micropvr_state_dir')
    assert list(outer.iterdir()) == []


def test_ensure_returns_the_same_for_a_normalized_spelling(private):
    assert safepath.ensure_private_dir(str(private) + '//x/./state/', 'micropvr_state_dir') is True
    assert (private / 'x' / 'state').is_dir()


# --- check_relpath -------------------------------------------------------------------------------

@pytest.mark.parametrize('path', ['config.tar', 'manifest.json', 'sqlite/0-records.db', 'debs/micropvr_1.9.0-1_amd64.deb',
                                  'databases/postgresql-micropvr.dump', 'a/b/c', '..a', 'a..', 'a.b/c-d'])
def test_plain_relative_paths_pass(path):
    assert safepath.check_relpath(path, 'files[0].path') == path


@pytest.mark.parametrize('path, reason', [
    ('../evil', "has a '..' component; it must stay inside the backup set"),
    ('a/../../evil', "has a '..' component; it must stay inside the backup set"),
    ('..', "has a '..' component; it must stay inside the backup set"),
    ('a/..', "has a '..' component; it must stay inside the backup set"),
    ('/etc/passwd', 'is an absolute path; it must be relative to the backup set'),
    ('//etc', 'is an absolute path; it must be relative to the backup set'),
    ('.', "has a '.' component"),
    ('./a', "has a '.' component"),
    ('a/./b', "has a '.' component"),
    ('a//b', 'has an empty component'),
    ('a/', 'has an empty component'),
    ('-rf', "starts with '-'"),
    ('a\\..\\b', 'contains a backslash'),
    ('', 'is empty'),
    ('a\nb', 'contains a control character'),
])
def test_paths_that_could_leave_the_set_are_refused(path, reason):
    with pytest.raises(UnsafePathError) as info:
        safepath.check_relpath(path, 'files[3].path')
    assert str(info.value) == 'files[3].path: %s %s' % (safepath._show(path), reason)


@pytest.mark.parametrize('path, reason', [
    ('a\x00b', 'contains a NUL character'),
    (None, 'is not a string'),
    (42, 'is not a string'),
    (b'a', 'is not a string'),
])
def test_paths_that_are_not_text_are_refused(path, reason):
    with pytest.raises(UnsafePathError, match=reason):
        safepath.check_relpath(path, 'files[3].path')


# --- open_nofollow -------------------------------------------------------------------------------

def test_open_nofollow_opens_a_file_close_on_exec(tmp_path):
    fd = safepath.open_nofollow(str(tmp_path / 'f'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert os.get_inheritable(fd) is False
        assert fcntl_cloexec(fd)
    finally:
        os.close(fd)
    assert mode_of(tmp_path / 'f') == 0o600


def fcntl_cloexec(fd):
    import fcntl
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


@pytest.mark.parametrize('flags', [os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.O_WRONLY | os.O_APPEND])
def test_open_nofollow_refuses_a_symbolic_link_and_leaves_its_target(tmp_path, flags):
    target = tmp_path / 'target'
    target.write_text('precious\n')
    (tmp_path / 'link').symlink_to(target)
    with pytest.raises(UnsafePathError) as info:
        safepath.open_nofollow(str(tmp_path / 'link'), flags)
    assert str(info.value) == '%s is a symbolic link; refusing to follow it' % (tmp_path / 'link')
    assert target.read_text() == 'precious\n'


def test_open_nofollow_keeps_other_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        safepath.open_nofollow(str(tmp_path / 'missing'), os.O_RDONLY)
    (tmp_path / 'f').write_text('')
    with pytest.raises(FileExistsError):
        safepath.open_nofollow(str(tmp_path / 'f'), os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def test_open_nofollow_does_not_create_the_target_of_a_dangling_link(tmp_path):
    (tmp_path / 'link').symlink_to(tmp_path / 'created')
    with pytest.raises(UnsafePathError):
        safepath.open_nofollow(str(tmp_path / 'link'), os.O_WRONLY | os.O_CREAT)
    assert not (tmp_path / 'created').exists()


# --- private_workdir -----------------------------------------------------------------------------

def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_private_workdir_is_fresh_private_and_removed(private, umask):
    umask(0o022)
    state_dir = private / 'state'
    with safepath.private_workdir(str(state_dir), 'health-') as work:
        assert os.path.dirname(work) == str(state_dir / 'work')
        assert os.path.basename(work).startswith('health-%d-' % os.getpid())
        assert mode_of(work) == 0o700
        assert mode_of(state_dir) == 0o700 and mode_of(state_dir / 'work') == 0o700
        with open(os.path.join(work, 'pgpass'), 'w') as handle:
            handle.write('secret')
    assert not os.path.exists(work)
    assert list((state_dir / 'work').iterdir()) == []


def test_private_workdir_is_removed_when_the_block_fails(private):
    with pytest.raises(RuntimeError):
        with safepath.private_workdir(str(private), 'restore-') as work:
            raise RuntimeError('boom')
    assert not os.path.exists(work)


def test_private_workdir_removes_what_a_killed_run_left_and_keeps_a_live_one(private):
    work_root = private / 'work'
    work_root.mkdir(mode=0o700)
    killed = work_root / ('health-%d-abc123' % dead_pid())
    killed.mkdir(mode=0o700)
    (killed / 'pgpass').write_text('*:*:*:*:s3cret\n')
    live = work_root / ('health-%d-def456' % os.getppid())
    live.mkdir(mode=0o700)
    other_kind = work_root / ('restore-%d-ghi789' % dead_pid())
    other_kind.mkdir(mode=0o700)
    with safepath.private_workdir(str(private), 'health-') as work:
        assert not killed.exists()
        assert live.is_dir()
        assert other_kind.is_dir()  # another module's; its own next run cleans it
        assert os.path.isdir(work)
    assert sorted(p.name for p in work_root.iterdir()) == sorted([live.name, other_kind.name])


def test_private_workdir_refuses_a_bad_state_dir():
    with pytest.raises(UnsafePathError, match='^state_dir: /tmp is a system directory'):
        with safepath.private_workdir('/tmp', 'health-'):
            pytest.fail('the block ran')


def test_private_workdir_refuses_a_symlinked_work_dir(private, tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir(mode=0o700)
    (private / 'work').symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match='work is a symbolic link'):
        with safepath.private_workdir(str(private), 'health-'):
            pytest.fail('the block ran')
    assert list(elsewhere.iterdir()) == []


def _copy_between(tmp_path, data, length, offset=0):
    source, destination = tmp_path / 'source', tmp_path / 'destination'
    source.write_bytes(data)
    destination.write_bytes(b'')
    source_fd = os.open(str(source), os.O_RDONLY)
    destination_fd = os.open(str(destination), os.O_WRONLY)
    try:
        safepath.copy_fd(source_fd, destination_fd, length, offset)
    finally:
        os.close(source_fd)
        os.close(destination_fd)
    return destination.read_bytes()


def test_copy_fd_copies_the_first_length_bytes_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(safepath, '_COPY_CHUNK', 4096)
    data = os.urandom(3 * 4096 + 123)
    assert _copy_between(tmp_path, data, len(data)) == data
    assert _copy_between(tmp_path, data, 5000) == data[:5000]
    # from an offset to the same offset: a hole before it, that reads as zeros
    assert _copy_between(tmp_path, data, 5000, offset=4096) == bytes(4096) + data[4096:9096]


@pytest.mark.parametrize('refusal', [errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP])
def test_copy_fd_copies_through_the_process_where_the_kernel_refuses(tmp_path, monkeypatch, refusal):
    calls = []

    def refuse(*args):
        calls.append(args)
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(safepath.os, 'copy_file_range', refuse, raising=False)
    monkeypatch.setattr(safepath, '_COPY_CHUNK', 4096)
    data = os.urandom(2 * 4096 + 7)
    assert _copy_between(tmp_path, data, len(data)) == data
    assert len(calls) == 1, 'refused once, then never asked again'


def test_copy_fd_raises_other_errors_of_the_kernel_copy(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(safepath.os, 'copy_file_range', fail, raising=False)
    with pytest.raises(OSError) as caught:
        _copy_between(tmp_path, b'x' * 100, 100)
    assert caught.value.errno == errno.EIO


@pytest.mark.parametrize('in_kernel', [True, False])
def test_copy_fd_of_a_source_shorter_than_length_raises_eoferror(tmp_path, monkeypatch, in_kernel):
    if not in_kernel:
        monkeypatch.delattr(safepath.os, 'copy_file_range', raising=False)
    with pytest.raises(EOFError, match='ended at byte 10, before byte 20'):
        _copy_between(tmp_path, b'0123456789', 20)
