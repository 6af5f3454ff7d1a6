#!/usr/bin/env python3
"""Where the controller's time goes in one ansible-playbook run: cProfile of the main process
and of every worker Ansible forks for a task, and a summary of the parts that matter here.

    PROFILE_DIR=/tmp/prof .venv/bin/python benchmarks/profile_playbook.py \\
        -i INVENTORY --limit HOST microimpuls.micropvr.rollback
    .venv/bin/python benchmarks/profile_playbook.py --report /tmp/prof

Everything after the script name goes to ansible-playbook unchanged. The workers are where a
task is templated, its module payload (AnsiballZ) built and the host waited on; the main
process mostly sleeps between results. The report prints, summed over the workers: waiting
for the host, building module payloads (once per distinct module per run: Ansible caches the
payload only for the run), templating and validating task arguments, and the rest; then the
functions with the most cumulative time. CPU the profiler cannot see (fork, copy-on-write
faults, the docker CLI of the test bed's connection) is not in these figures.
"""

import cProfile
import glob
import os
import pstats
import sys

# (label, file suffix, function name) of the parts the summary adds up; cumulative times.
PARTS = [
    ('waiting for the host', 'subprocess.py', '_communicate'),
    ('building module payloads', 'module_common.py', 'recursive_finder'),
    ('templating and validating task arguments', 'task.py', 'post_validate'),
]


def report(directory, top=25):
    files = sorted(glob.glob(os.path.join(directory, 'w-*.prof')))
    if not files:
        sys.exit('no worker profiles in %s' % directory)
    stats = pstats.Stats(files[0], stream=sys.stdout)
    for path in files[1:]:
        stats.add(path)
    total = sum(entry[3] for key, entry in stats.stats.items() if key[2] == '_run' and key[0].endswith('worker.py'))
    print('%d workers (tasks), %.2f s in them' % (len(files), total))
    for label, suffix, function in PARTS:
        found = [(entry[0], entry[3]) for key, entry in stats.stats.items()
                 if key[0].endswith(suffix) and key[2] == function]
        calls = sum(count for count, dummy in found)
        seconds = sum(cumulative for dummy, cumulative in found)
        print('  %-42s %6.2f s  %3d calls' % (label, seconds, calls))
    stats.sort_stats('cumulative').print_stats(top)


def profile(directory, argv):
    from ansible.executor.process import worker

    run = worker.WorkerProcess._run

    def profiled_run(self):
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return run(self)
        finally:
            profiler.disable()
            profiler.dump_stats(os.path.join(directory, 'w-%d.prof' % os.getpid()))

    worker.WorkerProcess._run = profiled_run
    from ansible.cli.playbook import main

    sys.argv = ['ansible-playbook'] + argv
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        main()
    finally:
        profiler.disable()
        profiler.dump_stats(os.path.join(directory, 'main.prof'))


if __name__ == '__main__':
    if sys.argv[1:2] == ['--report'] and len(sys.argv) == 3:
        report(sys.argv[2])
    elif sys.argv[1:2] in ([], ['-h'], ['--help']):
        print(__doc__)
    else:
        target = os.environ.get('PROFILE_DIR')
        if not target:
            sys.exit('set PROFILE_DIR to an empty directory for the profiles')
        os.makedirs(target, exist_ok=True)
        profile(target, sys.argv[1:])
