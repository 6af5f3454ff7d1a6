import os
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'resources', 'tests'))
sys.path.insert(0, os.path.dirname(__file__))

from disasterlib import A, B, REPO_HOST  # noqa: E402


# The suite works on three hosts at once and one of them is removed half-way, so the tests take
# these fixtures instead of testinfra's per-host parametrized `host`.
def _host(name):
    return testinfra.get_host('ansible://%s' % name, ansible_inventory=os.environ['MOLECULE_INVENTORY_FILE'])


@pytest.fixture(scope='session')
def host_a():
    return _host(A)


@pytest.fixture(scope='session')
def host_b():
    return _host(B)


@pytest.fixture(scope='session')
def repo():
    return _host(REPO_HOST)
