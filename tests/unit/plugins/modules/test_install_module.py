"""micropvr_install: which dpkg states are an unfinished package operation."""

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import parse_dpkg_query
from ansible_collections.microimpuls.micropvr.plugins.modules.micropvr_install import unfinished_packages


def installed(*lines):
    return parse_dpkg_query(''.join('%s\t1.10.0-1\tamd64\t100\t%s\n' % line for line in lines))


@pytest.mark.parametrize('status', ['install ok half-configured', 'install reinstreq half-installed',
                                    'install ok unpacked', 'install ok triggers-pending'])
def test_interrupted_states_are_unfinished(status):
    packages = installed(('micropvr', status), ('micropvs', 'install ok installed'))
    assert unfinished_packages(packages) == {'micropvr': status.split()[-1]}


@pytest.mark.parametrize('status', ['install ok installed', 'deinstall ok config-files', 'unknown ok not-installed'])
def test_installed_or_absent_packages_are_not_unfinished(status):
    assert unfinished_packages(installed(('micropvr', status))) == {}
