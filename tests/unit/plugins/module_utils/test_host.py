import os

from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import (
    discover_sqlite_databases,
    free_space,
    parse_dpkg_query,
    read_micropvr_config,
)


def test_parse_dpkg_query_keeps_epoch_and_state():
    out = ('micropvr\t1:1.10.0-1\tamd64\t120\tinstall ok installed\n'
           'micropvs\t1.9.0-1\tamd64\t88\tinstall ok half-configured\n'
           'oldpkg\t\t\t\tdeinstall ok config-files\n')
    parsed = parse_dpkg_query(out)
    assert parsed['micropvr']['version'] == '1:1.10.0-1'
    assert parsed['micropvr']['installed'] is True
    assert parsed['micropvr']['installed_size_kib'] == 120
    assert parsed['micropvs']['installed'] is False
    assert parsed['micropvs']['state'] == 'half-configured'
    assert parsed['oldpkg']['version'] is None
    assert parsed['oldpkg']['state'] == 'config-files'


def test_free_space_measures_nearest_existing_parent(tmp_path):
    target = tmp_path / 'a' / 'b'
    info = free_space(str(target))
    assert info['exists'] is False
    assert info['measured_at'] == str(tmp_path)
    assert info['free_bytes'] > 0


def test_read_config_reports_error_with_line(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{\n "a": 1\n "b": 2\n}\n')
    info, config = read_micropvr_config(str(conf))
    assert config is None
    assert info['valid'] is False
    assert info['error'].startswith('%s:3: ' % conf)


def test_discover_sqlite_databases(tmp_path):
    (tmp_path / 'records.db').write_text('')
    (tmp_path / 'extra.db').write_text('')
    conf = tmp_path / 'micropvr.conf'
    found = discover_sqlite_databases(str(conf), [str(tmp_path / 'records.db'), '/data/tasks.db'])
    assert found == [str(tmp_path / 'records.db'), '/data/tasks.db', os.path.join(str(tmp_path), 'extra.db')]
