"""micropvr.conf: JSON with ``//`` comments to the end of the line.

A ``//`` inside a JSON string (``"http://host/"``) is not a comment.  Errors name the file and
the line (``/etc/micropvr/micropvr.conf:12: missing ',' after value``), never a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_CONFIG_PATH = "/etc/micropvr/micropvr.conf"

# Every key that any release knows, with its default.  Missing optional keys take these.
DEFAULTS: dict[str, Any] = {
    "log-path": "/var/log/micropvr/micropvr.log",
    "log-verbose-level": 3,
    "log-state-period": 60,
    "log-state-path": "/var/log/micropvr/micropvr_state.log",
    "json-rpc-enabled": True,
    "json-rpc-listen-host": "0.0.0.0",
    "json-rpc-listen-port": 4089,
    "records-db-path": "/etc/micropvr/records.db",
    "tasks-db-path": "/etc/micropvr/tasks.db",
    "records-link-dir": "/var/pvr_links",
    "records-checking-period": 60,
    "records-min-free-space": 10240,
    "records-default-reserve-size": 4096,
    "records-remove-on-low-space": False,
    "task-postpone-time": 30,
    "recorder-cmd": "/usr/bin/micropvr-recorder --source http://127.0.0.1:8080/live?channel=%c --out %o",
    "recorder-pid-path": "/run/micropvr/recorder.pid",
    "recorder-log-enabled": False,
    "recorder-log-path": "/var/log/micropvr/recorder.log",
    "score-max-score": 100.0,
    "score-max-net-load": 0,
    "score-max-sessions": 500,
    # Known since 1.10 (see versioninfo.Release.extra_config_keys); 0 = not checked.
    "score-max-cpu-la1": 0.0,
    # Optional external tasks database (every release; see external.py).  With the default
    # engine "sqlite" the other tasks-db-* keys are not used and tasks live in tasks-db-path.
    "tasks-db-engine": "sqlite",
    "tasks-db-name": None,
    "tasks-db-host": "127.0.0.1",
    "tasks-db-port": None,  # None: the engine's default port (5432, 3306)
    "tasks-db-user": None,
    "tasks-db-password-file": None,  # None: connect without a password
}

TASKS_DB_ENGINES = ("sqlite", "postgresql", "mysql")
# Keys that only matter with an external tasks database.
EXTERNAL_DB_KEYS = ("tasks-db-name", "tasks-db-host", "tasks-db-port", "tasks-db-user",
                    "tasks-db-password-file")
# Keys an external tasks database cannot do without.
EXTERNAL_DB_REQUIRED = ("tasks-db-name", "tasks-db-user")

# Keys that only some releases know (an older release warns about them and ignores them).
VERSIONED_KEYS = frozenset({"score-max-cpu-la1"})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$")
_DB_HOST_RE = re.compile(r"^(/[^\x00]*|[A-Za-z0-9._:-]+)$")  # host name, IP or socket path


def _is_db_name(v: Any) -> bool:
    return isinstance(v, str) and bool(_DB_NAME_RE.match(v))


def _is_db_host(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 255 and bool(_DB_HOST_RE.match(v))


def _is_db_user(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 80 and v.isprintable() and v.strip() == v


def _is_abs_path(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("/") and "\x00" not in v


# key -> (check, description of what is expected)
_CHECKS: dict[str, tuple[Any, str]] = {
    "log-path": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "log-verbose-level": (lambda v: _is_int(v) and 0 <= v <= 6, "an integer 0-6"),
    "log-state-period": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (seconds)"),
    "log-state-path": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "json-rpc-enabled": (lambda v: isinstance(v, bool), "true or false"),
    "json-rpc-listen-host": (lambda v: isinstance(v, str), "a string"),
    "json-rpc-listen-port": (lambda v: _is_int(v) and 1 <= v <= 65535, "an integer 1-65535"),
    "records-db-path": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "tasks-db-path": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "records-link-dir": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "records-checking-period": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (seconds)"),
    "records-min-free-space": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (MiB)"),
    "records-default-reserve-size": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (MiB)"),
    "records-remove-on-low-space": (lambda v: isinstance(v, bool), "true or false"),
    "task-postpone-time": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (seconds)"),
    "recorder-cmd": (lambda v: isinstance(v, str), "a string"),
    "recorder-pid-path": (lambda v: isinstance(v, str), "a string"),
    "recorder-log-enabled": (lambda v: isinstance(v, bool), "true or false"),
    "recorder-log-path": (lambda v: isinstance(v, str), "a string"),
    "score-max-score": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "score-max-net-load": (lambda v: _is_number(v) and v >= 0, "a number >= 0 (Mbit/s)"),
    "score-max-sessions": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "score-max-cpu-la1": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "tasks-db-engine": (lambda v: v in TASKS_DB_ENGINES,
                        "one of " + ", ".join(f'"{e}"' for e in TASKS_DB_ENGINES)),
    "tasks-db-name": (_is_db_name, "a database name (letters, digits, '_', '$', '-'; 1-63)"),
    "tasks-db-host": (_is_db_host, "a host name, an IP address or an absolute socket path"),
    "tasks-db-port": (lambda v: _is_int(v) and 1 <= v <= 65535, "an integer 1-65535"),
    "tasks-db-user": (_is_db_user, "a non-empty user name"),
    "tasks-db-password-file": (_is_abs_path, "an absolute path"),
}
assert set(_CHECKS) == set(DEFAULTS)


class ConfigError(Exception):
    """A configuration problem, printed as ``PATH:LINE: REASON``."""

    def __init__(self, path: str, line: int | None, reason: str):
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


def strip_comments(text: str) -> str:
    """Blank out ``//`` comments outside JSON strings.

    Comment characters become spaces, so line and column numbers of everything else are kept.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n and text[i + 1] != "\n":
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"' or c == "\n":  # a raw newline ends a (broken) string; json reports it
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            if end == -1:
                end = n
            out.append(" " * (end - i))
            i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _prev_token(text: str, pos: int) -> int:
    """Index of the last non-whitespace character before ``pos`` (-1 if none)."""
    i = min(pos, len(text)) - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    return i


def _explain(stripped: str, err: json.JSONDecodeError) -> tuple[int, str]:
    """Turn a JSONDecodeError into (line, human reason), pointing at the line at fault."""
    pos = err.pos
    prev = _prev_token(stripped, pos)
    at_end = stripped[pos:].strip() == ""
    msg = err.msg
    if msg.startswith("Expecting ',' delimiter"):
        # Detected at the next item; the comma is missing at the end of the previous value.
        line = _line_of(stripped, prev) if prev >= 0 else err.lineno
        if at_end:
            return line, "unexpected end of file (missing closing bracket?)"
        if line != err.lineno:
            return line, f"missing ',' after value (next item on line {err.lineno})"
        return line, "missing ',' between items"
    if msg.startswith("Expecting property name enclosed in double quotes"):
        if prev >= 0 and stripped[prev] == "," and stripped[pos:pos + 1] == "}":
            return _line_of(stripped, prev), "trailing ',' before '}'"
        if at_end:
            return err.lineno, "unexpected end of file"
        return err.lineno, "expected a key in double quotes"
    if msg.startswith("Expecting ':' delimiter"):
        return err.lineno, "missing ':' after key"
    if msg.startswith("Expecting value"):
        if at_end:
            return err.lineno if prev < 0 else _line_of(stripped, prev), "unexpected end of file"
        if prev >= 0 and stripped[prev] == "," and stripped[pos:pos + 1] == "]":
            return _line_of(stripped, prev), "trailing ',' before ']'"
        return err.lineno, "expected a value"
    if msg.startswith("Extra data"):
        return err.lineno, "unexpected data after the end of the top-level object"
    if msg.startswith("Unterminated string"):
        return err.lineno, "unterminated string"
    if msg.startswith("Invalid control character"):
        return err.lineno, "invalid control character in string (unterminated string?)"
    return err.lineno, msg[0].lower() + msg[1:]


def key_line(text: str, key: str) -> int | None:
    """Line where ``"key":`` appears (comments already stripped), for error messages."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return _line_of(text, m.start()) if m else None


def parse_text(text: str, path: str = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    """Parse config text into a dict (no defaults applied, no key validation)."""
    stripped = strip_comments(text)
    if not stripped.strip():
        raise ConfigError(path, 1, "empty configuration (expected a JSON object)")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as err:
        line, reason = _explain(stripped, err)
        raise ConfigError(path, line, reason) from None
    if not isinstance(data, dict):
        first = len(stripped) - len(stripped.lstrip())
        raise ConfigError(path, _line_of(stripped, first), "top level must be a JSON object")
    return data


def validate(
    data: dict[str, Any],
    text: str,
    path: str = DEFAULT_CONFIG_PATH,
    known_extra_keys: tuple[str, ...] | frozenset[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Apply defaults and check types.

    Returns (config, warnings).  Unknown keys (including keys that only newer releases know)
    are ignored with a warning, like the vendor's daemon does with keys it does not know.
    """
    stripped = strip_comments(text)
    known = (set(DEFAULTS) - VERSIONED_KEYS) | set(known_extra_keys)
    cfg = {k: v for k, v in DEFAULTS.items()}
    warnings: list[str] = []
    for key, value in data.items():
        if key not in known:
            line = key_line(stripped, key)
            where = f"{path}:{line}" if line else path
            warnings.append(f"{where}: unknown key '{key}' ignored")
            continue
        check, expected = _CHECKS[key]
        if not check(value):
            raise ConfigError(
                path, key_line(stripped, key), f"'{key}' must be {expected}, got {json.dumps(value)}"
            )
        cfg[key] = value
    _check_tasks_db(cfg, data, stripped, path, warnings)
    return cfg, warnings


def _check_tasks_db(cfg: dict[str, Any], data: dict[str, Any], stripped: str, path: str,
                    warnings: list[str]) -> None:
    """Cross-key rules of the external tasks database keys."""
    engine = cfg["tasks-db-engine"]
    if engine == "sqlite":
        for key in EXTERNAL_DB_KEYS:
            if key in data:
                line = key_line(stripped, key)
                where = f"{path}:{line}" if line else path
                warnings.append(f"{where}: '{key}' is only used with an external "
                                "'tasks-db-engine' (\"postgresql\" or \"mysql\"); ignored")
        return
    for key in EXTERNAL_DB_REQUIRED:
        if cfg[key] is None:
            raise ConfigError(path, key_line(stripped, "tasks-db-engine"),
                              f"'tasks-db-engine' is \"{engine}\": '{key}' must be set too")


def locate(path: str, key: str) -> int | None:
    """Line of ``"key":`` in the config file at ``path`` (None if unknown or unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            return key_line(strip_comments(f.read()), key)
    except (OSError, UnicodeDecodeError):
        return None


def load(
    path: str = DEFAULT_CONFIG_PATH, known_extra_keys: tuple[str, ...] | frozenset[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Read, parse and validate a config file; raises ConfigError."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(path, None, "no such file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, None, f"not valid UTF-8 ({err.reason})") from None
    except OSError as err:
        raise ConfigError(path, None, err.strerror or str(err)) from None
    data = parse_text(text, path)
    return validate(data, text, path, known_extra_keys)
