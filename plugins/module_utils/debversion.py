# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian version strings, parsed and ordered exactly as dpkg orders them.

A port of dpkg's ``parseversion`` checks and ``verrevcmp`` (lib/dpkg/version.c): epochs,
``~`` sorting before everything (even the end of the string), letters before other
characters, and digit runs compared as numbers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_UPSTREAM_CHARS = re.compile(r'^[A-Za-z0-9.+~:-]*$')
_REVISION_CHARS = re.compile(r'^[A-Za-z0-9.+~]*$')
_EPOCH = re.compile(r'^[0-9]+$')
# dpkg stores the epoch in an int.
_MAX_EPOCH = 2 ** 31 - 1
OPERATORS = ('<<', '<=', '=', '>=', '>>', '==', '!=', 'lt', 'le', 'eq', 'ne', 'ge', 'gt')
# dpkg still reads the obsolete '<' and '>' as '<=' and '>=', the opposite of what most
# readers expect; they are refused rather than silently meaning either.
_AMBIGUOUS = {'<': "'<<' (older) or '<=' (older or equal)", '>': "'>>' (newer) or '>=' (newer or equal)"}


class DebianVersion(tuple):
    """(epoch, upstream, revision) of a parsed version; str() gives it back as dpkg writes it."""

    def __new__(cls, epoch, upstream, revision):
        return tuple.__new__(cls, (epoch, upstream, revision))

    @property
    def epoch(self):
        return self[0]

    @property
    def upstream(self):
        return self[1]

    @property
    def revision(self):
        return self[2]

    def __str__(self):
        text = '%d:%s' % (self.epoch, self.upstream) if self.epoch else self.upstream
        return '%s-%s' % (text, self.revision) if self.revision else text


def parse(text):
    """Parse a Debian version; ValueError says what is wrong with a malformed one."""
    if not isinstance(text, str):
        raise ValueError('version must be a string, got %s' % type(text).__name__)
    version = text.strip()
    if not version:
        raise ValueError('version is empty')
    if any(c.isspace() for c in version):
        raise ValueError('version %r has embedded spaces' % text)
    epoch = 0
    if ':' in version:
        epoch_text, version = version.split(':', 1)
        if not epoch_text:
            raise ValueError('version %r has an empty epoch' % text)
        if not _EPOCH.match(epoch_text):
            raise ValueError('version %r has a non-numeric epoch %r' % (text, epoch_text))
        epoch = int(epoch_text)
        if epoch > _MAX_EPOCH:
            raise ValueError('version %r has an epoch too big for dpkg' % text)
    upstream, sep, revision = version.rpartition('-')
    if not sep:
        upstream, revision = version, ''
    elif not revision:
        raise ValueError('version %r has an empty revision after "-"' % text)
    if not upstream:
        raise ValueError('version %r has an empty upstream version' % text)
    if not upstream[0].isdigit():
        raise ValueError('version %r: the upstream version must start with a digit' % text)
    if not _UPSTREAM_CHARS.match(upstream):
        raise ValueError('version %r has characters not allowed in an upstream version' % text)
    if not _REVISION_CHARS.match(revision):
        raise ValueError('version %r has characters not allowed in a Debian revision' % text)
    return DebianVersion(epoch, upstream, revision)


def _order(char):
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == '~':
        return -1
    return ord(char) + 256


def _verrevcmp(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == '0':
            i += 1
        while j < len(b) and b[j] == '0':
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare(a, b):
    """-1, 0 or 1 as dpkg --compare-versions orders ``a`` and ``b`` (strings or parsed)."""
    va = a if isinstance(a, DebianVersion) else parse(a)
    vb = b if isinstance(b, DebianVersion) else parse(b)
    if va.epoch != vb.epoch:
        return -1 if va.epoch < vb.epoch else 1
    for x, y in ((va.upstream, vb.upstream), (va.revision, vb.revision)):
        result = _verrevcmp(x, y)
        if result:
            return -1 if result < 0 else 1
    return 0


def satisfies(a, operator, b):
    """Whether ``a <operator> b`` holds; operators as dpkg --compare-versions takes them."""
    if operator in _AMBIGUOUS:
        raise ValueError('comparison operator %r is ambiguous (dpkg reads it as %r); use %s'
                         % (operator, operator + '=', _AMBIGUOUS[operator]))
    result = compare(a, b)
    checks = {
        '<<': result < 0, 'lt': result < 0,
        '<=': result <= 0, 'le': result <= 0,
        '=': result == 0, '==': result == 0, 'eq': result == 0,
        '!=': result != 0, 'ne': result != 0,
        '>=': result >= 0, 'ge': result >= 0,
        '>>': result > 0, 'gt': result > 0,
    }
    if operator not in checks:
        raise ValueError('unknown comparison operator %r (use one of %s)' % (operator, ', '.join(OPERATORS)))
    return checks[operator]
