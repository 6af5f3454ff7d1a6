"""Property-based tests (Hypothesis) of what a backup set can make a restore do (issue 13).

(a) Manifests: a valid, sealed manifest with random mutations (any field replaced by a random
    JSON value of any type, by path strings with '..', '/', NUL, control characters, unicode and
    very long names; fields deleted or added; list items duplicated). ``confine.manifest_problems``,
    ``confine.shape_problems``, ``backupset.summarize`` and ``backupset.verify_files`` (with the
    archive check of ``content_checkers``) and ``confine.host_problems`` return problems and
    never raise. (``verify_files`` is called as ``verify_set`` calls it: with a JSON object;
    ``host_problems`` and ``archive_problems`` with a manifest whose shape is sound, as
    ``verified_set`` and the archive check call them.)
(b) Archives: config.tar of random members (names that mix the configuration paths with '..',
    absolute names, '.', long and unicode names and names through symbolic links the host has;
    files, directories, symbolic and hard links, FIFOs and devices; random link targets, modes,
    owners and times; mostly a legitimate archive with a few such changes, and a small dictionary
    of link pieces known to matter, GADGETS), with a manifest derived from the archive (as whoever
    forged it would reseal it) or from another random archive; its configuration paths are the
    usual ones, maybe one less, plus members of the archive or other names.
    ``archive_problems`` never raises, and passes every derived manifest ``manifest_problems``
    lets through. When ``manifest_problems`` and ``host_problems`` find nothing, ``extract_config``
    runs in a sandbox: a host tree, a victim tree outside the configuration paths and (in half of
    the examples) symbolic links to it inside them. It runs as on a host, with ``root='/'``, in a
    child process chrooted into the sandbox, so that nothing it might do can reach this machine's
    own files (os.fsync does nothing there, for speed). Then:
    - nothing outside the host's configuration paths changed (the whole sandbox but those paths is
      compared before and after, the victim tree included) and no temporary file is left;
    - it raised nothing but ConfinementError or OSError, and one of them whenever
      ``archive_problems`` found a problem (the archive changed after it was verified);
    - a set that passed every check was restored, unless this host was in the way (a link or a
      file where the set has a directory: ConfinementError) or a name is longer than Linux allows;
    - without the host's links, every symbolic link of the set leads (as the kernel resolves it)
      into the configuration paths.

By default the search is deterministic and quick (``derandomize``, a fixed number of examples,
about 15 s in all on the CI machine). For a longer, random search:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -p no:cacheprovider \\
        tests/unit/plugins/module_utils/test_confine_fuzz.py --hypothesis-show-statistics

``HYPOTHESIS_EXAMPLES=N`` sets the number of examples of each test in the long profile (default
10000: about 5 minutes). A failure prints the smallest input found and a ``@reproduce_failure``
line to replay it. No example database is written; Hypothesis keeps its caches in .cache/hypothesis.
"""

import copy
import json
import os
import shutil
import tempfile
import traceback

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from ansible_collections.microimpuls.micropvr.plugins.module_utils import backupset, confine

from test_confine import (
    HOST,
    HOST_CONFIG_PATHS,
    INIT_SCRIPTS,
    LEGIT_MEMBERS,
    SET_PATHS,
    build_host,
    host_path,
    make_dir,
    make_set,
    member,
    snapshot,
    tar_entries,
    temp_leftovers,
    write_file,
    write_tar,
)

LONG = os.environ.get('HYPOTHESIS_PROFILE') == 'long'

# Hypothesis' caches (its plugin writes them while collecting) in .cache/, which git and the
# collection build leave out, instead of a .hypothesis/ directory that the build would pick up.
REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
set_hypothesis_home_dir(os.path.join(REPOSITORY, '.cache', 'hypothesis'))


def examples(quick):
    """Examples of a test: ``quick`` by default, HYPOTHESIS_EXAMPLES (10000) in the long profile."""
    return int(os.environ.get('HYPOTHESIS_EXAMPLES', '10000')) if LONG else quick


FUZZ = dict(
    deadline=None,
    derandomize=not LONG,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

KEYS = backupset.SealKeys(bytes(range(32)))
BACKUP_ID = '20261126T221500Z'
# Where a restore may write: the host's configuration paths and the init scripts of its services.
CONFIG_AREA = HOST_CONFIG_PATHS + INIT_SCRIPTS


# --- (a) manifests ----------------------------------------------------------------------------------------------------

COMPONENTS = ['..', '.', '', 'etc', 'micropvr', 'micropvr.conf', 'root', '.ssh', 'authorized_keys', 'packages',
              'sqlite', 'records.db', 'config.tar', 'databases', 'manifest.json', 'cron.d', 'usr', 'shadow',
              'n' * 255, 'N' * 4097, 'é', '\u202e', '\ud800', '\x00', 'a\x00b', '\n', '\t', 'a\\b', '-rf', ' ', '~']


def path_strings():
    """Paths as an attacker would write them into a manifest."""
    joined = st.builds(lambda lead, parts, trail: lead + '/'.join(parts) + trail,
                       st.sampled_from(['', '/', '//', './', '../', '/../', '\x00']),
                       st.lists(st.sampled_from(COMPONENTS) | st.text(max_size=6), max_size=6),
                       st.sampled_from(['', '/', '/.', '/..', '\x00']))
    return joined | st.sampled_from(['', '/', '.', '..', '/etc/shadow', '/tmp/anything.deb', '../x', 'packages/../../x',
                                     'sqlite/records.db', 'config.tar', 'manifest.json', '/etc/micropvr',
                                     '/etc/micropvr/../cron.d', '/usr', '/etc/init.d/micropvr', '/' + 'n' * 5000])


SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.sampled_from([0, -1, 2 ** 32, 2 ** 63])
           | st.floats() | st.text(max_size=20) | path_strings())
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10) | st.sampled_from(['path', 'type', 'file', 'source']),
                                      inner, max_size=4), max_leaves=12)


DEEPER = st.sampled_from([True] * 9 + [False])


def _walk(data, node):
    """A random place in the JSON tree ``node``: (container, key) or (None, None) for the root."""
    parent, key = None, None
    while isinstance(node, (dict, list)) and node and data.draw(DEEPER, label='deeper'):
        keys = sorted(node, key=repr) if isinstance(node, dict) else list(range(len(node)))
        chosen = keys[data.draw(st.integers(0, len(keys) - 1), label='key')]
        parent, key, node = node, chosen, node[chosen]
    return parent, key


def mutate(data, manifest):
    """``manifest`` (a copy) with 1 to 6 random mutations; the new root (it may be replaced)."""
    root = [manifest]
    for dummy in range(data.draw(st.integers(1, 6), label='mutations')):
        parent, key = _walk(data, root[0])
        if parent is None:
            parent, key = root, 0
        action = data.draw(st.sampled_from(['json', 'path', 'delete', 'duplicate', 'insert', 'copy']), label='action')
        if action == 'json':
            parent[key] = data.draw(JSON, label='value')
        elif action == 'path':
            parent[key] = data.draw(path_strings(), label='path')
        elif action == 'delete' and parent is not root:
            del parent[key]
        elif action == 'duplicate' and isinstance(parent[key], list) and parent[key]:
            items = parent[key]
            items.insert(data.draw(st.integers(0, len(items))), copy.deepcopy(items[data.draw(
                st.integers(0, len(items) - 1))]))
        elif action == 'duplicate' and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif action == 'insert' and isinstance(parent[key], dict):
            parent[key][data.draw(st.text(max_size=10) | st.sampled_from(['seal', 'target', 'mode', 'uid']),
                                  label='new key')] = data.draw(JSON, label='value')
        elif action == 'copy':
            # a value from elsewhere in the manifest (another entry's path, a list, a dict ...)
            other_parent, other_key = _walk(data, root[0])
            if other_parent is not None:
                parent[key] = copy.deepcopy(other_parent[other_key])
    return root[0]


@pytest.fixture(scope='module')
def sealed_set(tmp_path_factory):
    """A set on disk and its sealed manifest (the starting point of every mutation)."""
    set_dir, manifest = make_set(str(tmp_path_factory.mktemp('fuzz-manifest') / BACKUP_ID))
    manifest['verified_at'] = '2026-11-26T22:15:07Z'
    backupset.write_manifest(set_dir, manifest, KEYS)
    assert backupset.verify_files(set_dir, manifest, KEYS) == []
    return set_dir, backupset.load_manifest(set_dir)


def _problem_list(value):
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), value
    return value


def archive_checker(manifest):
    """The ``config`` check of backupset.content_checkers (which needs a module for the others)."""
    return dict(config=lambda path, entry: '; '.join(confine.archive_problems(manifest, path)) or None)


@settings(max_examples=examples(500), **FUZZ)
@given(data=st.data())
def test_no_manifest_makes_the_checks_raise(sealed_set, data):
    set_dir, original = sealed_set
    manifest = mutate(data, copy.deepcopy(original))
    note('manifest: %r' % (manifest,))
    problems = _problem_list(confine.manifest_problems(manifest))
    if not isinstance(manifest, dict):
        assert problems
        event('not an object')
        return
    shape = _problem_list(confine.shape_problems(manifest))
    assert not shape or problems
    if not shape:
        _problem_list(confine.host_problems(manifest, *HOST))
        _problem_list(confine.archive_problems(manifest, os.path.join(set_dir, 'config.tar')))
    event('manifest_problems: %s' % ('none' if not problems else 'some'))
    unchanged = backupset._canonical(manifest) == backupset._canonical(original)  # what the seal covers
    verified = _problem_list(backupset.verify_files(set_dir, manifest, KEYS, archive_checker(manifest)))
    assert verified or unchanged
    with open(os.path.join(set_dir, backupset.MANIFEST), 'w') as handle:
        json.dump(manifest, handle)
    try:
        summary = backupset.summarize(set_dir, BACKUP_ID, KEYS)
    finally:
        backupset.write_manifest(set_dir, copy.deepcopy(original), KEYS)
    assert summary['status'] in (backupset.STATUS_VERIFIED, backupset.STATUS_UNVERIFIED, backupset.STATUS_DAMAGED,
                                 backupset.STATUS_TAMPERED)
    assert summary['status'] != backupset.STATUS_VERIFIED or unchanged


def test_a_non_ascii_seal_is_tampered_not_a_crash(tmp_path):
    """Found by test_no_manifest_makes_the_checks_raise: hmac.compare_digest refuses non-ASCII
    strings, so SealKeys.problem raises TypeError instead of reporting a tampered set
    (backup_info, backup_verify, retention and restore crash). The fix belongs in
    backupset.SealKeys.problem, which now refuses an hmac that is not 64 hex digits."""
    set_dir, manifest = make_set(str(tmp_path / BACKUP_ID))
    backupset.write_manifest(set_dir, manifest, KEYS)
    manifest = backupset.load_manifest(set_dir)
    manifest['seal']['hmac'] = '\u00e9' * 64
    assert KEYS.problem(manifest)
    assert backupset.status_of(manifest, [], KEYS) == backupset.STATUS_TAMPERED


# --- (b) archives ----------------------------------------------------------------------------------------------------

# Inside the configuration paths, outside them, and through the symbolic links the sandbox plants.
INSIDE_NAMES = ['etc/micropvr', 'etc/micropvr/micropvr.conf', 'etc/micropvr/conf.d', 'etc/micropvr/conf.d/local.json',
                'etc/micropvr/current.conf', 'usr/local/nginx-micropvr/conf',
                'usr/local/nginx-micropvr/conf/nginx.conf',
                'etc/init.d/micropvr', 'etc/init.d/micropvs', 'etc/micropvr/b', 'etc/micropvr/b/c', 'etc/micropvr/c',
                'etc/micropvr/l', 'etc/micropvr/l/authorized_keys', 'etc/micropvr/local.override']
THROUGH_LINKS = ['etc/micropvr/victim-link', 'etc/micropvr/victim-link/secret', 'etc/micropvr/victim-link/new',
                 'etc/micropvr/conf.d/victim-abs', 'etc/micropvr/conf.d/victim-abs/secret',
                 'etc/micropvr/conf.d/victim-abs/dir/x', 'usr/local/nginx-micropvr/conf/up/victim/secret',
                 'usr/local/nginx-micropvr/conf/up']
OUTSIDE_NAMES = ['etc', 'usr', 'root', 'victim', 'victim/secret', 'etc/cron.d/evil', 'root/.ssh/authorized_keys',
                 'etc/shadow', 'etc/init.d/ssh', 'var/lib/micropvr/records.db', 'etc/micropvr.d/evil', 'set/config.tar']
NAME_PARTS = ['etc', 'micropvr', 'conf.d', 'victim-link', 'victim-abs', 'b', 'c', 'l', 'x', '..', '.', '',
              'n' * 255, 'n' * 300, '\u00fc', '\u202e', '-x', ' ', 'a\\b', '\n']


def member_names():
    joined = st.builds(lambda lead, parts, trail: lead + '/'.join(parts) + trail,
                       st.sampled_from(['', '', '/', './', '../', 'etc/micropvr/', 'usr/local/nginx-micropvr/conf/']),
                       st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=5),
                       st.sampled_from(['', '', '/', '/.', '/..']))
    return (st.sampled_from(INSIDE_NAMES + THROUGH_LINKS + OUTSIDE_NAMES) | joined
            | st.sampled_from(['.', './', '..', '/', '/etc/micropvr/x', '/' + 'etc/cron.d/evil']))


def link_targets():
    names = member_names()
    return (names | names.map(lambda n: '/' + n.lstrip('/'))
            | st.builds(lambda k, n: '../' * k + n, st.integers(1, 5), names)
            | st.sampled_from(['.', '..', 'b/..', 'c/../root/.ssh', '/root/.ssh', '/victim', '/etc/micropvr',
                               'micropvr.conf', '../micropvr.conf', 'victim-link', 'victim-link/..', '', '/']))


MODES = st.sampled_from([0o644, 0o640, 0o600, 0o755, 0o750, 0o700, 0o2750, 0o1777, 0o4755, 0o2755, 0o777, 0o000]) \
    | st.integers(0, 0o7777)
OWNERS = st.sampled_from([0, 0, 1000, 65534]) | st.integers(0, 2 ** 32 + 2)
TIMES = st.sampled_from([1764195300, 0]) | st.integers(0, 2 ** 34) | st.sampled_from([-1, 2 ** 62, 2 ** 63, 2 ** 70])
KINDS = st.sampled_from(['file'] * 4 + ['directory'] * 3 + ['symlink'] * 3 + ['hardlink'] * 2) \
    | st.sampled_from(['fifo', 'chr', 'blk'])


def plausible_names():
    """Names inside the configuration paths (and through the host's links in them)."""
    return (st.sampled_from(INSIDE_NAMES + THROUGH_LINKS)
            | st.builds(lambda top, parts: top + '/' + '/'.join(parts),
                        st.sampled_from(['etc/micropvr', 'etc/micropvr/conf.d', 'usr/local/nginx-micropvr/conf']),
                        st.lists(st.sampled_from(['b', 'c', 'l', 'x', 'victim-link', 'n' * 255, '\u00fc']),
                                 min_size=1, max_size=2)))


@st.composite
def members(draw, names=None):
    return member(draw(member_names() if names is None else names), draw(KINDS), data=draw(st.binary(max_size=40)),
                  target=draw(link_targets()), mode=draw(MODES), uid=draw(OWNERS), gid=draw(OWNERS),
                  mtime=draw(TIMES))


# A dictionary of pieces known to matter (as a fuzzer's dictionary): links that lead back out of
# other links, links into the victim tree, a directory below a link.
GADGETS = [
    [member('etc/micropvr/b', 'symlink', target='.'), member('etc/micropvr/c', 'symlink', target='b/..')],
    [member('etc/micropvr/l', 'symlink', target='c/../root/.ssh')],
    [member('etc/micropvr/l', 'symlink', target='conf.d/victim-abs')],
    [member('etc/micropvr/l', 'symlink', target='victim-link/..')],
    [member('etc/micropvr/conf.d/up', 'symlink', target='../../../victim')],
    [member('etc/micropvr/victim-link', 'directory')],
]


@st.composite
def member_lists(draw):
    """Mostly a legitimate list with random changes (so that many pass the checks), else random,
    or a few members through the host's links (for a set whose configuration paths are those)."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.lists(members(), max_size=12))
    if kind == 1:
        return draw(st.lists(members(st.sampled_from(THROUGH_LINKS) | plausible_names()), min_size=1, max_size=3))
    result = [dict(spec) for spec in LEGIT_MEMBERS]
    # mostly names inside the configuration paths: those pass the manifest's checks more often
    names = st.one_of(plausible_names(), plausible_names(), plausible_names(), member_names())
    for dummy in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(['insert', 'insert', 'change', 'delete', 'move', 'gadget']))
        if action == 'gadget':
            result.extend(dict(spec) for spec in draw(st.sampled_from(GADGETS)))
            continue
        if action == 'insert' or not result:
            # at the end, or anywhere
            index = draw(st.sampled_from([len(result), draw(st.integers(0, len(result)))]))
            result.insert(index, draw(members(names)))
            continue
        index = draw(st.integers(0, len(result) - 1))
        if action == 'change':
            field = draw(st.sampled_from(['name', 'kind', 'target', 'mode', 'uid', 'gid', 'mtime', 'data']))
            fresh = draw(members(names))
            result[index] = dict(result[index], **{field: fresh[field]})
        elif action == 'delete':
            del result[index]
        else:
            result.insert(draw(st.integers(0, len(result) - 1)), result.pop(index))
    return with_parents(result) if draw(st.booleans()) else result


def with_parents(specs):
    """``specs`` with a directory member put before each member (inside the configuration paths)
    whose parent directory none of them is."""
    result, names = [], set()
    for spec in specs:
        missing, parent = [], os.path.dirname(spec['name'])
        while parent not in ('', '/') and parent not in names and confine.within('/' + parent, SET_PATHS):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for name in reversed(missing):
            result.append(member(name, 'directory'))
            names.add(name)
        result.append(spec)
        names.add(spec['name'])
    return result


def plant(root, host_links=True):
    """The sandbox: a host, a victim tree outside the configuration paths, links to it inside
    them (``host_links``).

    Made once (see ``pristine``) and copied for each example.
    """
    build_host(root)
    make_dir(os.path.join(root, 'victim'))
    write_file(os.path.join(root, 'victim', 'secret'), b'victim\n', 0o600)
    make_dir(os.path.join(root, 'victim', 'dir'), 0o700)
    if not host_links:
        return
    os.symlink('../../victim', host_path(root, '/etc/micropvr/victim-link'))
    os.symlink('/victim', host_path(root, '/etc/micropvr/conf.d/victim-abs'))
    os.symlink('../../../..', host_path(root, '/usr/local/nginx-micropvr/conf/up'))


def run_chrooted(root, function):
    """``function()`` in a child process chrooted into ``root``: what it returned (a JSON value)
    or raised.

    In the child, os.fsync does nothing: durability is not what this test is about, and the
    fsyncs of every file and directory made the search ten times slower.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(reader)
            os.chroot(root)
            os.chdir('/')
            os.fsync = lambda fd: None
            try:
                result = dict(raised=None, value=function())
            except BaseException as exc:  # pylint: disable=broad-except
                result = dict(raised=type(exc).__name__, message=str(exc), traceback=traceback.format_exc(),
                              allowed=isinstance(exc, (confine.ConfinementError, OSError)))
            with os.fdopen(writer, 'w') as handle:
                handle.write(json.dumps(result))
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as handle:
        output = handle.read()
    os.waitpid(pid, 0)
    return json.loads(output)


def _manifest_for(frame, entries, paths):
    manifest = copy.deepcopy(frame)
    manifest['config'].update(entries=entries, paths=paths)
    return manifest


@pytest.fixture(scope='module')
def frame(tmp_path_factory):
    """The rest of a manifest (files, packages, SQLite, databases), from a legitimate set."""
    return make_set(str(tmp_path_factory.mktemp('fuzz-frame') / 'set'))[1]


@pytest.fixture(scope='module')
def scratch(tmp_path_factory):
    return str(tmp_path_factory.mktemp('fuzz-archives'))


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    """{host links: a sandbox to copy}: with and without links to the victim in the configuration."""
    roots = {}
    for host_links in (True, False):
        roots[host_links] = str(tmp_path_factory.mktemp('fuzz-pristine') / 'root')
        plant(roots[host_links], host_links)
    return roots


def restore_and_resolve(manifest):
    """extract_config (in the chroot), then where each symbolic link of the set leads."""
    confine.extract_config(manifest, '/set/config.tar', root='/')
    return dict((entry['path'], os.path.realpath(entry['path'])) for entry in manifest['config']['entries']
                if entry['type'] == 'symlink' and os.path.islink(entry['path']))


@pytest.mark.skipif(os.geteuid() != 0, reason='extracts with owners, in a chroot: needs root')
@settings(max_examples=examples(500), **FUZZ)
@given(tar_members=member_lists(),
       other_members=st.sampled_from([None] * 3 + [member_lists()]).flatmap(
           lambda lists: st.none() if lists is None else lists),
       member_tops=st.lists(st.integers(0, 30), max_size=2),
       extra_tops=st.lists(plausible_names(), max_size=1) | st.lists(member_names(), max_size=1),
       drop_tops=st.sampled_from([[]] * 10 + [[p] for p in SET_PATHS] + [SET_PATHS] * 2),
       host_links=st.booleans())
def test_no_archive_makes_the_restore_write_outside_the_configuration_paths(frame, scratch, pristine, tar_members,
                                                                            other_members, member_tops, extra_tops,
                                                                            drop_tops, host_links):
    # other_members None: the manifest lists the archive's own members (a forged and resealed set);
    # else those of another archive (config.tar does not match its manifest)
    derived = other_members is None
    # configuration paths of the set: its usual ones (maybe one less), members of the archive, others
    extra_tops = [tar_members[index % len(tar_members)]['name'] for index in member_tops if tar_members] + extra_tops
    sandbox = tempfile.mkdtemp(dir=scratch)
    try:
        try:
            archive = write_tar(os.path.join(sandbox, 'config.tar'), tar_members)
            source = archive if derived else write_tar(os.path.join(sandbox, 'other.tar'), other_members)
            entries = tar_entries(source)
        except (ValueError, UnicodeError, OverflowError) as exc:
            # tarfile cannot write it (a name or number it has no field for): no such archive exists
            note('not written: %r' % exc)
            assume(False)
        paths = [p for p in SET_PATHS if p not in drop_tops]
        paths += [top for top in ('/' + name.lstrip('/') for name in extra_tops) if top not in paths]
        manifest = _manifest_for(frame, entries, paths)
        note('members: %r' % (tar_members,))
        note('entries: %r' % (entries,))
        note('paths: %r' % (paths,))

        problems = _problem_list(confine.manifest_problems(manifest))
        assert not _problem_list(confine.shape_problems(manifest))
        in_archive = _problem_list(confine.archive_problems(manifest, archive))
        if derived and not problems:
            assert in_archive == [], in_archive
        if problems:
            event('refused by manifest_problems')
            return
        host = _problem_list(confine.host_problems(manifest, *HOST))
        if host:
            event('refused by host_problems')
            return
        event('extracted (%s)' % ('archive_problems: some' if in_archive else 'all checks passed'))

        # Only now the sandbox (a copy of the pristine one, files hard-linked: the extraction
        # replaces files, it never writes into one; if it did, the snapshot shows it).
        root = os.path.join(sandbox, 'root')
        shutil.copytree(pristine[host_links], root, symlinks=True, copy_function=os.link)
        os.makedirs(os.path.join(root, 'set'))
        os.link(archive, os.path.join(root, 'set', 'config.tar'))
        before = snapshot(root, exclude=CONFIG_AREA, dir_mtimes=False)
        result = run_chrooted(root, lambda: restore_and_resolve(manifest))
        note('extraction: %r' % (result,))
        assert result['raised'] is None or result['allowed'], result.get('traceback')
        if in_archive:
            assert result['raised'], 'extracted although archive_problems said: %s' % in_archive
        elif result['raised']:
            # A set that passes every check is restored, unless this host is in the way (a link or
            # a file where the set has a directory) or a name is longer than the system allows.
            event('all checks passed, extraction raised %s' % result['raised'])
            too_long = any(len(part.encode('utf-8', 'surrogateescape')) > 255
                           for entry in entries for part in entry['path'].split('/'))
            assert (result['raised'] == 'ConfinementError' and 'on this host' in result['message']
                    or too_long and 'File name too long' in result['message']), result['traceback']
        assert snapshot(root, exclude=CONFIG_AREA, dir_mtimes=False) == before
        assert temp_leftovers(root) == []
        if not host_links and not result['raised']:
            # no link of the set leads out of the configuration paths (as the system resolves it)
            leading_out = dict((path, real) for path, real in result['value'].items()
                               if not confine.within(real, CONFIG_AREA))
            assert leading_out == {}
    finally:
        shutil.rmtree(sandbox)
