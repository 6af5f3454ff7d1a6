"""Helpers of the disaster suite: three hosts (A is lost, B replaces it, the SFTP repository server),
playbook runs with the secrets kept out of process arguments, restic run on a host, and what
"the same MicroPVR host" means when A's state is compared with B's."""

import json
import os
import re
import subprocess
import sys
import tempfile

from micropvr_testlib import REPO, backup_ids, db_dump, external_rows, installed_version, manifest, packages, rpc, run_module

A = 'micropvr-disaster-a'
B = 'micropvr-disaster-b'
REPO_HOST = 'micropvr-disaster-repo'
REPOSITORY = 'sftp:restic@%s:/srv/restic/micropvr' % REPO_HOST
REPOSITORY_DIR = '/srv/restic/micropvr'
DAMAGED = 'sftp:restic@%s:/srv/restic/damaged' % REPO_HOST
DAMAGED_DIR = '/srv/restic/damaged'
# restic's password on a host, for the suite's own restic commands (0600, written through stdin).
PASSWORD_FILE = '/root/.disaster-tests-restic-password'
_EPHEMERAL = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', tempfile.gettempdir())
# What A was before it was removed, for the comparisons with B (test_30 writes it).
STATE_FILE = os.path.join(_EPHEMERAL, 'disaster-lost-host.json')
# The operator adds the replacement to the micropvr group before recovering onto it.
REPLACEMENT_INVENTORY = os.path.join(_EPHEMERAL, 'disaster-replacement.yml')
CONFIG_PATHS = ('/etc/micropvr/micropvr.conf', '/usr/local/nginx-micropvr/conf/nginx.conf',
                '/etc/init.d/micropvr', '/etc/init.d/micropvs')


def run(name, playbook, *options, **extra_vars):
    """Run one of the collection's playbooks on host ``name``; extra vars through a 0600 file
    (-e @file), never on the command line. Returns the CompletedProcess with ``output`` (stdout
    and stderr) and ``stats`` (the run's set_stats, {} when none)."""
    with open(REPLACEMENT_INVENTORY, 'w') as handle:
        handle.write('micropvr:\n  hosts:\n    %s:\n' % B)
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], '-i', REPLACEMENT_INVENTORY, '--limit', name,
               os.path.join(REPO, 'playbooks', playbook)] + list(options)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_SHOW_CUSTOM_STATS='1')
    with tempfile.TemporaryDirectory() as work:
        if extra_vars:
            path = os.path.join(work, 'extra-vars.json')
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w') as handle:
                json.dump(extra_vars, handle)
            command += ['-e', '@' + path]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
    proc.output = proc.stdout + proc.stderr
    # The default callback prints aggregated set_stats as one line: "\tRUN: {...}".
    match = re.search(r'^\s*RUN: (\{.*\})\s*$', proc.stdout, re.M)
    proc.stats = json.loads(match.group(1)) if match else {}
    return proc


def recap(proc, name):
    """The PLAY RECAP counters of host ``name`` as a dict."""
    match = re.search(r'^%s\s*:\s*(.*)$' % re.escape(name), proc.stdout, re.M)
    assert match, proc.output
    return dict((key, int(value)) for key, value in re.findall(r'(\w+)=(\d+)', match.group(1)))


def vault_password(host):
    """The repository's password from the inventory, decrypted here with the scenario's vault
    password file (the inventory gives the !vault value as it is stored)."""
    from ansible.parsing.vault import VaultLib, VaultSecret
    value = host.ansible.get_variables()['micropvr_offsite_password']
    if isinstance(value, dict) and '__ansible_vault' in value:
        with open(os.environ['ANSIBLE_VAULT_PASSWORD_FILE'], 'rb') as handle:
            secret = VaultSecret(handle.read().strip())
        value = VaultLib([('default', secret)]).decrypt(value['__ansible_vault']).decode()
    return value


def write_password_file(host, password):
    """Put ``password`` in PASSWORD_FILE on ``host`` through stdin (no argument, no log)."""
    subprocess.run(['docker', 'exec', '-i', host.backend.get_hostname(), 'sh', '-c',
                    'umask 077 && cat > %s' % PASSWORD_FILE], input=password, text=True, check=True)


def restic(host, repository, *args):
    """Run restic on ``host`` against ``repository`` (password from PASSWORD_FILE); testinfra result."""
    return host.run('RESTIC_PASSWORD_FILE=%s restic --no-cache -r %s %s' % (PASSWORD_FILE, repository, ' '.join(args)))


def snapshots(host, repository=REPOSITORY):
    """Every snapshot in the repository, oldest first, with the tags decoded."""
    from urllib.parse import unquote
    out = restic(host, repository, 'snapshots', '--json')
    assert out.rc == 0, out.stderr
    found = json.loads(out.stdout) or []
    for snap in found:
        snap['tag_values'] = dict((key, unquote(value)) for key, _, value in
                                  (tag.partition('=') for tag in snap.get('tags') or []) if value)
    return found


def repository_size(repo, directory=REPOSITORY_DIR):
    out = repo.run('du -sb %s' % directory)
    return int(out.stdout.split()[0]) if out.rc == 0 else 0


def config_files(host):
    """owner, group, mode and content digest of every MicroPVR configuration file."""
    out = host.check_output("find /etc/micropvr /usr/local/nginx-micropvr/conf /etc/init.d/micropvr "
                            "/etc/init.d/micropvs -type f ! -name '*.db' ! -name '*.db-*' "
                            "-printf '%p %u %g %m\\n' | sort")
    result = {}
    for line in out.splitlines():
        path, user, group, mode = line.split()
        result[path] = dict(owner=user, group=group, mode=mode,
                            sha256=host.check_output('sha256sum %s' % path).split()[0])
    return result


def set_sqlite_dumps(host, set_dir):
    """.dump of the SQLite copies of a backup set, keyed like micropvr_testlib.db_dump."""
    return dict(('/etc/micropvr/%s' % name, host.check_output('sqlite3 %s/sqlite/%s .dump' % (set_dir, name)))
                for name in ('records.db', 'tasks.db'))


def versions(host):
    return dict((name, installed_version(host, name)) for name in packages(host))


def healthy(host):
    """Both services up, the API alive, micropvs serving HTTP."""
    assert rpc(host, 'is_alive')['is_alive'] is True
    assert host.run("python3 -c 'import urllib.request; "
                    "urllib.request.urlopen(\"http://127.0.0.1:8080/nginx-stats\", timeout=10)'").rc == 0, \
        'micropvs does not serve HTTP'


def micropvr_installed(host):
    """MicroPVR packages installed on ``host`` (dpkg status 'install ok installed')."""
    out = host.run("dpkg-query -W -f '${Package} ${Status}\\n' %s 2>/dev/null" % ' '.join(packages(host)))
    return [line.split()[0] for line in out.stdout.splitlines() if line.endswith('install ok installed')]


def backup_root_entries(host):
    """Everything in the host's backup root (sets and unfinished directories)."""
    return host.run('ls -A /var/backups/micropvr 2>/dev/null').stdout.split()


def load_state():
    with open(STATE_FILE) as handle:
        return json.load(handle)


__all__ = ['A', 'B', 'REPO_HOST', 'REPOSITORY', 'REPOSITORY_DIR', 'DAMAGED', 'DAMAGED_DIR', 'PASSWORD_FILE',
           'STATE_FILE', 'CONFIG_PATHS', 'run', 'recap', 'vault_password', 'write_password_file', 'restic',
           'snapshots', 'repository_size', 'external_rows', 'config_files', 'set_sqlite_dumps', 'versions',
           'healthy', 'micropvr_installed', 'offsite_module', 'backup_root_entries', 'load_state', 'backup_ids', 'db_dump',
           'manifest']


def offsite_module(target, **args):
    """micropvr_offsite ad hoc on ``target``; returns (rc, result). No secret in ``args``: the password by file."""
    return run_module(target, 'micropvr_offsite', **args)
