"""Helpers for the testinfra suites: talk to a test host's MicroPVR the way an operator would."""

import json
import os
import re
import subprocess
import sys

# Runs inside the test host: one JSON-RPC 2.0 request over raw TCP, reply printed as JSON.
_RPC_CLIENT = r'''
import json, socket, sys
method, params, port = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        reply += chunk
print(reply.decode())
'''


class RPCError(Exception):
    pass


# --- what the host runs: the stand-in variant and the public variables of its inventory -------
# A scenario may make one platform differ (molecule.yml provisioner.inventory.host_vars):
# standin_variant (default | strict, see tests/standin/README.md), micropvr_version,
# micropvr_packages, micropvr_rpc_port, micropvr_backup_root. Tests ask these helpers instead of
# hard-coding the defaults, so they assert the same things on every platform.
DEFAULT_PACKAGES = ('micropvr', 'micropvs')
DEFAULT_RPC_PORT = 4089
_PROFILES = {}


def host_profile(host):
    """The host's stand-in variant and public variables, with the collection's defaults filled in.

    Keys: variant, epoch ('1:' or ''), packages (tuple), services (tuple), rpc_port (int),
    backup_root, baseline (the version prepare installs), target (micropvr_version),
    bad (the bad release 1.10.1).
    """
    name = host.backend.get_hostname()
    if name not in _PROFILES:
        variables = host.ansible.get_variables()
        variant = variables.get('standin_variant', 'default')
        epoch = '1:' if variant == 'strict' else ''
        _PROFILES[name] = dict(
            variant=variant,
            epoch=epoch,
            packages=tuple(variables.get('micropvr_packages', DEFAULT_PACKAGES)),
            services=tuple(variables.get('micropvr_services', DEFAULT_PACKAGES)),
            rpc_port=int(variables.get('micropvr_rpc_port', DEFAULT_RPC_PORT)),
            backup_root=variables.get('micropvr_backup_root', BACKUP_ROOT),
            baseline=epoch + '1.9.0-1',
            target=variables.get('micropvr_version', epoch + '1.10.0-1'),
            bad=epoch + '1.10.1-1',
        )
    return _PROFILES[name]


def deb_version(host, upstream):
    """The Debian version of stand-in release ``upstream`` (e.g. '1.10.0') on this host's variant."""
    return '%s%s-1' % (host_profile(host)['epoch'], upstream)


def upstream_version(version):
    """'1:1.10.0-1' -> '1.10.0' (what the daemon's get_version reports)."""
    return version.split(':', 1)[-1].rsplit('-', 1)[0]


def baseline(host):
    return host_profile(host)['baseline']


def target(host):
    return host_profile(host)['target']


def packages(host):
    return host_profile(host)['packages']


def backup_root(host):
    return host_profile(host)['backup_root']


def rpc_port(host):
    return host_profile(host)['rpc_port']


def module_args(host, *options):
    """Module options that the playbooks take from the public variables, for ad hoc module runs
    (run_module), e.g. module_args(host, 'packages', 'backup_root'); only non-default values."""
    profile = host_profile(host)
    values = dict(packages=list(profile['packages']), backup_root=profile['backup_root'],
                  rpc_port=profile['rpc_port'])
    defaults = dict(packages=list(DEFAULT_PACKAGES), backup_root=BACKUP_ROOT, rpc_port=DEFAULT_RPC_PORT)
    return dict((o, values[o]) for o in options if values[o] != defaults[o])


def rpc(host, method, port=None, **params):
    """Call a JSON-RPC method of the micropvr daemon on ``host``; return its result."""
    if port is None:
        port = rpc_port(host)
    cmd = host.run('python3 -c %s %s %s %s', _RPC_CLIENT, method, json.dumps(params), str(port))
    if cmd.rc != 0:
        raise RPCError('%s: rc=%d %s' % (method, cmd.rc, cmd.stderr))
    reply = json.loads(cmd.stdout)
    if 'error' in reply:
        raise RPCError('%s: %s' % (method, reply['error']))
    return reply['result']


def user_version(host, path):
    """PRAGMA user_version of an SQLite database on ``host``."""
    return int(host.check_output('sqlite3 %s "PRAGMA user_version"', path))


def table_rows(host, path, table):
    """All rows of ``table`` as a list of dicts, ordered by id."""
    out = host.check_output('sqlite3 -json %s %s', path, 'SELECT * FROM %s ORDER BY id' % table)
    return json.loads(out) if out.strip() else []


def service_status(host, name):
    """Exit code of ``/etc/init.d/<name> status`` (LSB: 0 running, 3 stopped)."""
    return host.run('/etc/init.d/%s status' % name).rc


def apt_install(host, *specs, extra=''):
    """apt-get install keeping the operator's conffile edits; returns the testinfra result."""
    return host.run('DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
                    '-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold %s %s'
                    % (extra, ' '.join(specs)))


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
BACKUP_ROOT = '/var/backups/micropvr'


def playbook_command(host, playbook, *options, **extra_vars):
    """(argv, environment) that run one of the collection's playbooks against ``host`` alone."""
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], '--limit', host.backend.get_hostname(),
               os.path.join(REPO, 'playbooks', playbook)] + list(options)
    if extra_vars:
        command += ['-e', json.dumps(extra_vars)]
    return command, dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')


def run_playbook(host, playbook, *options, **extra_vars):
    """Run one of the collection's playbooks against ``host`` as an operator would.

    Returns the CompletedProcess; its ``output`` attribute holds stdout and stderr together.
    """
    command, env = playbook_command(host, playbook, *options, **extra_vars)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
    proc.output = proc.stdout + proc.stderr
    return proc


def backup_ids(host, root=None):
    """Ids of the complete backup sets under ``root`` (default: the host's backup root), oldest first."""
    out = host.check_output('ls -1 %s 2>/dev/null || true' % (root or backup_root(host)))
    return sorted(name for name in out.split() if re.match(r'^\d{8}T\d{6}Z(-\d+)?$', name))


def manifest(host, backup_id, root=None):
    return json.loads(host.file('%s/%s/manifest.json' % (root or backup_root(host), backup_id)).content_string)


def run_module(target, module, *options, **args):
    """Run one of the collection's modules on the test host ``target`` (ad hoc); return (rc, result dict).

    ``options`` are extra ansible options, e.g. '--check'; ``args`` the module's own (``host``
    among them, for micropvr_offsite).
    """
    hostname = target.backend.get_hostname()
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible'),
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], hostname, '--become'] + list(options) + \
              ['-m', 'microimpuls.micropvr.%s' % module, '-a', json.dumps(args)]
    # Molecule forces colour on; the result line must start with the host name.
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal')
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    # minimal callback: "<host> | STATUS => {json}"; ansible-core 2.19 prints an [ERROR]
    # block holding a Python dict before it when the module fails.
    match = re.search(r'^%s \| [A-Z!]+ => (\{.*)' % re.escape(hostname), proc.stdout, re.M | re.S)
    assert match, 'no module result in the output of %s:\n%s\n%s' % (command, proc.stdout, proc.stderr)
    return proc.returncode, json.JSONDecoder().raw_decode(match.group(1))[0]


def flip_byte(host, path, offset):
    """Invert one byte of a file on ``host`` (to damage a backup set)."""
    host.check_output("python3 -c 'import sys; f = open(sys.argv[1], \"r+b\"); f.seek(int(sys.argv[2])); "
                      "b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' %s %s"
                      % (path, offset))


DATABASES = ('/etc/micropvr/records.db', '/etc/micropvr/tasks.db')


def db_dump(host):
    """Schema and every row of every MicroPVR SQLite database, for exact comparisons."""
    return dict((path, host.check_output('sqlite3 %s .dump' % path)) for path in DATABASES)


def installed_version(host, package):
    return host.check_output("dpkg-query -W -f '${Version}' %s" % package)


def create_tasks(host, count, channel=20):
    """Write ``count`` tasks (and their records) through the daemon's API."""
    return [rpc(host, 'create_new_task', channel_id=channel + n % 3, name='fixture %d' % n,
                start_time='2024-07-0%d 21:00:00' % (1 + n % 9), duration=30 + n)['task_id'] for n in range(count)]


def external_rows(host):
    """The subscribers table of the PostgreSQL and the MariaDB middleware databases, row by row."""
    return dict(
        postgresql=host.check_output("su postgres -c \"psql --no-psqlrc -At -d middleware "
                                     "-c 'SELECT id, login, tariff FROM subscribers ORDER BY id'\""),
        mysql=host.check_output("mysql --batch --skip-column-names "
                                "-e 'SELECT id, login, tariff FROM middleware.subscribers ORDER BY id'"))
