import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'resources', 'tests'))

from host_workers import pytest_xdist_make_scheduler  # noqa: E402,F401  (the hosts side by side)
