"""Fault 9: an operator breaks micropvr.conf. Pre-flight stops the update naming the file and
the line; nothing changes."""

import pytest

from faultlib import reset, run_playbook, target
from gatelib import assert_unchanged, host_state

CONFIG = '/etc/micropvr/micropvr.conf'


@pytest.fixture(scope='module')
def broken(host):
    reset(host)
    host.check_output('cp -p %s /root/micropvr.conf.good' % CONFIG)
    # A value left out after a key, as a hurried edit does.
    line = int(host.check_output("grep -n '\"log-verbose-level\"' %s | cut -d: -f1" % CONFIG))
    host.check_output("sed -i '%ds/: 3,/: ,/' %s" % (line, CONFIG))
    try:
        yield line
    finally:
        host.check_output('cp -p /root/micropvr.conf.good %s' % CONFIG)


def test_preflight_names_the_file_and_line_and_changes_nothing(host, broken):
    before = host_state(host)
    result = run_playbook(host, 'update.yml', micropvr_version=target(host))
    assert result.returncode != 0
    assert 'Pre-flight: %s:%d: ' % (CONFIG, broken) in result.output, result.output
    assert 'Fix the file, then run the update again.' in result.output
    assert 'TASK [microimpuls.micropvr.backup' not in result.output
    assert_unchanged(host, before)


def test_one_run_names_every_failed_check(host, broken):
    """A broken config and a stopped daemon: the one pre-flight check names both."""
    host.check_output('/etc/init.d/micropvr stop')
    try:
        before = host_state(host)
        result = run_playbook(host, 'update.yml', micropvr_version=target(host))
        after = host_state(host)
    finally:
        host.check_output('cp -p /root/micropvr.conf.good %s && /etc/init.d/micropvr start' % CONFIG)
    output = ' '.join(result.output.split())
    assert result.returncode != 0
    assert ('Pre-flight: %s:%d: ' % (CONFIG, broken)) in output, output
    assert 'Fix the file, then run the update again. Pre-flight: not running: micropvr.' in output
    assert 'TASK [microimpuls.micropvr.backup' not in output
    assert after == before
