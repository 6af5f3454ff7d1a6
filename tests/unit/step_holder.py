"""Another process inside a step of the host lock (module_utils.state.step), for lock tests.

The process holds the step until it reads a line (then it ends the step normally) or is
killed (then the step stays in the lock, as after a killed run).
"""

import os
import subprocess
import sys
import textwrap

# Where conftest.py links the working tree as a collection.
COLLECTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '.cache', 'collections')

_HOLD_STEP = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[2])
    from ansible_collections.microimpuls.micropvr.plugins.module_utils import state
    with state.step(sys.argv[1], 'run-1', 'install', backup_id='20261126T220000Z'):
        print('in step', flush=True)
        sys.stdin.readline()
''')


def start_step_holder(state_dir):
    """Start the process as run-1 (which must hold the lock); return it once it is in its step."""
    proc = subprocess.Popen([sys.executable, '-c', _HOLD_STEP, str(state_dir), COLLECTIONS],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line != 'in step\n':
        proc.kill()
        raise AssertionError('the step holder did not start its step: %r' % line)
    return proc
