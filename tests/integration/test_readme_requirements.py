"""README's "Requirements" section says what is really tested and really needed: the "Tested
with" line is derived from the pinned ansible-core, this Python and the Debian releases of the
Molecule platforms; the ansible-core range is meta/runtime.yml's; every host tool the modules
look up is listed."""

import glob
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def requirements_section():
    readme = read('README.md')
    match = re.search(r'^## Requirements\n(.*?)^## ', readme, re.M | re.S)
    assert match, 'README.md has no "## Requirements" section'
    return match.group(1)


def pinned_ansible_core():
    (version,) = re.findall(r'^ansible-core==(\S+)\s*$', read('tests', 'requirements-dev.txt'), re.M)
    return version


def molecule_debian_releases():
    """'Debian 12 (bookworm)', ... for every image a Molecule scenario runs, via the flavour
    table of tests/testbed/build-images.sh (flavour NAME SUITE PACKAGE...)."""
    suites = dict(re.findall(r'^flavour\s+(\S+)\s+(\S+)', read('tests', 'testbed', 'build-images.sh'), re.M))
    releases = set()
    for path in glob.glob(os.path.join(ROOT, 'molecule', '*', 'molecule.yml')):
        with open(path) as f:
            platforms = yaml.safe_load(f).get('platforms') or []
        for platform in platforms:
            repo, _, tag = platform['image'].partition(':')
            assert repo == 'micropvr-testbed', '%s: %s is not a test-bed image' % (path, platform['image'])
            assert tag in suites, '%s: no flavour %s in build-images.sh' % (path, tag)
            number = re.match(r'debian(\d+)', tag).group(1)
            releases.add((int(number), suites[tag]))
    assert releases
    return ['Debian %d (%s)' % release for release in sorted(releases)]


def english_list(items):
    return items[0] if len(items) == 1 else '%s and %s' % (', '.join(items[:-1]), items[-1])


def test_tested_with_line():
    expected = ('Tested with: ansible-core %s and Python %d.%d on the controller; %s managed hosts.'
                % (pinned_ansible_core(), sys.version_info[0], sys.version_info[1],
                   english_list(molecule_debian_releases())))
    lines = [line for line in requirements_section().splitlines() if line.startswith('Tested with:')]
    assert lines == [expected], 'README "Tested with" line should read:\n%s' % expected


def test_controller_range_is_runtime_yml():
    requires = yaml.safe_load(read('meta', 'runtime.yml'))['requires_ansible']
    assert 'ansible-core `%s`' % requires in requirements_section(), requires


def test_every_host_tool_the_modules_call_is_listed():
    tools = set()
    for path in glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True):
        with open(path) as f:
            source = f.read()
        tools.update(re.findall(r"get_bin_path\(\s*'([\w.+-]+)'", source))
        # Options that name a binary by its default path (micropvr_health's nginx_binary).
        tools.update(os.path.basename(p) for p in re.findall(r"_binary=dict\([^)]*default='([^']+)'", source))
    assert {'dpkg', 'apt-get', 'pg_dump', 'mysqldump', 'nginx'} <= tools, tools
    section = requirements_section()
    missing = sorted(tool for tool in tools if '`%s`' % tool not in section)
    assert not missing, 'host tools the modules call but README "Requirements" does not list: %s' % missing
