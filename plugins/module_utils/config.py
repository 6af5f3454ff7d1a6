# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse micropvr.conf: JSON with ``//`` and ``/* */`` comments.

The vendor's own sample configuration has a missing comma, so every error is
reported as ``<file>:<line>: <reason>`` instead of a traceback: that is what an
operator needs to fix the file at 3 a.m.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json


class MicroPVRConfigError(ValueError):
    """A micropvr.conf that cannot be read or parsed; str() gives ``path:line: reason``."""

    def __init__(self, path, line, reason):
        self.path = path
        self.line = line
        self.reason = reason
        where = path if line is None else '%s:%d' % (path, line)
        super(MicroPVRConfigError, self).__init__('%s: %s' % (where, reason))


def strip_comments(text, path='micropvr.conf'):
    """Blank out ``//`` and ``/* */`` comments outside JSON strings.

    Comment characters are replaced by spaces and newlines are kept, so the
    JSON decoder's line and column numbers still point into the original file.
    """
    out = []
    i = 0
    n = len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == '\\' and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
            i += 1
            continue
        if text.startswith('//', i):
            end = text.find('\n', i)
            end = n if end == -1 else end
            out.append(' ' * (end - i))
            i = end
            continue
        if text.startswith('/*', i):
            end = text.find('*/', i + 2)
            if end == -1:
                line = text.count('\n', 0, i) + 1
                raise MicroPVRConfigError(path, line, 'unterminated /* comment')
            end += 2
            out.append(''.join(c if c == '\n' else ' ' for c in text[i:end]))
            i = end
            continue
        out.append(ch)
        i += 1
    return ''.join(out)


def _previous_content_line(text, lineno):
    """Number of the last non-blank line before ``lineno`` (1-based), or None."""
    lines = text.split('\n')
    for candidate in range(lineno - 1, 0, -1):
        if lines[candidate - 1].strip():
            return candidate
    return None


def parse_config(text, path='micropvr.conf'):
    """Return the configuration in ``text`` as a dict, or raise MicroPVRConfigError."""
    stripped = strip_comments(text, path)
    if not stripped.strip():
        raise MicroPVRConfigError(path, None, 'the file is empty')
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        lineno = getattr(exc, 'lineno', None)
        reason = getattr(exc, 'msg', str(exc))
        if reason == "Expecting ',' delimiter" and lineno is not None:
            previous = _previous_content_line(stripped, lineno)
            if previous is not None and previous != lineno:
                reason += ' (is a comma missing at the end of line %d?)' % previous
        raise MicroPVRConfigError(path, lineno, reason)
    if not isinstance(data, dict):
        raise MicroPVRConfigError(path, 1, 'expected a JSON object at the top level, found %s'
                                  % type(data).__name__)
    return data


def load_config(path):
    """Read and parse the configuration file at ``path``."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        raise MicroPVRConfigError(path, None, exc.strerror or str(exc))
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        line = raw.count(b'\n', 0, exc.start) + 1
        raise MicroPVRConfigError(path, line, 'not valid UTF-8')
    return parse_config(text, path)


def sqlite_paths_from_config(config):
    """Database paths named by ``*-db-path`` keys, in key order."""
    return [value for key, value in sorted(config.items())
            if key.endswith('-db-path') and isinstance(value, str) and value]
