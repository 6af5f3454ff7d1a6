"""backup_fetch_files, and the backup role's fetch tasks that use it, against a host that lies.

The filter is called directly; then roles/backup/tasks/fetch.yml runs for real (ansible-playbook,
connection local) for an honest host and for hosts whose backup id or file paths point outside the
fetch directory: those fail in the first task, before anything is created or chmodded.
"""

import copy
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.filter import backup_fetch_files as plugin
from ansible_collections.microimpuls.micropvr.plugins.filter.backup_fetch_files import backup_fetch_files

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
ROLE = os.path.join(ROOT, 'roles', 'backup')
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN = os.path.dirname(sys.executable)

BACKUP_ID = '20261126T221500Z'
DIGEST = 'ab' * 32


def entry(path, size=10, sha256=DIGEST, kind='config'):
    return dict(path=path, size=size, sha256=sha256, kind=kind)


def result(*paths, **extra):
    """A micropvr_backup result as the host returns it."""
    backup_set = dict(changed=True, backup_id=BACKUP_ID, backup_path='/var/backups/micropvr/' + BACKUP_ID,
                      manifest=dict(format_version=1, files=[entry(p) for p in paths]), size=100, removed=[])
    backup_set.update(extra)
    return backup_set


def test_registered():
    assert plugin.FilterModule().filters() == {'backup_fetch_files': backup_fetch_files}


def test_the_files_of_an_honest_set_then_the_manifest():
    paths = ['config.tar', 'sqlite/0-records.db', 'sqlite/1-tasks.db', 'debs/micropvr_1.9.0-1_amd64.deb',
             'databases/0-postgresql-micropvr.dump']
    assert backup_fetch_files(result(*paths)) == paths + ['manifest.json']
    assert backup_fetch_files(result(backup_id=BACKUP_ID + '-2')) == ['manifest.json']


@pytest.mark.parametrize('backup_id', ['../evil', '..', '.', '', None, 42, '/etc', 'a/b', '20261126T221500Z/../x',
                                       '20261126T221500Z/', '20261126T221500Z-0', ' 20261126T221500Z',
                                       '20261126T221500Z\n', '20261126t221500z'])
def test_a_bad_backup_id_is_named(backup_id):
    with pytest.raises(AnsibleFilterError) as info:
        backup_fetch_files(result('config.tar', backup_id=backup_id))
    assert str(info.value) == ('backup_fetch_files: the host reported backup id %r, which is not of the form '
                               'YYYYMMDDTHHMMSSZ[-N]; nothing is fetched to the controller' % (backup_id,))


@pytest.mark.parametrize('path, reason', [
    ('../evil', "../evil has a '..' component; it must stay inside the backup set"),
    ('sqlite/../../evil', "sqlite/../../evil has a '..' component; it must stay inside the backup set"),
    ('/etc/passwd', '/etc/passwd is an absolute path; it must be relative to the backup set'),
    ('', "'' is empty"),
    ('./config.tar', "./config.tar has a '.' component"),
    ('sqlite//x.db', 'sqlite//x.db has an empty component'),
    ('sqlite/', 'sqlite/ has an empty component'),
    ('..\\evil', '..\\evil contains a backslash'),
    ('-evil', "-evil starts with '-'"),
    ('a\x00b', "'a\\x00b' contains a NUL character"),
    (42, '42 is not a string'),
])
def test_a_bad_path_is_named(path, reason):
    with pytest.raises(AnsibleFilterError) as info:
        backup_fetch_files(result('config.tar', path))
    assert str(info.value) == ('backup_fetch_files: manifest.files[1].path: %s; nothing is fetched to the controller'
                               % reason)


@pytest.mark.parametrize('change, message', [
    (lambda s: s['manifest']['files'].append(entry('manifest.json')),
     'manifest.files[1].path: manifest.json is the manifest itself, not a file of the set'),
    (lambda s: s['manifest']['files'].append(entry('config.tar')), 'manifest.files[1].path: config.tar is listed twice'),
    (lambda s: s['manifest']['files'].append(entry('config.tar/x')),
     'manifest.files: config.tar is listed both as a file and as a directory of config.tar/x'),
    (lambda s: s['manifest']['files'].append('config.tar'),
     "manifest.files[1] is not a file entry with a path: 'config.tar'"),
    (lambda s: s['manifest']['files'][0].update(size=-1), 'manifest.files[0].size of config.tar is not a size in '
                                                          'bytes: -1'),
    (lambda s: s['manifest']['files'][0].update(size='10'), "manifest.files[0].size of config.tar is not a size in "
                                                            "bytes: '10'"),
    (lambda s: s['manifest']['files'][0].update(size=True), 'manifest.files[0].size of config.tar is not a size in '
                                                            'bytes: True'),
    (lambda s: s['manifest']['files'][0].update(sha256='x'), "manifest.files[0].sha256 of config.tar is not a sha256 "
                                                             "in hex: 'x'"),
    (lambda s: s['manifest']['files'][0].pop('sha256'), 'manifest.files[0].sha256 of config.tar is not a sha256 in '
                                                        'hex: None'),
    (lambda s: s.pop('manifest'), 'the result of micropvr_backup for set %s has no manifest with a files list'
                                  % BACKUP_ID),
    (lambda s: s['manifest'].update(files='config.tar'), 'the result of micropvr_backup for set %s has no manifest '
                                                         'with a files list' % BACKUP_ID),
])
def test_a_manifest_that_is_not_a_list_of_files_is_refused(change, message):
    backup_set = result('config.tar')
    change(backup_set)
    with pytest.raises(AnsibleFilterError) as info:
        backup_fetch_files(backup_set)
    assert str(info.value) == 'backup_fetch_files: %s; nothing is fetched to the controller' % message


@pytest.mark.parametrize('value', ['x', None, ['config.tar'], 42])
def test_not_a_backup_result(value):
    with pytest.raises(AnsibleFilterError, match='^backup_fetch_files: expected the result of micropvr_backup, got '):
        backup_fetch_files(value)


# --- the role's fetch tasks, for real ------------------------------------------------------------

PLAYBOOK = '''
- name: Run the fetch tasks of the backup role
  hosts: all
  gather_facts: false
  tasks:
    - name: Load the backup role's variables
      ansible.builtin.include_vars: "{{ role_dir }}/vars/main.yml"

    - name: Fabricate what micropvr_backup returned on this host
      ansible.builtin.set_fact:
        __backup_set: "{{ sets[inventory_hostname] }}"

    - name: The fetch tasks
      ansible.builtin.include_tasks: "{{ role_dir }}/tasks/fetch.yml"
'''

HOSTS = ('good', 'badid', 'badpath', 'absolute')


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_remote_set(directory, files):
    """A set on the "managed host" (this machine): its files and manifest.json; the manifest's files list."""
    entries = []
    for relpath, data in files:
        full = os.path.join(directory, relpath)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'wb') as handle:
            handle.write(data)
        entries.append(dict(path=relpath, size=len(data), sha256=sha256(data), kind='config'))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'manifest.json'), 'w') as handle:
        json.dump(dict(format_version=1, files=entries), handle)
    return entries


def tree(root, skip=()):
    """{relative path: (type, mode, content or link target)} of everything under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                with open(full, 'rb') as handle:
                    content = handle.read()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(full)
            else:
                content = None
            found[os.path.relpath(full, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), content)
    return found


@pytest.fixture(scope='module')
def fetched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fetch-play')
    fetch_dir = tmp / 'fetch'
    fetch_dir.mkdir(mode=0o700)
    # What an old fetch.yml would have overwritten and chmodded 0700 from the lying hosts.
    outside = tmp / 'outside'
    outside.mkdir(mode=0o755)
    os.chmod(str(outside), 0o755)
    (outside / 'evil').write_bytes(b'the operator\'s file\n')
    os.chmod(str(outside / 'evil'), 0o644)
    remote = tmp / 'remote'

    files = [('config.tar', b'config archive\n'), ('sqlite/0-records.db', b'records\n')]
    good = make_remote_set(str(remote / 'good' / BACKUP_ID), files)
    payload = b'written by the host\n'
    # Old fetch.yml: src <set>/../../../outside/evil is remote/outside/evil; dest
    # <fetch>/<host>/<id>/../../../outside/evil is tmp/outside/evil.
    os.makedirs(str(remote / 'outside'))
    (remote / 'outside' / 'evil').write_bytes(payload)
    make_remote_set(str(remote / 'a' / 'b' / BACKUP_ID), files)
    lie = dict(path='../../../outside/evil', size=len(payload), sha256=sha256(payload), kind='config')

    def backup_set(backup_id, path, entries):
        return dict(changed=True, backup_id=backup_id, backup_path=path, size=100, removed=[],
                    manifest=dict(format_version=1, reason='manual', files=entries))

    sets = dict(
        good=backup_set(BACKUP_ID, str(remote / 'good' / BACKUP_ID), good),
        badid=backup_set('../evil', str(remote / 'good' / BACKUP_ID), good),
        badpath=backup_set(BACKUP_ID, str(remote / 'a' / 'b' / BACKUP_ID), copy.deepcopy(good) + [lie]),
        absolute=backup_set(BACKUP_ID, str(remote / 'good' / BACKUP_ID),
                            copy.deepcopy(good) + [dict(lie, path=str(outside / 'evil'))]),
    )
    (tmp / 'play.yml').write_text(PLAYBOOK)
    (tmp / 'inventory.ini').write_text('\n'.join('%s ansible_connection=local ansible_python_interpreter=%s'
                                                 % (host, sys.executable) for host in HOSTS) + '\n')
    (tmp / 'vars.json').write_text(json.dumps(dict(sets=sets, role_dir=ROLE, micropvr_backup_fetch_dir=str(fetch_dir))))
    skip = (str(tmp / 'ansible-tmp'), str(fetch_dir / 'good'))
    before = tree(str(tmp), skip)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_LOCAL_TEMP=str(tmp / 'ansible-tmp'), ANSIBLE_REMOTE_TMP=str(tmp / 'ansible-tmp' / 'remote'),
               ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_STDOUT_CALLBACK='default')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'inventory.ini', 'play.yml',
                           '-e', '@vars.json'], cwd=str(tmp), env=env, capture_output=True, text=True)
    return dict(proc=proc, tmp=tmp, fetch_dir=fetch_dir, outside=outside, before=before, after=tree(str(tmp), skip),
                good=good, payload=payload)


def failure_of(output, host):
    """(task name, message) of the task in which ``host`` failed."""
    for chunk in output.split('\nTASK [')[1:]:
        for line in chunk.splitlines():
            if line.startswith('fatal: [%s]: FAILED! => ' % host):
                return chunk.split(']', 1)[0], json.loads(line.split(' => ', 1)[1])['msg']
    raise AssertionError('%s did not fail:\n%s' % (host, output))


def test_the_honest_host_is_fetched_and_verified(fetched):
    proc = fetched['proc']
    assert 'good                       : ok=' in proc.stdout and 'failed=0' in proc.stdout.split('good ', 2)[-1]
    target = fetched['fetch_dir'] / 'good' / BACKUP_ID
    assert 'Backup set %s copied to %s and verified there.' % (BACKUP_ID, target) in proc.stdout
    assert (target / 'config.tar').read_bytes() == b'config archive\n'
    assert (target / 'sqlite' / '0-records.db').read_bytes() == b'records\n'
    assert json.loads((target / 'manifest.json').read_text())['files'] == fetched['good']
    for path in ('config.tar', 'sqlite/0-records.db', 'manifest.json'):
        assert stat.S_IMODE(os.stat(str(target / path)).st_mode) == 0o600
    for path in (target, target / 'sqlite'):
        assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o700


@pytest.mark.parametrize('host, message', [
    ('badid', "backup_fetch_files: the host reported backup id '../evil', which is not of the form "
              "YYYYMMDDTHHMMSSZ[-N]; nothing is fetched to the controller"),
    ('badpath', "backup_fetch_files: manifest.files[2].path: ../../../outside/evil has a '..' component; it must "
                "stay inside the backup set; nothing is fetched to the controller"),
    ('absolute', "backup_fetch_files: manifest.files[2].path: %s is an absolute path; it must be relative to the "
                 "backup set; nothing is fetched to the controller"),
])
def test_a_lying_host_fails_in_the_first_task_naming_what_it_said(fetched, host, message):
    proc = fetched['proc']
    assert proc.returncode != 0
    task, msg = failure_of(proc.stdout, host)
    assert task == 'Check the backup id and file paths the host reported'
    assert (message % (fetched['outside'] / 'evil') if '%s' in message else message) in msg
    assert not (fetched['fetch_dir'] / host).exists()


def test_nothing_outside_the_honest_hosts_set_was_created_changed_or_chmodded(fetched):
    assert fetched['after'] == fetched['before']
    assert stat.S_IMODE(os.stat(str(fetched['outside'])).st_mode) == 0o755
    assert (fetched['outside'] / 'evil').read_bytes() == b'the operator\'s file\n'
    assert sorted(os.listdir(str(fetched['fetch_dir']))) == ['good']
