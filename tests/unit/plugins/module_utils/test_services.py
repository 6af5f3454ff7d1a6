"""services: which services already run what an install put on disk (no second restart)."""

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import services
from ansible_collections.microimpuls.micropvr.plugins.module_utils.services import (
    boot_clock,
    clock_ticks,
    decide,
    deleted_mappings,
    find_service_processes,
    init_script_pidfiles,
    parse_stat,
    read_process,
    script_owners,
)

STANDIN = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'standin', 'pkg')
INSTALL = 50000  # boot-clock ticks when apt-get began


def stat_line(pid, comm, ppid=1, start=INSTALL + 100, state='S'):
    # Fields 3..52 of a real /proc/<pid>/stat; field 22 (starttime) is the 20th after the comm.
    fields = [state, str(ppid)] + ['0'] * 17 + [str(start)] + ['0'] * 30
    return '%d (%s) %s\n' % (pid, comm, ' '.join(fields))


def proc(pid, start=INSTALL + 100, exe='/usr/bin/python3.11', argv=None, ppid=1, maps=None, comm='micropvr'):
    return dict(pid=pid, comm=comm, state='S', ppid=ppid, start_ticks=start, exe=exe,
                argv=argv if argv is not None else ['/usr/bin/python3', '/usr/sbin/micropvr', '-c', '/etc/x'],
                deleted_maps=maps or [])


# --- /proc/<pid>/stat ----------------------------------------------------------------------------

@pytest.mark.parametrize('comm', ['micropvr', 'nginx: worker', 'a) b (c', '(sd-pam)', ') S 99 ', ''])
def test_parse_stat_finds_the_fields_after_any_comm(comm):
    parsed = parse_stat(stat_line(4242, comm, ppid=17, start=123456))
    assert parsed == dict(pid=4242, comm=comm, state='S', ppid=17, start_ticks=123456)


@pytest.mark.parametrize('text', ['', '4242 micropvr S 1', '4242 (micropvr) S 1 0 0'])
def test_parse_stat_refuses_what_is_not_a_stat_line(text):
    with pytest.raises(ValueError):
        parse_stat(text)


def test_parse_stat_reads_this_process():
    with open('/proc/self/stat') as handle:
        parsed = parse_stat(handle.read())
    assert parsed['pid'] == os.getpid() or parsed['ppid'] == os.getpid()


def test_the_boot_clock_orders_real_processes_like_their_stat_start_time():
    """The premise of the whole check, on this kernel: a process started before the mark has a
    start time below it, one started after has one at or above it."""
    before = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        time.sleep(0.05)
        mark = int(boot_clock() * clock_ticks())
        after = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
        try:
            # Read it once it has exec'd: between fork and exec its command line is still empty
            # (seen on a loaded machine).
            deadline = time.monotonic() + 10
            new = read_process(after.pid)
            while not new['argv'] and time.monotonic() < deadline:
                time.sleep(0.01)
                new = read_process(after.pid)
            old = read_process(before.pid)
            assert old['start_ticks'] < mark <= new['start_ticks']
            assert new['exe'] == os.path.realpath(sys.executable)
            assert new['ppid'] == os.getpid()
            assert new['argv'][0] == sys.executable
        finally:
            after.kill()
            after.wait()
    finally:
        before.kill()
        before.wait()


def test_read_process_of_a_gone_process_is_none(tmp_path):
    assert read_process(99999999) is None
    assert read_process(1, proc=str(tmp_path)) is None


def test_deleted_mappings_keeps_replaced_packaged_files_only(tmp_path):
    (tmp_path / 'maps').write_text(
        '7f00-7f01 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n'
        '7f01-7f02 r--p 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libc.so.6\n'
        '7f02-7f03 rw-s 00000000 00:01 44 /memfd:pulseaudio (deleted)\n'
        '7f03-7f04 rw-s 00000000 00:05 45 /dev/shm/x (deleted)\n'
        '7f04-7f05 rw-p 00000000 00:00 0 \n'
        '7f05-7f06 r-xp 00000000 08:01 46 /usr/lib/micropvr/a b.so (deleted)\n')
    assert deleted_mappings(str(tmp_path)) == ['/usr/lib/micropvr/a b.so', '/usr/lib/x86_64-linux-gnu/libssl.so.3']
    assert deleted_mappings(str(tmp_path / 'gone')) == []


# --- pid files named by init scripts ---------------------------------------------------------------

def test_pidfiles_of_the_standin_init_scripts():
    with open(os.path.join(STANDIN, 'micropvr', 'init.d')) as handle:
        assert init_script_pidfiles(handle.read()) == ['/run/micropvr.pid']
    with open(os.path.join(STANDIN, 'micropvs', 'init.d')) as handle:
        assert init_script_pidfiles(handle.read()) == ['/usr/local/nginx-micropvr/logs/nginx.pid']


def test_pidfiles_from_options_and_nested_variables():
    script = ('RUN=/run\nDIR=${RUN}/live\nstart-stop-daemon --start --pidfile $DIR/live.pid --exec /x\n'
              'PIDFILE="/var/run/a.pid"  # comment\nOTHER_PID=relative.pid\nstart-stop-daemon --pidfile "$UNKNOWN/x"\n')
    assert init_script_pidfiles(script) == ['/run/live/live.pid', '/var/run/a.pid']


# --- which processes belong to a service -----------------------------------------------------------

def test_processes_from_the_pid_file_with_their_descendants():
    processes = {10: proc(10, exe='/usr/sbin/nginx', argv=['nginx: master process /usr/sbin/nginx']),
                 11: proc(11, exe='/usr/sbin/nginx', argv=['nginx: worker process'], ppid=10),
                 12: proc(12, exe='/usr/bin/sleep', argv=['sleep', '1'], ppid=11),
                 20: proc(20, exe='/usr/sbin/nginx', argv=['nginx: master process /usr/sbin/nginx'])}
    assert [p['pid'] for p in find_service_processes([10], set(), processes)] == [10, 11, 12]
    assert find_service_processes([99], set(), processes) == []


def test_processes_running_a_file_of_the_package_directly_or_through_an_interpreter():
    files = {'/usr/sbin/micropvr', '/usr/lib/micropvr/micropvr_standin/daemon.py'}
    processes = {30: proc(30),  # python3 /usr/sbin/micropvr
                 31: proc(31, exe='/usr/sbin/micropvr (deleted)', argv=['micropvr']),
                 32: proc(32, exe='/usr/bin/python3.11', argv=['/usr/bin/python3', '/usr/bin/other']),
                 33: proc(33, exe='/usr/bin/less', argv=['less', '/usr/sbin/micropvr'])}
    assert [p['pid'] for p in find_service_processes([], files, processes)] == [30, 31]


# --- the decision -----------------------------------------------------------------------------------

def test_started_by_the_maintainer_scripts_is_fresh():
    """dh_installinit's default (prerm stops, postinst starts) and --restart-after-upgrade."""
    fresh, reason = decide(True, 0, [proc(30), proc(31, ppid=30)], INSTALL, 'micropvr', ['micropvr', 'micropvs'])
    assert fresh is True
    assert reason.startswith('the install (maintainer scripts of micropvr) started it: pid 30, 31')


def test_started_at_the_tick_the_install_began_is_fresh():
    assert decide(True, 0, [proc(30, start=INSTALL)], INSTALL, 'micropvr', ['micropvr'])[0] is True


def test_old_daemon_left_running_is_stale():
    """--no-stop-on-upgrade without a restart: the old process (a replaced binary) still serves."""
    fresh, reason = decide(True, 0, [proc(30, start=INSTALL - 1)], INSTALL, 'micropvr', ['micropvr'])
    assert (fresh, reason) == (False, 'pid 30 (micropvr) started before the install')
    fresh, reason = decide(True, 0, [proc(30, start=INSTALL - 1, exe='/usr/sbin/micropvr (deleted)')],
                           INSTALL, 'micropvr', ['micropvr'])
    assert (fresh, reason) == (False, 'pid 30 runs the replaced binary /usr/sbin/micropvr (deleted)')


def test_not_started_by_the_postinst_is_stale():
    """--no-start: nothing runs; the restart starts it."""
    assert decide(False, 3, [], INSTALL, 'micropvr', ['micropvr']) == (False, 'not running (status exit 3): started')


def test_unchanged_binary_started_before_the_install_is_stale():
    """A library changed, not the binary: the exe is not deleted, but the process is older."""
    fresh, reason = decide(True, 0, [proc(30, exe='/usr/sbin/nginx', start=INSTALL - 500, comm='nginx')],
                           INSTALL, 'micropvs', ['micropvs'])
    assert (fresh, reason) == (False, 'pid 30 (nginx) started before the install')


def test_a_new_process_mapping_a_replaced_library_is_stale():
    fresh, reason = decide(True, 0, [proc(30, maps=['/usr/lib/libx.so.1'])], INSTALL, 'micropvr', ['micropvr'])
    assert (fresh, reason) == (False, 'pid 30 maps replaced files: /usr/lib/libx.so.1')


def test_one_old_process_makes_the_whole_service_stale():
    fresh, reason = decide(True, 0, [proc(30), proc(31, start=INSTALL - 1, ppid=30)], INSTALL, 'micropvs', ['micropvs'])
    assert (fresh, reason) == (False, 'pid 31 (micropvr) started before the install')


def test_running_without_any_process_found_is_restarted():
    fresh, reason = decide(True, 0, [], INSTALL, None, ['micropvr'])
    assert fresh is False and 'none of its processes was found' in reason


def test_a_service_of_a_package_not_updated_is_fresh_only_when_proved():
    """live555_mi packaged separately: restarted unless its processes are all new."""
    assert decide(True, 0, [proc(40, start=INSTALL - 1)], INSTALL, 'live555-mi', ['micropvr'])[0] is False
    fresh, reason = decide(True, 0, [proc(40)], INSTALL, 'live555-mi', ['micropvr'])
    assert (fresh, reason) == (True, 'pid 40 started after the install began and runs no replaced file')


# --- dpkg answers ------------------------------------------------------------------------------------

class FakeModule(object):
    def __init__(self, out):
        self.out = out

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, args):
        return 0, self.out, ''


def test_script_owners_ignores_diversions_and_shared_paths():
    out = ('micropvr: /etc/init.d/micropvr\n'
           'diversion by foo from: /etc/init.d/micropvs\n'
           'live555-mi:amd64: /etc/init.d/live555_mi\n'
           'a, b: /etc/init.d/shared\n')
    scripts = ['/etc/init.d/micropvr', '/etc/init.d/micropvs', '/etc/init.d/live555_mi', '/etc/init.d/shared']
    assert script_owners(FakeModule(out), scripts) == {'/etc/init.d/micropvr': 'micropvr',
                                                       '/etc/init.d/live555_mi': 'live555-mi'}


def test_package_files_leaves_out_directories(tmp_path):
    binary = tmp_path / 'micropvr'
    binary.write_text('')
    files = services.package_files(FakeModule('/.\n%s\n%s\n' % (tmp_path, binary)), ['micropvr'])
    assert files == {'micropvr': {str(binary)}}


@pytest.mark.parametrize('exe, argv, expected', [
    ('/usr/bin/python3.11', ['/usr/bin/python3', '/usr/sbin/micropvr', '-c', '/etc/x'], ['/usr/sbin/micropvr']),
    ('/usr/bin/python3.11', ['/usr/bin/python3', '-u', '/usr/sbin/micropvr'], ['/usr/sbin/micropvr']),
    ('/usr/bin/dash', ['/bin/sh', '/usr/sbin/live555'], ['/usr/sbin/live555']),
    ('/usr/bin/less', ['/usr/bin/less', '/usr/sbin/micropvr'], []),
    ('/usr/sbin/micropvr (deleted)', ['/usr/sbin/micropvr', '/usr/sbin/other'], []),
])
def test_program_paths_are_the_exe_and_an_interpreter_s_script(exe, argv, expected):
    plain = exe[:-len(' (deleted)')] if exe.endswith(' (deleted)') else exe
    assert services.program_paths(proc(1, exe=exe, argv=argv)) == [plain] + expected


def test_a_process_whose_exe_cannot_be_read_is_judged_by_its_start_time():
    """A container's root cannot read /proc/<pid>/exe of another user's process (nginx workers)."""
    worker = proc(11, exe=None, argv=['nginx: worker process'], ppid=10, comm='nginx')
    processes = {10: proc(10, exe='/usr/sbin/nginx', argv=['nginx: master process'], comm='nginx'), 11: worker}
    assert services.program_paths(worker) == []
    found = find_service_processes([10], set(), processes)
    assert [p['pid'] for p in found] == [10, 11]
    assert decide(True, 0, found, INSTALL, 'micropvs', ['micropvs'])[0] is True
    worker['start_ticks'] = INSTALL - 1
    assert decide(True, 0, found, INSTALL, 'micropvs', ['micropvs']) == (
        False, 'pid 11 (nginx) started before the install')
