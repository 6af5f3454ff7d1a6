"""Pure parts of micropvr_restore: how the host is compared with a backup set."""

import hashlib
import os

from ansible_collections.microimpuls.micropvr.plugins.modules import micropvr_restore


def _entry(path, **extra):
    st = os.lstat(path)
    entry = dict(path=str(path), uid=st.st_uid, gid=st.st_gid, mode='%04o' % (st.st_mode & 0o7777),
                 mtime=int(st.st_mtime))
    entry.update(extra)
    return entry


def _file_entry(path):
    data = path.read_bytes()
    return _entry(path, type='file', size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_identical_tree_has_no_differences(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{"a": 1}\n')
    link = tmp_path / 'current'
    os.symlink('micropvr.conf', link)
    entries = [_entry(tmp_path, type='directory'), _file_entry(conf), _entry(link, type='symlink', target='micropvr.conf')]
    assert micropvr_restore.config_differences(entries) == []


def test_each_kind_of_difference_is_named(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('{"a": 1}\n')
    entries = [_file_entry(conf)]
    conf.write_text('{"a": 2}\n')
    assert micropvr_restore.config_differences(entries) == ['%s: content differs' % conf]
    conf.write_text('{"a": 1}\n')
    os.utime(conf, (1, 1))
    assert micropvr_restore.config_differences(entries) == ['%s: mtime differs' % conf]
    os.chmod(conf, 0o600)
    assert micropvr_restore.config_differences(entries) == ['%s: owner or mode differs' % conf]
    conf.unlink()
    assert micropvr_restore.config_differences(entries) == ['%s: missing' % conf]


def test_symlink_target_change_is_a_difference(tmp_path):
    link = tmp_path / 'current'
    os.symlink('a', link)
    entries = [_entry(link, type='symlink', target='a')]
    link.unlink()
    os.symlink('b', link)
    assert micropvr_restore.config_differences(entries) == ['%s: symlink differs' % link]


def test_extra_files_exclude_archived_files_and_databases(tmp_path):
    conf = tmp_path / 'micropvr.conf'
    conf.write_text('x')
    (tmp_path / 'micropvr.conf.dpkg-dist').write_text('y')
    (tmp_path / 'records.db').write_text('')
    (tmp_path / 'records.db-journal').write_text('')
    manifest = dict(config=dict(paths=[str(tmp_path)], entries=[dict(path=str(conf))]),
                    sqlite=[dict(source=str(tmp_path / 'records.db'))])
    assert micropvr_restore.extra_config_files(manifest) == [str(tmp_path / 'micropvr.conf.dpkg-dist')]
