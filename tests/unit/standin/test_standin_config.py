import os
import textwrap

import pytest
import render_template

from micropvr_standin import config, daemon
from micropvr_standin.config import ConfigError

CONF_IN = os.path.join(render_template.HERE, "..", "pkg", "micropvr", "micropvr.conf.in")


def shipped(version: str) -> str:
    with open(CONF_IN, encoding="utf-8") as f:
        return render_template.render(f.read(), version, os.path.dirname(CONF_IN))


def test_shipped_config_parses_with_vendor_defaults(any_release):
    text = shipped(any_release.version)
    data = config.parse_text(text)
    cfg, warnings = config.validate(data, text, known_extra_keys=any_release.extra_config_keys)
    assert warnings == []
    assert cfg["json-rpc-listen-port"] == 4089
    assert cfg["json-rpc-listen-host"] == "0.0.0.0"
    assert cfg["records-db-path"] == "/etc/micropvr/records.db"
    assert cfg["tasks-db-path"] == "/etc/micropvr/tasks.db"
    assert cfg["records-link-dir"] == "/var/pvr_links"
    assert cfg["log-path"] == "/var/log/micropvr/micropvr.log"
    # Every key in the shipped file has the same value as the built-in default.
    for key, value in data.items():
        assert config.DEFAULTS[key] == value, key


def test_shipped_config_differs_between_1_9_and_1_10():
    """An operator's edit must make dpkg see a conffile conflict on 1.9 -> 1.10."""
    old, new, fix = shipped("1.9.0"), shipped("1.10.0"), shipped("1.10.1")
    assert old != new
    assert new == fix
    assert "score-max-cpu-la1" not in old
    assert '// "score-max-cpu-la1"' in new
    assert "score-max-cpu-la1" not in config.parse_text(new)  # commented out


def test_double_slash_inside_string_is_not_a_comment():
    data = config.parse_text('{ "recorder-cmd": "rec --src http://h:8080/x // y", // real comment\n'
                             '  "a\\"//b": "c\\\\" // after an escaped backslash\n}')
    assert data == {"recorder-cmd": "rec --src http://h:8080/x // y", 'a"//b': "c\\"}


def test_comments_keep_line_numbers():
    text = '// head\n{\n  // "x": 1,\n  "a": 1 // one\n  "b": 2\n}\n'
    with pytest.raises(ConfigError) as exc:
        config.parse_text(text, "/etc/micropvr/micropvr.conf")
    assert exc.value.line == 4
    assert str(exc.value) == "/etc/micropvr/micropvr.conf:4: missing ',' after value (next item on line 5)"


def test_missing_comma_reports_file_and_line():
    text = textwrap.dedent("""\
        {
            "log-verbose-level": 3,
            "json-rpc-enabled": true
            "json-rpc-listen-port": 4089
        }
        """)
    with pytest.raises(ConfigError) as exc:
        config.parse_text(text, "/tmp/micropvr.conf")
    assert str(exc.value).startswith("/tmp/micropvr.conf:3: missing ','")


@pytest.mark.parametrize("text, line, reason", [
    ('{\n "a": 1,\n}\n', 2, "trailing ',' before '}'"),
    ('{\n "a": [1,\n 2,]\n}\n', 3, "trailing ',' before ']'"),
    ('{\n "a": "unterminated\n}\n', 2, "invalid control character in string (unterminated string?)"),
    ('{\n "a" 1\n}\n', 2, "missing ':' after key"),
    ('{\n "a": 1\n', 2, "unexpected end of file (missing closing bracket?)"),
    ('{\n "a": 1\n}\n}\n', 4, "unexpected data after the end of the top-level object"),
    ('\n[1, 2]\n', 2, "top level must be a JSON object"),
    ('// nothing\n', 1, "empty configuration (expected a JSON object)"),
    ('{\n a: 1\n}', 2, "expected a key in double quotes"),
    ('{\n "a": tru\n}', 2, "expected a value"),
])
def test_syntax_errors(text, line, reason):
    with pytest.raises(ConfigError) as exc:
        config.parse_text(text, "micropvr.conf")
    assert (exc.value.line, exc.value.reason) == (line, reason)
    assert str(exc.value) == f"micropvr.conf:{line}: {reason}"


def test_missing_optional_keys_take_defaults(r19):
    cfg, warnings = config.validate({}, "{}", known_extra_keys=r19.extra_config_keys)
    assert warnings == []
    assert cfg == {k: v for k, v in config.DEFAULTS.items()}


def test_type_errors_name_the_line():
    text = '{\n  "log-verbose-level": 3,\n  "json-rpc-listen-port": "4089"\n}\n'
    with pytest.raises(ConfigError) as exc:
        config.validate(config.parse_text(text), text, "c.conf")
    assert str(exc.value) == 'c.conf:3: \'json-rpc-listen-port\' must be an integer 1-65535, got "4089"'


@pytest.mark.parametrize("key, value", [
    ("json-rpc-listen-port", 0), ("json-rpc-listen-port", 70000), ("json-rpc-enabled", 1),
    ("log-verbose-level", 7), ("score-max-sessions", True), ("score-max-score", 0),
])
def test_bad_values_rejected(key, value, r110):
    with pytest.raises(ConfigError):
        config.validate({key: value}, "{}", known_extra_keys=r110.extra_config_keys)


def test_newer_key_warned_by_old_release_accepted_by_new(r19, r110):
    text = '{\n  "score-max-cpu-la1": 4.0,\n  "bogus": 1\n}'
    data = config.parse_text(text, "m.conf")
    cfg, warnings = config.validate(data, text, "m.conf", r19.extra_config_keys)
    assert cfg["score-max-cpu-la1"] == 0.0
    assert warnings == ["m.conf:2: unknown key 'score-max-cpu-la1' ignored",
                        "m.conf:3: unknown key 'bogus' ignored"]
    cfg, warnings = config.validate(data, text, "m.conf", r110.extra_config_keys)
    assert cfg["score-max-cpu-la1"] == 4.0
    assert warnings == ["m.conf:3: unknown key 'bogus' ignored"]


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        config.load(str(tmp_path / "nope.conf"))
    assert str(exc.value) == f"{tmp_path / 'nope.conf'}: no such file"


def test_daemon_exits_1_with_file_and_line_no_traceback(tmp_path, capsys, r19):
    conf = tmp_path / "micropvr.conf"
    conf.write_text('{\n  "log-verbose-level": 3\n  "json-rpc-enabled": true\n}\n')
    for args in (["-c", str(conf)], ["-c", str(conf), "--check"]):
        assert daemon.main(args, r19) == 1
        err = capsys.readouterr().err
        assert err == f"micropvr: {conf}:2: missing ',' after value (next item on line 3)\n"
        assert "Traceback" not in err
