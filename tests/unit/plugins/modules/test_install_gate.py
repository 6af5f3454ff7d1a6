"""micropvr_install's backup gate: it trusts a set that this same run verified and that has not
changed since (the sealed identities of its files), and reads every other set in full."""

import os

import pytest

from backup_sets import DEB_FIELDS, KEYS, SQLITE_FILE, TEST_KEY_HEX, count_verifications, make_set
from fake_module import FailJson, FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset
from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_install

ID = '20261126T221500Z'
RUN = 'update-20261126T221500Z-4242'
# The set's packages, as micropvr_install's package_versions() reports them.
INSTALLED = dict(micropvr=dict(version='1.9.0-1'), micropvs=dict(version='1:2.0-1'))
FOREVER = 10 ** 9


class GateModule(FakeModuleBase):
    """The install module's options; dpkg-deb answers the set's control fields."""

    bins = {'dpkg-deb': '/usr/bin/dpkg-deb'}

    def __init__(self, root, state_dir, lock_owner):
        self.params = dict(backup_id=ID, backup_root=root, max_age=FOREVER, allow_without_backup=False,
                           version='1.10.0-1', state_dir=state_dir, seal_key=TEST_KEY_HEX, trusted_seal_keys=[],
                           lock_owner=lock_owner)

    def run_command(self, args, **kwargs):
        fields = DEB_FIELDS[os.path.basename(args[2])]
        return 0, ''.join('%s: %s\n' % item for item in fields.items()), ''


@pytest.fixture
def gate_host(tmp_path, monkeypatch):
    """A set taken and verified by RUN; every full verification is counted."""
    root, state = tmp_path / 'backups', tmp_path / 'state'
    root.mkdir()
    state.mkdir()
    directory, manifest = make_set(root, ID)
    backupset.mark_verified(directory, manifest, KEYS, RUN)
    return str(root), str(state), directory, count_verifications(monkeypatch)


def gate(gate_host, lock_owner=RUN):
    root, state, dummy, dummy = gate_host
    return micropvr_install.check_gate(GateModule(root, state, lock_owner), INSTALLED)


def test_the_run_that_verified_the_set_passes_the_gate_without_reading_it_again(gate_host):
    assert gate(gate_host) == ID
    assert gate_host[3] == []


@pytest.mark.parametrize('lock_owner', [None, 'another-run'])
def test_any_other_run_reads_the_set_in_full_relying_on_the_sealed_checksums(gate_host, lock_owner):
    assert gate(gate_host, lock_owner) == ID
    assert gate_host[3] == ['checksum']


def test_a_file_changed_after_the_verification_is_read_and_closes_the_gate(gate_host):
    path = os.path.join(gate_host[2], SQLITE_FILE)
    with open(path, 'r+b') as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(FailJson) as failed:
        gate(gate_host)
    assert gate_host[3] == ['checksum']
    assert 'the backup gate is closed' in failed.value.kwargs['msg']
    assert '%s: sha256 does not match the manifest' % SQLITE_FILE in failed.value.kwargs['msg']


def test_a_trusted_set_still_has_to_match_what_is_installed(gate_host):
    root, state, dummy, calls = gate_host
    installed = dict(INSTALLED, micropvr=dict(version='1.9.1-1'))
    with pytest.raises(FailJson) as failed:
        micropvr_install.check_gate(GateModule(root, state, RUN), installed)
    assert calls == []
    assert 'has micropvr 1.9.0-1, but 1.9.1-1 is installed' in failed.value.kwargs['msg']
