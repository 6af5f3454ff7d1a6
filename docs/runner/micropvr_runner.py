# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a microimpuls.micropvr playbook with ansible_runner.run() and read what it returns.

    python micropvr_runner.py -i inventory.yml microimpuls.micropvr.backup
    python micropvr_runner.py -i inventory.yml microimpuls.micropvr.update -e '{"micropvr_version": "1.10.0-1"}'

prints one JSON document: the run's status and rc, the per-host stats, and the collection's
set_stats artifacts (micropvr_backup_sets, micropvr_rollout, micropvr_update,
micropvr_rollback). Import run_playbook() to do the same from your own tool.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import ansible_runner

# The custom stats the collection's playbooks publish with ansible.builtin.set_stats.
ARTIFACTS = ('micropvr_backup_sets', 'micropvr_rollout', 'micropvr_update', 'micropvr_rollback')


def summarize(runner):
    """Status, rc, stats and the collection's artifacts of a finished ansible_runner.Runner."""
    events = list(runner.events)
    stats_events = [event for event in events if event.get('event') == 'playbook_on_stats']
    # The custom stats travel in the final stats event (AWX stores the same data as the job's artifacts).
    custom = (stats_events[-1]['event_data'].get('artifact_data') or {}) if stats_events else {}
    return {
        'status': runner.status,
        'rc': runner.rc,
        'stats': runner.stats,
        'artifacts': dict((name, custom[name]) for name in ARTIFACTS if name in custom),
        'events': events,
    }


def run_playbook(playbook, inventory, extravars=None, private_data_dir=None, envvars=None, limit=None, quiet=True):
    """Run a playbook of the collection by its FQCN (e.g. microimpuls.micropvr.backup).

    inventory is a path or inline inventory text. extravars are written by ansible-runner to
    <private_data_dir>/env/extravars, so secrets (micropvr_seal_key) belong in a private
    directory: without one a fresh 0700 temporary directory is used and removed afterwards.
    """
    keep = private_data_dir is not None
    private_data_dir = private_data_dir or tempfile.mkdtemp(prefix='micropvr-runner-')
    env = dict(envvars or {})
    # ansible-playbook must be found next to the Python that runs this (a virtualenv), and the
    # collection through the usual ANSIBLE_COLLECTIONS_PATH of the caller.
    env.setdefault('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    for name, value in os.environ.items():
        if name.startswith('ANSIBLE_'):
            env.setdefault(name, value)
    try:
        runner = ansible_runner.run(private_data_dir=private_data_dir, playbook=playbook, inventory=inventory,
                                    extravars=extravars or {}, envvars=env, limit=limit, quiet=quiet)
        return summarize(runner)
    finally:
        if not keep:
            shutil.rmtree(private_data_dir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('playbook', nargs='?', default='microimpuls.micropvr.backup',
                        help='playbook FQCN (default: %(default)s)')
    parser.add_argument('-i', '--inventory', required=True, help='inventory file or directory')
    parser.add_argument('-e', '--extra-vars', default='{}', help='extra vars as a JSON object')
    parser.add_argument('-l', '--limit', default=None, help='host pattern')
    parser.add_argument('--private-data-dir', default=None,
                        help="ansible-runner's directory, kept afterwards (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    try:
        extravars = json.loads(args.extra_vars)
    except ValueError as error:
        parser.error('--extra-vars is not JSON: %s' % error)
    if not isinstance(extravars, dict):
        parser.error('--extra-vars must be a JSON object, not %s' % type(extravars).__name__)
    result = run_playbook(args.playbook, os.path.abspath(args.inventory), extravars=extravars,
                          private_data_dir=args.private_data_dir, limit=args.limit)
    result.pop('events')
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0 if result['status'] == 'successful' else 1


if __name__ == '__main__':
    sys.exit(main())
