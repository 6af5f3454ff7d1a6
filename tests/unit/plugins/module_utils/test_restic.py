"""Unit tests for plugins/module_utils/restic.py: the pure parts (URLs, tags, error mapping) and how
restic is called (a recording runner stands in for the binary; the real one is used by
tests/unit/plugins/modules/test_offsite_module.py)."""

import os
import stat

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils import restic
from ansible_collections.microimpuls.micropvr.plugins.module_utils.restic import ResticError

SECRET = 'correct horse battery staple'


@pytest.mark.parametrize('url, kind', [
    ('/srv/restic/micropvr', 'local'),
    ('sftp:backup@vault.example.net:/srv/restic', 'sftp'),
    ('sftp:vault:restic', 'sftp'),
    ('sftp://backup@vault.example.net:2222//srv/restic', 'sftp'),
    ('s3:s3.amazonaws.com/bucket', 's3'),
    ('s3:https://minio.example.net:9000/bucket/prefix', 's3'),
    ('rest:https://vault.example.net:8000/', 'rest'),
    ('rest:http://user:pw@vault.example.net:8000/micropvr', 'rest'),
])
def test_repository_kinds(url, kind):
    assert restic.repository_kind(url) == kind


@pytest.mark.parametrize('url, words', [
    ('', 'not set'),
    ('relative/path', 'not an absolute local path'),
    ('/', "not /"),
    ('/srv/../etc', "'..'"),
    ('/srv/restic\n', 'control character'),
    ('sftp:host', 'sftp:[user@]host:/path'),
    ('sftp::/path', 'sftp:[user@]host:/path'),
    ('sftp:-oProxyCommand=x:/path', 'sftp:[user@]host:/path'),
    ('s3:bucket-only', 's3:[https://]host/bucket'),
    ('s3:https://host', 's3:[https://]host/bucket'),
    ('rest:ftp://host/', 'rest:http(s)://'),
    ('rest:', 'rest:http(s)://'),
    ('b2:bucket:path', 'the b2 backend is not supported'),
])
def test_bad_repositories_are_refused_naming_the_form(url, words):
    with pytest.raises(ResticError) as excinfo:
        restic.repository_kind(url)
    assert words in str(excinfo.value)


def test_a_bad_rest_url_is_refused_without_its_password():
    with pytest.raises(ResticError) as excinfo:
        restic.repository_kind('rest:ftp://user:%s@host/' % SECRET)
    assert SECRET not in str(excinfo.value)
    assert 'user:***@host' in str(excinfo.value)


def test_redact_masks_the_password_of_every_url_and_keeps_the_rest():
    text = 'Head "http://u:p4ss@host:8000/config": refused; rest:https://v:x@y/ and sftp:a@b:/c'
    assert restic.redact(text) == 'Head "http://u:***@host:8000/config": refused; rest:https://v:***@y/ and sftp:a@b:/c'
    assert restic.url_password('rest:https://user:p%40ss@host/') == 'p%40ss'
    assert restic.url_password('rest:https://host/') is None
    assert restic.url_password('sftp:user@host:/x') is None


def test_tags_carry_every_value_without_a_comma_and_read_back():
    versions = {'micropvr': '1:1.9.0-1+deb12u1~bpo', 'micropvs': None, 'odd,name=x;y': '2.0 beta%'}
    tags = restic.set_tags('pvr1.example.net', '20261126T221500Z', 'pre-update to 1.10.0-1, forced=yes; 100%',
                           versions)
    assert all(',' not in tag and ' ' not in tag for tag in tags), tags
    assert tags[:3] == ['micropvr', 'host=pvr1.example.net', 'set=20261126T221500Z']
    assert 'versions=micropvr=1:1.9.0-1+deb12u1~bpo;micropvs=;odd%2Cname%3Dx%3By=2.0%20beta%25' in tags
    info = restic.parse_tags(tags + [restic.PROTECTED_TAG])
    assert info == dict(backup_id='20261126T221500Z', host='pvr1.example.net',
                        reason='pre-update to 1.10.0-1, forced=yes; 100%', versions=versions, protected=True)


def test_foreign_and_missing_tags_read_as_nothing():
    assert restic.parse_tags(None) == dict(backup_id=None, host=None, reason=None, versions={}, protected=False)
    assert restic.parse_tags(['daily', 'other=1'])['backup_id'] is None


LOCKED = ('unable to create lock in backend: repository is already locked exclusively by PID 32208 on vm by root '
          '(UID 0, GID 0)\nlock was created at 2026-12-01 11:30:55 (928.04708ms ago)\nstorage ID c12c35b3\n'
          'the `unlock` command can be used to remove stale locks\n')


@pytest.mark.parametrize('stderr, kind, message', [
    ('Fatal: wrong password or no key found\n', 'password', 'wrong restic password for repository REPO'),
    ('Fatal: unable to open config file: stat /x/config: no such file or directory\n'
     'Is there a repository at the following location?\n/x\n', 'missing',
     'there is no restic repository at REPO (unable to open config file: stat /x/config: no such file or directory); '
     'check the URL, or create it with init'),
    ('subprocess ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused\nFatal: unable to open repository '
     'at sftp:nobody@127.0.0.1:/x: unable to start the sftp session, error: read |0: file already closed\n',
     'unreachable', 'restic repository REPO is unreachable: unable to open repository at sftp:nobody@127.0.0.1:/x: '
     'unable to start the sftp session, error: read |0: file already closed'),
    ('Fatal: unable to open config file: client.Head: Head "http://u:***@127.0.0.1:1/config": dial tcp '
     '127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n', 'unreachable',
     'restic repository REPO is unreachable: unable to open config file: client.Head: Head '
     '"http://u:***@127.0.0.1:1/config": dial tcp 127.0.0.1:1: connect: connection refused'),
    (LOCKED, 'locked', 'restic repository REPO is locked by another restic process (locked exclusively by PID 32208 '
     'on vm by root); wait for it to end, or run "restic unlock" if that process is gone'),
    ('ignoring error for /20261101T000000Z/sub/data: ciphertext verification failed\nFatal: There were 2 errors\n',
     'damaged', 'restic restore could not read 2 part(s) of the snapshot from repository REPO: '
     '/20261101T000000Z/sub/data: ciphertext verification failed'),
    ('Fatal: something new\n', 'other', 'restic restore failed (rc 1) on repository REPO: something new'),
    ('', 'other', 'restic restore failed (rc 1) on repository REPO: no message'),
])
def test_errors_are_mapped_to_what_the_operator_must_do(stderr, kind, message):
    assert restic.classify(stderr, 1, 'REPO', 'restore') == (kind, message)


def test_backend_env_refuses_what_the_collection_sets_and_bad_names():
    assert restic.check_backend_env({'AWS_ACCESS_KEY_ID': 'k', 'PORT': 9000, 'FLAG': True}) == {
        'AWS_ACCESS_KEY_ID': 'k', 'PORT': '9000', 'FLAG': 'true'}
    for env, words in (({'RESTIC_PASSWORD': 'x'}, 'set by the collection'),
                       ({'restic_repository': 'x'}, 'set by the collection'),
                       ({'BAD-NAME': 'x'}, 'not an environment variable name'),
                       ({'A': None}, 'must be a string'),
                       ({'A': 'x\x00y'}, 'NUL'),
                       (['A=1'], 'mapping')):
        with pytest.raises(ResticError) as excinfo:
            restic.check_backend_env(env)
        assert words in str(excinfo.value)


@pytest.mark.parametrize('value, good', [
    ('10%', True), ('100%', True), ('2.5%', True), ('1/10', True), ('500M', True),
    ('0%', False), ('101%', False), ('0/5', False), ('10', False), ('1/10,', False), ('-1%', False), ('5X', False),
])
def test_read_data_subset_forms(value, good):
    if good:
        assert restic.check_read_data_subset(value) == value
    else:
        with pytest.raises(ResticError, match='read_data_subset'):
            restic.check_read_data_subset(value)


class Recorder(object):
    """Stands in for module.run_command: records each call, checks the password file while it exists."""

    def __init__(self, results):
        self.results = list(results)
        self.calls = []

    def __call__(self, argv, env, cwd):
        path = env['RESTIC_PASSWORD_FILE']
        st = os.stat(path)
        with open(path) as handle:
            content = handle.read()
        self.calls.append(dict(argv=list(argv), env=dict(env), cwd=cwd, mode=stat.S_IMODE(st.st_mode), content=content))
        return self.results.pop(0)


def test_secrets_go_through_a_private_file_and_the_environment_never_argv(tmp_path):
    runner = Recorder([(0, '[]\n', '')])
    repo = restic.Restic(runner, '/usr/bin/restic', 'rest:https://user:%s@vault:8000/' % 'urlsecret', str(tmp_path),
                         password=SECRET, backend_env={'AWS_SECRET_ACCESS_KEY': 'envsecret'}, cache_dir='/c')
    assert repo.snapshots(host='pvr1', tags=['micropvr', 'set=20261126T221500Z']) == []
    call = runner.calls[0]
    assert call['argv'] == ['/usr/bin/restic', 'snapshots', '--host', 'pvr1', '--tag', 'micropvr,set=20261126T221500Z',
                            '--json']
    assert not any(secret in word for word in call['argv'] for secret in (SECRET, 'urlsecret', 'envsecret'))
    assert call['mode'] == 0o600 and call['content'] == SECRET + '\n'
    assert os.path.dirname(call['env']['RESTIC_PASSWORD_FILE']) == str(tmp_path)
    assert call['env']['RESTIC_REPOSITORY'] == 'rest:https://user:urlsecret@vault:8000/'
    assert call['env']['AWS_SECRET_ACCESS_KEY'] == 'envsecret'
    assert call['env']['RESTIC_CACHE_DIR'] == '/c'
    # Whatever the calling environment holds cannot win over the file.
    assert call['env']['RESTIC_PASSWORD'] == '' and call['env']['RESTIC_PASSWORD_COMMAND'] == ''


def test_error_messages_never_carry_a_secret(tmp_path):
    stderr = 'Fatal: weird failure with %s and envsecret at http://user:urlsecret@vault:8000/config\n' % SECRET
    runner = Recorder([(1, '', stderr)])
    repo = restic.Restic(runner, 'restic', 'rest:https://user:urlsecret@vault:8000/', str(tmp_path), password=SECRET,
                         backend_env={'AWS_SECRET_ACCESS_KEY': 'envsecret'})
    with pytest.raises(ResticError) as excinfo:
        repo.init()
    message = str(excinfo.value)
    assert excinfo.value.kind == 'other'
    assert message == ('restic init failed (rc 1) on repository rest:https://user:***@vault:8000/: weird failure with '
                       '*** and *** at http://user:***@vault:8000/config')


@pytest.mark.parametrize('password, words', [
    ('', 'is empty'), (' lead', 'blanks'), ('trail\n', 'blanks'), ('a\x00b', 'NUL'),
])
def test_passwords_restic_would_read_back_differently_are_refused(tmp_path, password, words):
    with pytest.raises(ResticError) as excinfo:
        restic.Restic(Recorder([]), 'restic', '/srv/r', str(tmp_path), password=password)
    assert words in str(excinfo.value)
    assert os.listdir(str(tmp_path)) == []


def test_a_password_file_must_be_private(tmp_path):
    path = tmp_path / 'pw'
    path.write_text(SECRET + '\n')
    path.chmod(0o644)
    with pytest.raises(ResticError, match='mode 0600 or 0400'):
        restic.Restic(Recorder([]), 'restic', '/srv/r', str(tmp_path), password_file=str(path))
    path.chmod(0o600)
    runner = Recorder([(0, '', '')])
    restic.Restic(runner, 'restic', '/srv/r', str(tmp_path), password_file=str(path)).init()
    assert runner.calls[0]['env']['RESTIC_PASSWORD_FILE'] == str(path)
    with pytest.raises(ResticError, match='a restic password is needed'):
        restic.Restic(Recorder([]), 'restic', '/srv/r', str(tmp_path))


def test_a_backup_restic_could_not_read_fully_is_forgotten(tmp_path):
    summary = '{"message_type":"summary","snapshot_id":"abcdef12"}\n'
    runner = Recorder([(3, summary, 'error: open 2026/x: permission denied\n'), (0, '', '')])
    repo = restic.Restic(runner, 'restic', '/srv/r', str(tmp_path), password=SECRET)
    with pytest.raises(ResticError, match='could not read every file'):
        repo.backup('/b', '20261126T221500Z', 'pvr1', ['micropvr'])
    assert runner.calls[0]['cwd'] == '/b'
    assert runner.calls[0]['argv'][-2:] == ['--', '20261126T221500Z']
    assert runner.calls[1]['argv'] == ['restic', 'forget', 'abcdef12']


def test_forget_groups_by_host_and_keeps_the_protected_set(tmp_path):
    runner = Recorder([(0, '[{"keep": [], "remove": []}]\n', '')])
    repo = restic.Restic(runner, 'restic', '/srv/r', str(tmp_path), password=SECRET)
    assert repo.forget('pvr1', 3, 0, 12, keep_backup_ids=['20261126T221500Z'], dry_run=True) == ([], [])
    assert runner.calls[0]['argv'] == [
        'restic', 'forget', '--host', 'pvr1', '--tag', 'micropvr', '--group-by', 'host', '--keep-tag',
        'micropvr-protected', '--keep-tag', 'set=20261126T221500Z', '--keep-last', '3', '--keep-monthly', '12',
        '--dry-run', '--json']
