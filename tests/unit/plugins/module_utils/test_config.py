import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils.config import (
    MicroPVRConfigError,
    load_config,
    parse_config,
    sqlite_paths_from_config,
    strip_comments,
)

SAMPLE = """// MicroPVR configuration
{
    "log-path": "/var/log/micropvr/micropvr.log", // where to log
    "json-rpc-listen-port": 4089,
    /* a block
       comment */
    "recorder-cmd": "http://example.invalid/path//x",
    "records-db-path": "/etc/micropvr/records.db",
    "tasks-db-path": "/etc/micropvr/tasks.db",
    "quote": "a \\"quoted // not a comment\\" value"
}
"""


def test_comments_are_removed_and_strings_kept():
    config = parse_config(SAMPLE)
    assert config['log-path'] == '/var/log/micropvr/micropvr.log'
    assert config['json-rpc-listen-port'] == 4089
    assert config['recorder-cmd'] == 'http://example.invalid/path//x'
    assert config['quote'] == 'a "quoted // not a comment" value'


def test_strip_comments_keeps_line_numbers():
    stripped = strip_comments(SAMPLE)
    assert stripped.count('\n') == SAMPLE.count('\n')
    assert len(stripped) == len(SAMPLE)


def test_missing_comma_names_file_and_line():
    text = '{\n  "a": 1 // one\n  "b": 2\n}\n'
    with pytest.raises(MicroPVRConfigError) as err:
        parse_config(text, '/etc/micropvr/micropvr.conf')
    assert err.value.line == 3
    assert str(err.value).startswith("/etc/micropvr/micropvr.conf:3: Expecting ',' delimiter")
    assert 'comma missing at the end of line 2' in str(err.value)


def test_unterminated_block_comment():
    with pytest.raises(MicroPVRConfigError) as err:
        parse_config('{\n "a": 1 /* open\n}\n', 'x.conf')
    assert str(err.value) == 'x.conf:2: unterminated /* comment'


@pytest.mark.parametrize('text, reason', [
    ('', 'the file is empty'),
    ('// only a comment\n', 'the file is empty'),
    ('[1, 2]', 'expected a JSON object at the top level, found list'),
])
def test_other_invalid_documents(text, reason):
    with pytest.raises(MicroPVRConfigError) as err:
        parse_config(text, 'c.conf')
    assert reason in str(err.value)


def test_load_config_missing_file(tmp_path):
    missing = tmp_path / 'nope.conf'
    with pytest.raises(MicroPVRConfigError) as err:
        load_config(str(missing))
    assert str(err.value) == '%s: No such file or directory' % missing


def test_load_config_rejects_invalid_utf8(tmp_path):
    path = tmp_path / 'bad.conf'
    path.write_bytes(b'{\n"a": "\xff"\n}\n')
    with pytest.raises(MicroPVRConfigError) as err:
        load_config(str(path))
    assert err.value.line == 2


def test_sqlite_paths_from_config():
    config = parse_config(SAMPLE)
    assert sqlite_paths_from_config(config) == ['/etc/micropvr/records.db', '/etc/micropvr/tasks.db']
