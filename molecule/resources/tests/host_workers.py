"""One pytest-xdist worker per test host.

A scenario whose tests are independent per host runs them with ``-n <hosts>``: every test of
one host goes to the same worker, in file order, so its module fixtures (a reset, an update run
once and then inspected) run once per host, while the hosts proceed side by side. Scenario
conftests import the hook below to enable it.

xdist's own ``--dist loadgroup`` cannot do this with pytest 9: it renames test ids through an
attribute that pytest 9 no longer reads. The scheduler below groups by the host part of each
test id instead (testinfra puts it first inside the brackets: ``test_x[ansible://host-param]``).
"""

import testinfra
from xdist.scheduler import LoadScopeScheduling


class HostScheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose scope is the test host."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        option = config.option
        # As testinfra's own parametrization does: no --hosts (Molecule passes none) means every
        # host of the inventory.
        hosts = testinfra.get_hosts(option.hosts.split(',') if option.hosts else [None], connection=option.connection,
                                    ansible_inventory=option.ansible_inventory, force_ansible=option.force_ansible)
        # Longest first: a host whose name extends another's must not be taken for it.
        self.host_ids = sorted((h.backend.get_pytest_id() for h in hosts), key=len, reverse=True)

    def _split_scope(self, nodeid):
        params = nodeid[nodeid.find('[') + 1:] if '[' in nodeid else ''
        for host_id in self.host_ids:
            if params.startswith(host_id + '-') or params.startswith(host_id + ']'):
                return host_id
        return nodeid


def pytest_xdist_make_scheduler(config, log):
    return HostScheduling(config, log)
