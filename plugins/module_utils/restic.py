# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Off-host copies of backup sets in a restic repository (Debian's ``restic`` package).

Every set goes in as one snapshot of its directory ``<backup_root>/<id>`` (taken from inside the
backup root, so the snapshot holds ``<id>/...`` and restores anywhere), tagged ``micropvr``,
``host=<h>``, ``set=<id>``, ``reason=<...>`` and ``versions=<...>``, with ``--host <h>``.

Secrets never reach a command line or a message: the repository password goes to restic only as
``RESTIC_PASSWORD_FILE`` (a 0600 file in a private work directory, or the operator's own
root-only file), the repository URL (which may carry a REST server's credentials) as
``RESTIC_REPOSITORY`` and the backend's settings (S3 keys) as the child's environment. Every
message that quotes restic passes through ``Restic.scrub``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import stat
import tempfile

from urllib.parse import quote, unquote, urlsplit

TAG = 'micropvr'
# A snapshot with this tag is kept by every prune (an operator's permanent hold).
PROTECTED_TAG = 'micropvr-protected'
BACKENDS = ('local', 'sftp', 's3', 'rest')
# Backends restic has that the collection does not support (yet): refused by name, not taken
# for a relative local path.
_OTHER_BACKENDS = ('b2', 'azure', 'gs', 'swift', 'rclone')
# Variables the collection sets itself; a backend_env entry must not override them.
_OWN_ENV = ('RESTIC_REPOSITORY', 'RESTIC_REPOSITORY_FILE', 'RESTIC_PASSWORD', 'RESTIC_PASSWORD_FILE',
            'RESTIC_PASSWORD_COMMAND', 'RESTIC_KEY_HINT', 'RESTIC_CACHE_DIR')
_ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_CONTROL = re.compile('[\x00-\x1f\x7f]')
# user:password@ in any URL restic or the operator writes (rest:https://u:p@host/).
# The password may hold blanks (not a valid URL, but it must still be masked): up to the '@'.
_URL_CREDENTIALS = re.compile(r'(://[^/@:\s]*):[^@/\n"]*@')
_SUBSET = re.compile(r'([1-9][0-9]*/[1-9][0-9]*|[0-9]+(\.[0-9]+)?%|[1-9][0-9]*[KMGT])')
# Characters kept as they are in a tag value; everything else (',' that restic splits tags
# on, '=' and ';' that separate the versions, '%', blanks) is percent-encoded.
_TAG_SAFE = ':+~@/'

ERROR_PASSWORD = 'password'
ERROR_MISSING = 'missing'
ERROR_UNREACHABLE = 'unreachable'
ERROR_LOCKED = 'locked'
ERROR_DAMAGED = 'damaged'
ERROR_OTHER = 'other'


class ResticError(Exception):
    """restic failed or cannot be run; ``kind`` says how (ERROR_*), the message is for the operator."""

    def __init__(self, message, kind=ERROR_OTHER):
        super(ResticError, self).__init__(message)
        self.kind = kind


def restic_argument_spec():
    """Options of the modules that use a repository (doc fragment microimpuls.micropvr.restic)."""
    return dict(
        repository=dict(type='str', required=True),
        password=dict(type='str', no_log=True),
        password_file=dict(type='path', no_log=False),
        backend_env=dict(type='dict', default={}, no_log=True),
    )


# --- repository URLs ----------------------------------------------------------------------------

def redact(text):
    """``text`` with the password of every ``user:password@`` URL replaced by ``***``."""
    return _URL_CREDENTIALS.sub(r'\1:***@', text)


def url_password(repository):
    """The password written in a rest: URL (to be masked everywhere), or None."""
    if not repository.startswith('rest:'):
        return None
    try:
        return urlsplit(repository[len('rest:'):]).password or None
    except ValueError:
        return None


def repository_kind(repository):
    """The backend of ``repository`` (one of BACKENDS); ResticError saying what is wrong otherwise."""
    if not isinstance(repository, str) or not repository.strip():
        raise ResticError('repository: not set; give a local path, sftp:, s3: or rest: URL')
    shown = redact(repository)
    if _CONTROL.search(repository) or repository.strip() != repository:
        raise ResticError('repository %r: contains a control character or surrounding blanks' % shown)
    scheme, sep, rest = repository.partition(':')
    if repository.startswith('/'):
        if '/../' in repository + '/' or repository.rstrip('/') == '':
            raise ResticError("repository %s: a local repository must be an absolute path without '..', not /" % shown)
        return 'local'
    if sep and scheme == 'sftp':
        if rest.startswith('//'):
            parts = urlsplit(rest)
            if not parts.hostname or len(parts.path) < 2:
                raise ResticError('repository %s: an sftp: URL is sftp://[user@]host[:port]/path' % shown)
        else:
            host, colon, path = rest.partition(':')
            if not host or not colon or not path or host.startswith('-'):
                raise ResticError('repository %s: an sftp: repository is sftp:[user@]host:/path' % shown)
        return 'sftp'
    if sep and scheme == 's3':
        location = rest.split('://', 1)[1] if re.match(r'https?://', rest) else rest
        host, slash, bucket = location.partition('/')
        if not host or not bucket.strip('/') or '://' in location:
            raise ResticError('repository %s: an s3: repository is s3:[https://]host/bucket[/prefix], e.g. '
                              's3:s3.amazonaws.com/my-bucket' % shown)
        return 's3'
    if sep and scheme == 'rest':
        try:
            parts = urlsplit(rest)
            valid = parts.scheme in ('http', 'https') and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise ResticError('repository %s: a rest: repository is rest:http(s)://[user:password@]host[:port]/[path]'
                              % shown)
        return 'rest'
    if sep and scheme in _OTHER_BACKENDS:
        raise ResticError('repository %s: the %s backend is not supported here; use a local path, sftp:, s3: or rest:'
                          % (shown, scheme))
    raise ResticError('repository %s: not an absolute local path nor an sftp:, s3: or rest: URL' % shown)


def check_backend_env(env):
    """``env`` as strings if every name is an environment variable name the collection does not set."""
    if not isinstance(env, dict):
        raise ResticError('backend_env: must be a mapping of environment variable names to values')
    result = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise ResticError('backend_env: %r is not an environment variable name' % (name,))
        if name.upper() in _OWN_ENV:
            raise ResticError('backend_env: %s is set by the collection itself (use the repository and password '
                              'options)' % name)
        if value is None or isinstance(value, (dict, list)):
            raise ResticError('backend_env: %s must be a string' % name)
        text = str(value) if not isinstance(value, bool) else ('true' if value else 'false')
        if '\x00' in text:
            raise ResticError('backend_env: %s contains a NUL character' % name)
        result[name] = text
    return result


def check_read_data_subset(value):
    """``value`` if restic check --read-data-subset takes it: ``n/t``, ``x%`` or a size like ``500M``."""
    text = str(value)
    if not _SUBSET.fullmatch(text) or (text.endswith('%') and not 0 < float(text[:-1]) <= 100):
        raise ResticError('read_data_subset: %r is not n/t (e.g. 1/10), a percentage (e.g. 10%%, at most 100%%) '
                          'or a size (e.g. 500M)' % (value,))
    return text


# --- tags ---------------------------------------------------------------------------------------

def encode_value(text):
    return quote(str(text), safe=_TAG_SAFE)


def encode_versions(versions):
    """``name=version;...`` sorted by name; every part percent-encoded, so no ',' '=' ';' inside."""
    return ';'.join('%s=%s' % (encode_value(name), encode_value(versions[name] or '')) for name in sorted(versions))


def decode_versions(text):
    result = {}
    for part in text.split(';') if text else []:
        name, dummy, version = part.partition('=')
        result[unquote(name)] = unquote(version) or None
    return result


def set_tags(host, backup_id, reason, versions):
    """The tags of the snapshot of one set."""
    return [TAG, 'host=' + encode_value(host), 'set=' + encode_value(backup_id),
            'reason=' + encode_value(reason or ''), 'versions=' + encode_versions(versions or {})]


def parse_tags(tags):
    """What the tags of a snapshot say: backup_id, host, reason, versions, protected."""
    info = dict(backup_id=None, host=None, reason=None, versions={}, protected=False)
    for tag in tags or []:
        key, sep, value = tag.partition('=')
        if tag == PROTECTED_TAG:
            info['protected'] = True
        elif sep and key == 'versions':
            info['versions'] = decode_versions(value)
        elif sep and key in ('host', 'reason'):
            info[key] = unquote(value)
        elif sep and key == 'set':
            info['backup_id'] = unquote(value)
    return info


def describe(snapshot):
    """A snapshot from restic's JSON as the modules return it."""
    info = parse_tags(snapshot.get('tags'))
    info.update(id=snapshot.get('id'), short_id=snapshot.get('short_id') or (snapshot.get('id') or '')[:8],
                time=snapshot.get('time'), hostname=snapshot.get('hostname'), tags=list(snapshot.get('tags') or []))
    return info


# --- errors -------------------------------------------------------------------------------------

_UNREACHABLE = re.compile(r'dial tcp|connection refused|no such host|i/o timeout|network is unreachable|'
                          r'unable to start the sftp session|subprocess ssh|connection reset|TLS handshake|'
                          r'x509:|context deadline exceeded|Permission denied \(publickey', re.IGNORECASE)
_MISSING = re.compile(r'Is there a repository at the following location\?|unable to open config file|'
                      r'repository does not exist|The specified bucket does not exist', re.IGNORECASE)


def _fatal_line(stderr):
    """The line that says what went wrong: the first 'Fatal:' line, else the last non-empty one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith('Fatal:'):
            return line[len('Fatal:'):].strip()
    return lines[-1] if lines else ''


def classify(stderr, rc, repository_shown, command):
    """(kind, message) of a failed restic run; the caller scrubs the message of secrets."""
    detail = _fatal_line(stderr)
    if 'wrong password or no key found' in stderr:
        return ERROR_PASSWORD, 'wrong restic password for repository %s' % repository_shown
    if re.search(r'is already locked', stderr):
        match = re.search(r'(locked (exclusively )?by PID [0-9]+ on \S+ by [^\n(]+)', stderr)
        holder = ' (%s)' % match.group(1).strip() if match else ''
        return ERROR_LOCKED, ('restic repository %s is locked by another restic process%s; wait for it to end, '
                              'or run "restic unlock" if that process is gone' % (repository_shown, holder))
    if _UNREACHABLE.search(stderr):
        return ERROR_UNREACHABLE, 'restic repository %s is unreachable: %s' % (repository_shown, detail)
    if _MISSING.search(stderr):
        return ERROR_MISSING, ('there is no restic repository at %s (%s); check the URL, or create it with init'
                               % (repository_shown, detail))
    errors = re.search(r'There were ([0-9]+) errors', stderr)
    if errors:
        return ERROR_DAMAGED, ('restic %s could not read %s part(s) of the snapshot from repository %s: %s'
                               % (command, errors.group(1), repository_shown, '; '.join(_ignored_errors(stderr)) or detail))
    return ERROR_OTHER, 'restic %s failed (rc %s) on repository %s: %s' % (command, rc, repository_shown, detail or
                                                                           'no message')


def _ignored_errors(stderr):
    return [line.strip()[len('ignoring error for '):] for line in stderr.splitlines()
            if line.strip().startswith('ignoring error for ')][:5]


def _json_document(out):
    """The JSON value restic printed (the first line that parses: progress lines may follow)."""
    for line in out.splitlines():
        line = line.strip()
        if line.startswith('[') or line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError('no JSON in the output of restic')


# --- running restic -----------------------------------------------------------------------------

def _password_problem(secret):
    # restic reads a password file with strings.TrimSpace: surrounding blanks would be lost.
    if not secret:
        return 'is empty'
    if secret.strip() != secret:
        return 'begins or ends with blanks or a newline, which restic strips from a password file'
    if '\x00' in secret:
        return 'contains a NUL character'
    return None


def check_password_file(path):
    """``path`` if it is a regular file only its owner (root or the user running) can read."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ResticError('password_file %s: %s' % (path, exc.strerror or exc))
    if not stat.S_ISREG(st.st_mode):
        raise ResticError('password_file %s: not a regular file' % path)
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
        raise ResticError('password_file %s: must be owned by root (or uid %d) with mode 0600 or 0400 (it is uid %d, '
                          'mode %04o)' % (path, os.geteuid(), st.st_uid, stat.S_IMODE(st.st_mode)))
    return path


class Restic(object):
    """One repository, as seen through the ``restic`` binary.

    ``runner(argv, env, cwd)`` runs a command and returns (rc, stdout, stderr) (the module's
    run_command). ``work_dir`` is a private directory (safepath.private_workdir) that holds the
    password file while the object is used.
    """

    def __init__(self, runner, binary, repository, work_dir, password=None, password_file=None,
                 backend_env=None, cache_dir=None):
        self.kind = repository_kind(repository)
        self.repository = repository
        self.shown = redact(repository)
        self.runner = runner
        self.binary = binary
        env = check_backend_env(backend_env or {})
        self._secrets = [value for value in env.values() if len(value) >= 3]
        if url_password(repository):
            self._secrets.append(url_password(repository))
        if password is not None:
            problem = _password_problem(password)
            if problem:
                raise ResticError('password: the restic password %s' % problem)
            self._secrets.append(password)
            fd, password_file = tempfile.mkstemp(dir=work_dir, prefix='.restic-password-')
            with os.fdopen(fd, 'w') as handle:
                handle.write(password + '\n')
        elif password_file:
            check_password_file(password_file)
        else:
            raise ResticError('a restic password is needed: give password (from Ansible Vault) or password_file')
        env.update(RESTIC_REPOSITORY=repository, RESTIC_PASSWORD_FILE=password_file,
                   # Empty is unset for restic: whatever the calling environment holds must not win
                   # over (or conflict with) the password file and repository given here.
                   RESTIC_PASSWORD='', RESTIC_PASSWORD_COMMAND='', RESTIC_REPOSITORY_FILE='', RESTIC_KEY_HINT='')
        if cache_dir:
            env['RESTIC_CACHE_DIR'] = cache_dir
        self.env = env
        self.password_file = password_file

    def scrub(self, text):
        text = redact(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, '***')
        return text

    def argv(self, args):
        """The command line of ``restic <args>``: never a secret in it (the tests check that)."""
        return [self.binary] + list(args)

    def run(self, args, cwd=None, ok=(0,)):
        """(rc, stdout, stderr) of restic ``args``; ResticError (scrubbed) unless rc is in ``ok``."""
        rc, out, err = self.runner(self.argv(args), self.env, cwd)
        if rc not in ok:
            kind, message = classify(err or '', rc, self.shown, args[0])
            raise ResticError(self.scrub(message), kind)
        return rc, out, err

    def run_json(self, args, cwd=None, allow_empty=False):
        dummy, out, err = self.run(args + ['--json'], cwd=cwd)
        if allow_empty and not (out or '').strip():
            return None
        try:
            return _json_document(out)
        except ValueError:
            raise ResticError(self.scrub('restic %s printed no JSON for repository %s: %s'
                                         % (args[0], self.shown, (out or err or '').strip()[:300])))

    # The operations the module needs.

    def init(self):
        self.run(['init'])

    def snapshots(self, host=None, tags=()):
        """Snapshots (as describe() returns them) with all of ``tags``, of ``host`` if given; oldest first."""
        args = ['snapshots']
        if host:
            args += ['--host', host]
        if tags:
            args += ['--tag', ','.join(tags)]
        found = self.run_json(args)
        if not isinstance(found, list):
            raise ResticError('restic snapshots returned %s, not a list, for repository %s'
                              % (type(found).__name__, self.shown))
        return sorted((describe(s) for s in found), key=lambda s: s['time'] or '')

    def set_snapshots(self, host, backup_id=None):
        tags = [TAG] + (['set=' + encode_value(backup_id)] if backup_id else [])
        return self.snapshots(host, tags)

    def backup(self, root, backup_id, host, tags):
        """Snapshot of ``<root>/<backup_id>`` (taken from inside ``root``); its id."""
        args = ['backup', '--host', host]
        for tag in tags:
            args += ['--tag', tag]
        # rc 3: a snapshot was made but some files could not be read. It is no copy of the set.
        rc, out, err = self.run(args + ['--json', '--', backup_id], cwd=root, ok=(0, 3))
        summary = None
        for line in out.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get('message_type') == 'summary':
                summary = message
        if rc == 3:
            if summary and summary.get('snapshot_id'):
                self.run(['forget', summary['snapshot_id']])
            raise ResticError(self.scrub('restic could not read every file of %s/%s, so no snapshot was kept: %s'
                                         % (root, backup_id, '; '.join(err.strip().splitlines()[-3:]))))
        if not summary or not summary.get('snapshot_id'):
            raise ResticError('restic backup of %s printed no summary for repository %s' % (backup_id, self.shown))
        return summary['snapshot_id']

    def check(self, read_data_subset):
        """Problems restic check finds reading ``read_data_subset`` of the data; [] when none."""
        rc, out, err = self.run(['check', '--read-data-subset=%s' % check_read_data_subset(read_data_subset)],
                                ok=(0, 1))
        if rc == 0:
            return []
        text = (out or '') + '\n' + (err or '')
        if 'repository contains errors' not in text:
            # rc 1 for another reason: wrong password, unreachable, locked.
            kind, message = classify(err or '', rc, self.shown, 'check')
            raise ResticError(self.scrub(message), kind)
        problems = [line.strip() for line in (err or '').splitlines()
                    if line.strip() and 'repository contains errors' not in line]
        return [self.scrub(line) for line in problems[:20]] or ['restic check: the repository contains errors']

    def restore(self, snapshot_id, target, include=None):
        """Restore ``snapshot_id`` (only path ``include`` if given) into ``target``.

        ResticError of kind ERROR_DAMAGED when restic could not read every part of it.
        """
        args = ['restore', snapshot_id, '--target', target]
        if include:
            args += ['--include', include]
        self.run(args)

    def forget(self, host, keep_last, keep_daily, keep_monthly, keep_backup_ids=(), dry_run=False):
        """(kept, removed): snapshots (describe()) of ``host`` that the policy keeps and removes.

        Only snapshots tagged ``micropvr`` of ``host`` are considered, grouped by host alone (each
        set has a path of its own, so restic's default grouping by paths would keep every one).
        Snapshots tagged PROTECTED_TAG or ``set=<id>`` for an id in ``keep_backup_ids`` are always kept.
        """
        args = ['forget', '--host', host, '--tag', TAG, '--group-by', 'host', '--keep-tag', PROTECTED_TAG]
        for backup_id in keep_backup_ids:
            args += ['--keep-tag', 'set=' + encode_value(backup_id)]
        for option, value in (('--keep-last', keep_last), ('--keep-daily', keep_daily),
                              ('--keep-monthly', keep_monthly)):
            if value:
                args += [option, str(value)]
        args += ['--dry-run'] if dry_run else ['--prune']
        # With no snapshot of the host to consider, restic 0.14 prints nothing at all.
        groups = self.run_json(args, allow_empty=True)
        kept, removed = [], []
        for group in groups or []:
            kept.extend(describe(s) for s in group.get('keep') or [])
            removed.extend(describe(s) for s in group.get('remove') or [])
        return kept, removed
