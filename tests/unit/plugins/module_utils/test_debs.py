"""Unit tests for plugins/module_utils/debs.py (.deb file names, control fields, where a .deb comes from)."""

import os

import pytest

from fake_module import FailJson, FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import debs
from ansible_collections.microimpuls.micropvr.plugins.module_utils.debs import (
    control_fields,
    deb_filename,
    estimated_size,
    obtain_deb,
)


@pytest.mark.parametrize('name, version, arch, expected', [
    ('micropvr', '1.9.0-1', 'amd64', 'micropvr_1.9.0-1_amd64.deb'),
    ('micropvs', '1:2.0-1', 'amd64', 'micropvs_1%3a2.0-1_amd64.deb'),
    ('micropvr', '12:1.0~rc1+dfsg-1', 'all', 'micropvr_12%3a1.0~rc1+dfsg-1_all.deb'),
    ('libfoo1', '2:1.0-1:really', 'arm64', 'libfoo1_2%3a1.0-1%3areally_arm64.deb'),
])
def test_deb_filename(name, version, arch, expected):
    assert deb_filename(name, version, arch) == expected


FIELDS_OK = 'Package: micropvr\nVersion: 1:2.0-1\nArchitecture: amd64\n'


class FakeModule(FakeModuleBase):
    """A host with dpkg-deb (reads 'control' files: the fake .deb content is its control fields),
    and optionally apt-get / dpkg-repack that drop a file into their cwd."""

    def __init__(self, bins=('dpkg-deb',), apt_get=None, dpkg_repack=None):
        self.bins = dict((name, '/usr/bin/' + name) for name in bins)
        self.apt_get, self.dpkg_repack = apt_get, dpkg_repack
        self.calls = []


    def run_command(self, args, **kwargs):
        self.calls.append((list(args), kwargs))
        tool = os.path.basename(args[0])
        if tool == 'dpkg-deb':
            assert args[1] == '--field' and args[3:] == ['Package', 'Version', 'Architecture']
            with open(args[2]) as handle:
                content = handle.read()
            if not content.startswith('Package:'):
                return 2, '', "dpkg-deb: error: '%s' is not a Debian format archive\n" % args[2]
            return 0, content, ''
        if tool == 'apt-get':
            return self.apt_get(args, kwargs['cwd'])
        if tool == 'dpkg-repack':
            return self.dpkg_repack(args, kwargs['cwd'])
        raise AssertionError('unexpected command %r' % args)



def write(path, content):
    with open(path, 'w') as handle:
        handle.write(content)
    return path


def test_control_fields(tmp_path):
    path = write(str(tmp_path / 'x.deb'), FIELDS_OK)
    assert control_fields(FakeModule(), path) == dict(Package='micropvr', Version='1:2.0-1', Architecture='amd64')


def test_control_fields_ignores_lines_without_a_colon(tmp_path):
    path = write(str(tmp_path / 'x.deb'), 'Package: micropvr\ngarbage\nVersion:  1.0 \n')
    assert control_fields(FakeModule(), path) == dict(Package='micropvr', Version='1.0')


def test_control_fields_unreadable(tmp_path):
    path = write(str(tmp_path / 'x.deb'), 'not a deb')
    assert control_fields(FakeModule(), path) is None


def test_control_fields_without_dpkg_deb_fails(tmp_path):
    with pytest.raises(FailJson):
        control_fields(FakeModule(bins=()), str(tmp_path / 'x.deb'))


@pytest.fixture
def archives(tmp_path, monkeypatch):
    path = tmp_path / 'archives'
    path.mkdir()
    monkeypatch.setattr(debs, 'APT_ARCHIVES', str(path))
    return path


@pytest.fixture
def dirs(tmp_path):
    dest, work = tmp_path / 'set' / 'packages', tmp_path / 'set'
    dest.mkdir(parents=True)
    return str(dest), str(work)


FILENAME = 'micropvr_1%3a2.0-1_amd64.deb'


def test_obtain_deb_from_apt_cache(archives, dirs):
    dest, work = dirs
    write(str(archives / FILENAME), FIELDS_OK)
    module = FakeModule(bins=('dpkg-deb', 'apt-get', 'dpkg-repack'))
    path, source = obtain_deb(module, 'micropvr', '1:2.0-1', 'amd64', dest, work)
    assert (path, source) == (os.path.join(dest, FILENAME), 'apt-cache')
    with open(path) as handle:
        assert handle.read() == FIELDS_OK
    assert (archives / FILENAME).exists(), 'the cache is copied, not moved'
    assert [os.path.basename(c[0][0]) for c in module.calls] == ['dpkg-deb']
    assert sorted(os.listdir(work)) == ['packages']


def test_obtain_deb_cache_with_other_fields_falls_back_to_apt_get_download(archives, dirs):
    dest, work = dirs
    write(str(archives / FILENAME), FIELDS_OK.replace('amd64', 'i386'))

    def apt_get(args, cwd):
        assert args[1:] == ['download', '-q', 'micropvr:amd64=1:2.0-1']
        write(os.path.join(cwd, FILENAME), FIELDS_OK)
        return 0, 'Get:1 ...', ''

    module = FakeModule(bins=('dpkg-deb', 'apt-get'), apt_get=apt_get)
    path, source = obtain_deb(module, 'micropvr', '1:2.0-1', 'amd64', dest, work)
    assert (path, source) == (os.path.join(dest, FILENAME), 'apt-download')
    assert sorted(os.listdir(work)) == ['packages'], 'the scratch directory is removed'


def test_obtain_deb_falls_back_to_dpkg_repack(archives, dirs):
    dest, work = dirs

    def apt_get(args, cwd):
        return 100, '', 'E: Can\'t find a source to download version \'1:2.0-1\' of \'micropvr:amd64\'\n'

    def dpkg_repack(args, cwd):
        assert args[1:] == ['micropvr']
        write(os.path.join(cwd, 'micropvr_2.0-1_amd64.deb'), FIELDS_OK)  # dpkg-repack drops the epoch
        return 0, 'dpkg-deb: building package', ''

    module = FakeModule(bins=('dpkg-deb', 'apt-get', 'dpkg-repack'), apt_get=apt_get, dpkg_repack=dpkg_repack)
    path, source = obtain_deb(module, 'micropvr', '1:2.0-1', 'amd64', dest, work)
    assert (path, source) == (os.path.join(dest, FILENAME), 'dpkg-repack')
    assert os.listdir(dest) == [FILENAME]


def test_obtain_deb_fails_naming_every_source_tried(archives, dirs):
    dest, work = dirs

    def apt_get(args, cwd):
        return 100, '', 'W: x\nE: Unable to locate package micropvr\n'

    def dpkg_repack(args, cwd):
        write(os.path.join(cwd, 'micropvr_2.0-2_amd64.deb'), FIELDS_OK.replace('1:2.0-1', '1:2.0-2'))
        return 0, '', ''

    module = FakeModule(bins=('dpkg-deb', 'apt-get', 'dpkg-repack'), apt_get=apt_get, dpkg_repack=dpkg_repack)
    with pytest.raises(FailJson) as excinfo:
        obtain_deb(module, 'micropvr', '1:2.0-1', 'amd64', dest, work)
    assert excinfo.value.kwargs['msg'] == (
        'cannot save the installed .deb of micropvr 1:2.0-1 (amd64): tried apt cache (no %s); '
        'apt-get download (E: Unable to locate package micropvr); dpkg-repack (rc=0)'
        % os.path.join(str(archives), FILENAME))
    assert os.listdir(dest) == []
    assert sorted(os.listdir(work)) == ['packages']


def test_obtain_deb_without_apt_get_and_dpkg_repack(archives, dirs):
    dest, work = dirs
    write(str(archives / FILENAME), 'not a deb')
    with pytest.raises(FailJson) as excinfo:
        obtain_deb(FakeModule(), 'micropvr', '1:2.0-1', 'amd64', dest, work)
    assert excinfo.value.kwargs['msg'] == (
        'cannot save the installed .deb of micropvr 1:2.0-1 (amd64): tried apt cache (control fields differ); '
        'apt-get download (apt-get not found); dpkg-repack (not installed: apt-get install dpkg-repack)')


def test_estimated_size(archives):
    write(str(archives / FILENAME), 'x' * 1234)
    assert estimated_size(None, 'micropvr', '1:2.0-1', 'amd64', 99999) == 1234
    assert estimated_size(None, 'micropvr', '1:2.0-2', 'amd64', 10) == 10240
    assert estimated_size(None, 'micropvr', '1:2.0-2', 'amd64', None) == 0
    assert estimated_size(None, 'micropvr', '1:2.0-2', 'amd64', '7') == 7168


@pytest.mark.parametrize('clause, names', [
    ('libc6 (>= 2.34)', ['libc6']),
    ('libssl3 | libssl1.1', ['libssl3', 'libssl1.1']),
    ('python3:any (>= 3.9~)', ['python3']),
    ('foo [amd64] | bar <!nocheck>', ['foo', 'bar']),
])
def test_relation_names(clause, names):
    assert debs.relation_names(clause) == names


def test_external_dependencies_leave_out_what_the_set_provides():
    control = {
        'micropvr-control': {'Pre-Depends': '', 'Depends': 'micropvr (= 1:1.10.0-1), python3'},
        'micropvr': {'Pre-Depends': 'dpkg (>= 1.17)', 'Depends': 'libc6 (>= 2.34),  libsqlite3-0,python3'},
        'micropvs': {'Depends': 'libpcre3 | libpcre2-8-0, micropvr-control | micropvr (>= 1.9)'},
    }
    # Sorted by package, Pre-Depends first, each clause once, spaces normalised; a clause with
    # any alternative from the set is left to the set's own .deb files.
    assert debs.external_dependencies(control, ['micropvr', 'micropvs', 'micropvr-control']) == [
        'dpkg (>= 1.17)', 'libc6 (>= 2.34)', 'libsqlite3-0', 'python3', 'libpcre3 | libpcre2-8-0']
    assert debs.external_dependencies({'micropvr': {}}, ['micropvr']) == []
