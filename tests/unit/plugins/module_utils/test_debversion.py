"""Unit tests for plugins/module_utils/debversion.py, checked against the real dpkg --compare-versions."""

import functools
import itertools
import random
import shutil
import subprocess

import pytest

from ansible_collections.microimpuls.micropvr.plugins.module_utils.debversion import (
    OPERATORS,
    DebianVersion,
    compare,
    parse,
    satisfies,
)

DPKG = shutil.which('dpkg')
needs_dpkg = pytest.mark.skipif(DPKG is None, reason='dpkg is not installed')

RELATION = {-1: 'lt', 0: 'eq', 1: 'gt'}

# Versions chosen for the corners of dpkg's ordering.
TRICKY = [
    # epochs
    '1.0', '0:1.0', '1:1.0', '1:0.9', '2:0', '1:2:3', '10:1', '9:1',
    # ~ sorts before everything, even the end of the string
    '1.0~rc1', '1.0~rc2', '1.0~rc10', '1.0~', '1.0~~', '1.0~~a', '1.0~rc1+git20200101', '1.0~rc1-1',
    '2~', '2', '2~~', '2~a', '2.~',
    # letters vs '+' vs '.' vs the end
    '1.0a', '1.0A', '1.0z', '1.0+', '1.0.', '1.0+b1', '1.0.1', '1.0a1', '1.0+1', '2a', '2A', '2+', '2.',
    '3.0a', '3.0~a', '3.0+a', '3.0.a',
    # leading zeros: digit runs compare as numbers
    '1.00', '1.000', '01', '1', '1.01', '1.001', '1.1', '0', '00', '0.0', '1.010', '1.10',
    # revisions
    '1.0-1', '1.0-1.1', '1.0-1~bpo1', '1.0-1+deb12u1', '1.0-1+deb12u2', '1.0-1+deb11u1', '1.0-0', '1.0-00',
    '1.0-2', '1.0-10', '1.0-a', '1.0-A', '1.0-~', '1.0-1-1', '1.0-1ubuntu1', '1.0-1build1',
    # the micropvr case: 1.10 is newer than 1.9
    '1.9.0-1', '1.10.0-1', '1.10.0-1~bpo12+1', '1.10.0', '1.9.0', '1.9.10-1', '1.9.9-1',
    '9', '10', '2.3-1', '1:2.3-1',
]

# Each of these pairs is ordered a < b (the relation dpkg's documentation and Debian practice rely on).
KNOWN_LESS = [
    ('1.0~rc1', '1.0'),
    ('1.0~rc1', '1.0~rc2'),
    ('1.0~rc2', '1.0~rc10'),
    ('1.0~~', '1.0~'),
    ('1.0~', '1.0'),
    ('2~', '2'),
    ('1.0', '1.0a'),
    ('1.0a', '1.0+'),
    ('1.0+', '1.0.'),
    ('1.0A', '1.0a'),
    ('1.0', '1.0.1'),
    ('1.9.0-1', '1.10.0-1'),
    ('2.0', '1:0.9'),
    ('1:1.0', '2:0'),
    ('9:1', '10:1'),
    ('1.0-1~bpo1', '1.0-1'),
    ('1.0-1', '1.0-1+deb12u1'),
    ('1.0-1+deb11u1', '1.0-1+deb12u1'),
    ('1.0-1+deb12u1', '1.0-1.1'),
    ('1.0-1', '1.0-1.1'),
    ('1.0-2', '1.0-10'),
    ('1.0', '1.0-1'),
    ('1.0-1', '1.0.1'),
    ('1.10.0-1~bpo12+1', '1.10.0-1'),
    ('9', '10'),
]

KNOWN_EQUAL = [
    ('1.0', '1.0'),
    ('1.00', '1.0'),
    ('1.000', '1.0'),
    ('01', '1'),
    ('0:1.0', '1.0'),
    ('1.0-0', '1.0'),
    ('1.0-00', '1.0-0'),
    ('1.010', '1.10'),
    ('0', '00'),
]


def dpkg_agrees(pairs):
    """For each (a, relation, b): whether dpkg --compare-versions a relation b holds.

    One shell reads all the triples, so the cost is one dpkg exec per triple, not one Python
    subprocess. lt/eq/gt are mutually exclusive in dpkg, so success means dpkg's order is ours.
    """
    script = 'while read -r a op b; do dpkg --compare-versions "$a" "$op" "$b"; echo $?; done'
    stdin = ''.join('%s %s %s\n' % triple for triple in pairs)
    proc = subprocess.run(['sh', '-c', script], input=stdin, capture_output=True, text=True, check=True)
    # dpkg warns on stderr about anything it finds doubtful; the corpus must be clean.
    assert proc.stderr == ''
    codes = proc.stdout.split()
    assert len(codes) == len(pairs)
    assert set(codes) <= {'0', '1'}, 'dpkg reported an error (exit 2) for some version'
    return [code == '0' for code in codes]


def dpkg_relation(a, b):
    for relation in ('lt', 'eq', 'gt'):
        if dpkg_agrees([(a, relation, b)])[0]:
            return relation
    raise AssertionError('dpkg orders %s and %s in no way' % (a, b))


def assert_matches_dpkg(pairs):
    triples = [(a, RELATION[compare(a, b)], b) for a, b in pairs]
    disagreements = ['%s %s %s (dpkg: %s)' % (a, rel, b, dpkg_relation(a, b))
                     for (a, rel, b), ok in zip(triples, dpkg_agrees(triples)) if not ok]
    assert disagreements == []


def random_versions(count, seed=20261126):
    """Versions over the whole allowed alphabet, biased towards near collisions."""
    rng = random.Random(seed)
    digits = '0123456789'
    common = digits * 3 + '00' + 'abzAZ' + '..++~~~'
    revision_chars = digits * 2 + 'abuZ' + '.+~~'
    result = set()
    while len(result) < count:
        epoch = '%d:' % rng.randint(1, 12) if rng.random() < 0.2 else ''
        revision = ''.join(rng.choice(revision_chars) for _ in range(rng.randint(1, 5))) \
            if rng.random() < 0.6 else ''
        alphabet = common + ('-' if revision else '') + (':' if epoch else '')
        upstream = rng.choice(digits) + ''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
        result.add(epoch + upstream + ('-' + revision if revision else ''))
    return sorted(result)


RANDOM = random_versions(300)


# --- compare: known facts -----------------------------------------------------------------------

@pytest.mark.parametrize('a, b', KNOWN_LESS)
def test_compare_known_less(a, b):
    assert compare(a, b) == -1
    assert compare(b, a) == 1


@pytest.mark.parametrize('a, b', KNOWN_EQUAL)
def test_compare_known_equal(a, b):
    assert compare(a, b) == 0
    assert compare(b, a) == 0


def test_compare_accepts_parsed_versions():
    assert compare(parse('1.9.0-1'), parse('1.10.0-1')) == -1
    assert compare(parse('1:0.1'), '2.0') == 1
    assert compare('1.0', DebianVersion(0, '1.00', '')) == 0


def test_compare_results_are_exactly_minus_one_zero_one():
    values = set(compare(a, b) for a, b in itertools.product(TRICKY, repeat=2))
    assert values == {-1, 0, 1}


def test_compare_is_antisymmetric_and_reflexive():
    for a, b in itertools.product(TRICKY + RANDOM[:60], repeat=2):
        assert compare(a, b) == -compare(b, a), (a, b)
    for a in TRICKY + RANDOM:
        assert compare(a, a) == 0


def test_compare_rejects_a_malformed_version():
    with pytest.raises(ValueError, match='must start with a digit'):
        compare('abc', '1.0')
    with pytest.raises(ValueError, match='empty revision'):
        compare('1.0', '1.0-')


# --- compare: against dpkg ----------------------------------------------------------------------

def test_random_corpus_is_wellformed_and_varied():
    assert len(RANDOM) == 300
    assert any(':' in v for v in RANDOM)
    assert any('~' in v for v in RANDOM)
    assert any('-' in v.split(':')[-1].rpartition('-')[0] for v in RANDOM)  # hyphen inside upstream
    assert random_versions(300) == RANDOM  # seeded: the same corpus every run
    for version in RANDOM:
        parse(version)


@needs_dpkg
def test_tricky_versions_all_pairs_match_dpkg():
    assert_matches_dpkg(list(itertools.combinations(TRICKY, 2)))


@needs_dpkg
def test_known_facts_match_dpkg():
    # The hand-written expectations above are themselves dpkg's answers.
    assert dpkg_agrees([(a, 'lt', b) for a, b in KNOWN_LESS] + [(a, 'eq', b) for a, b in KNOWN_EQUAL]) \
        == [True] * (len(KNOWN_LESS) + len(KNOWN_EQUAL))


@needs_dpkg
def test_random_corpus_total_order_matches_dpkg():
    """Sort by our compare, then check every neighbour with dpkg.

    dpkg's order is a total preorder, so agreeing on each adjacent step (lt or eq) means agreeing
    on every pair of the corpus: a <= b for i < j, strictly iff some step between them is strict.
    """
    ordered = sorted(RANDOM + TRICKY, key=functools.cmp_to_key(compare))
    pairs = list(zip(ordered, ordered[1:]))
    assert all(compare(a, b) <= 0 for a, b in pairs)
    assert_matches_dpkg(pairs)


@needs_dpkg
def test_random_pairs_match_dpkg():
    rng = random.Random(4089)
    corpus = RANDOM + TRICKY
    pairs = [(rng.choice(corpus), rng.choice(corpus)) for _ in range(400)]
    # and near neighbours: the same version with a small edit
    for version in RANDOM[:100]:
        edit = rng.choice(['~', 'a', '+', '.', '0', '.0', '~rc1', '-1' if '-' not in version else '.1'])
        pairs.append((version, version + edit))
    assert_matches_dpkg(pairs)


# --- parse ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('text, epoch, upstream, revision', [
    ('1.0', 0, '1.0', ''),
    ('1.9.0-1', 0, '1.9.0', '1'),
    ('1:1.10.0-1', 1, '1.10.0', '1'),
    ('12:1.0~rc1+dfsg-1', 12, '1.0~rc1+dfsg', '1'),
    ('0:1.0', 0, '1.0', ''),
    ('1.0-1-2', 0, '1.0-1', '2'),
    ('1:2:3-4', 1, '2:3', '4'),
    ('1.0-1+deb12u1', 0, '1.0', '1+deb12u1'),
    ('1.0-~', 0, '1.0', '~'),
    ('0', 0, '0', ''),
    ('  1.0-1\n', 0, '1.0', '1'),  # dpkg ignores surrounding blanks too
])
def test_parse_valid(text, epoch, upstream, revision):
    version = parse(text)
    assert isinstance(version, DebianVersion)
    assert (version.epoch, version.upstream, version.revision) == (epoch, upstream, revision)
    assert tuple(version) == (epoch, upstream, revision)


@pytest.mark.parametrize('text', ['1.0', '1.9.0-1', '1:1.10.0-1', '12:1.0~rc1+dfsg-1', '1.0-1-2', '1:2:3-4', '2~'])
def test_str_round_trip(text):
    assert str(parse(text)) == text
    assert parse(str(parse(text))) == parse(text)


@pytest.mark.parametrize('text, canonical', [
    ('0:1.0', '1.0'),
    ('0:1.0-1', '1.0-1'),
    ('01:1.0', '1:1.0'),
    (' 1.0 ', '1.0'),
])
def test_str_is_canonical(text, canonical):
    assert str(parse(text)) == canonical


def test_str_round_trip_random_corpus():
    for version in RANDOM:
        assert str(parse(version)) == version


def test_debian_version_str_and_properties():
    version = DebianVersion(2, '1.0', 'x1')
    assert str(version) == '2:1.0-x1'
    assert str(DebianVersion(0, '1.0', '')) == '1.0'
    assert version.epoch == 2 and version.upstream == '1.0' and version.revision == 'x1'


@pytest.mark.parametrize('text, message', [
    ('', 'version is empty'),
    ('   ', 'version is empty'),
    ('1.0 1', "version '1.0 1' has embedded spaces"),
    ('1.0\t-1', "version '1.0\\t-1' has embedded spaces"),
    (':1.0', "version ':1.0' has an empty epoch"),
    ('a:1.0', "version 'a:1.0' has a non-numeric epoch 'a'"),
    ('-1:1.0', "version '-1:1.0' has a non-numeric epoch '-1'"),
    ('1.0:2', "version '1.0:2' has a non-numeric epoch '1.0'"),
    ('abc', "version 'abc': the upstream version must start with a digit"),
    ('1:abc', "version '1:abc': the upstream version must start with a digit"),
    ('~1', "version '~1': the upstream version must start with a digit"),
    ('1.0-', "version '1.0-' has an empty revision after \"-\""),
    ('-1', "version '-1' has an empty upstream version"),
    ('1:', "version '1:' has an empty upstream version"),
    ('1:-1', "version '1:-1' has an empty upstream version"),
    ('1.0_1', "version '1.0_1' has characters not allowed in an upstream version"),
    ('1.0/1', "version '1.0/1' has characters not allowed in an upstream version"),
    ('1.0\u00e9', "version '1.0\u00e9' has characters not allowed in an upstream version"),
    ('1.0-1_1', "version '1.0-1_1' has characters not allowed in a Debian revision"),
    ('1.0-1:2', "version '1.0-1:2' has a non-numeric epoch '1.0-1'"),
    ('1.0-a:b', "version '1.0-a:b' has a non-numeric epoch '1.0-a'"),
    ('1:1.0-1:2', "version '1:1.0-1:2' has characters not allowed in a Debian revision"),
])
def test_parse_malformed(text, message):
    with pytest.raises(ValueError) as excinfo:
        parse(text)
    assert str(excinfo.value) == message


@pytest.mark.parametrize('value, type_name', [(None, 'NoneType'), (1.0, 'float'), (10, 'int'), (b'1.0', 'bytes')])
def test_parse_non_string(value, type_name):
    with pytest.raises(ValueError) as excinfo:
        parse(value)
    assert str(excinfo.value) == 'version must be a string, got %s' % type_name


@needs_dpkg
@pytest.mark.parametrize('text', ['', ':1.0', 'a:1.0', '1.0-', '-1', '1:', '1.0 1'])
def test_dpkg_also_rejects_what_parse_rejects(text):
    proc = subprocess.run([DPKG, '--compare-versions', text, 'lt', '1'], capture_output=True, text=True)
    if text == '':
        # dpkg treats an empty version as "no version", a special case of --compare-versions
        assert proc.returncode == 0
    else:
        assert proc.returncode == 2, proc.stderr


def test_parse_rejects_a_non_ascii_epoch():
    with pytest.raises(ValueError):
        parse('\u0661:1.0')  # ARABIC-INDIC DIGIT ONE; parse() returns DebianVersion(1, '1.0', '')


def test_parse_rejects_an_epoch_dpkg_cannot_hold():
    with pytest.raises(ValueError):
        parse('99999999999:1.0')


# --- satisfies -----------------------------------------------------------------------------------

STRICT = {
    '<<': (True, False, False), 'lt': (True, False, False),
    '<=': (True, True, False), 'le': (True, True, False),
    '=': (False, True, False), '==': (False, True, False), 'eq': (False, True, False),
    '!=': (True, False, True), 'ne': (True, False, True),
    '>=': (False, True, True), 'ge': (False, True, True),
    '>>': (False, False, True), 'gt': (False, False, True),
}


@pytest.mark.parametrize('operator', sorted(STRICT))
def test_satisfies(operator):
    less, equal, greater = STRICT[operator]
    assert satisfies('1.9.0-1', operator, '1.10.0-1') is less
    assert satisfies('1.0', operator, '1.00-0') is equal
    assert satisfies('1:0.1', operator, '2.0') is greater


@pytest.mark.parametrize('operator, hint', [('<', "'<<' (older) or '<=' (older or equal)"),
                                            ('>', "'>>' (newer) or '>=' (newer or equal)")])
def test_obsolete_single_angle_operators_are_refused_as_ambiguous(operator, hint):
    with pytest.raises(ValueError) as err:
        satisfies('1.0', operator, '1.0')
    assert str(err.value) == ('comparison operator %r is ambiguous (dpkg reads it as %r); use %s'
                              % (operator, operator + '=', hint))


@needs_dpkg
@pytest.mark.parametrize('operator', ['<<', '<=', '=', '>=', '>>', 'lt', 'le', 'eq', 'ne', 'ge', 'gt'])
def test_satisfies_matches_dpkg_for_its_operators(operator):
    versions = ['1.0~rc1', '1.0', '1.00', '1:0.1']
    triples = [(a, operator, b) for a, b in itertools.product(versions, repeat=2)]
    assert [satisfies(a, op, b) for a, op, b in triples] == dpkg_agrees(triples)


def test_every_listed_operator_is_accepted():
    for operator in OPERATORS:
        assert satisfies('1.0', operator, '1.0') in (True, False)
    assert len(set(OPERATORS)) == 13


@pytest.mark.parametrize('operator', ['=>', '<>', 'LT', '', '===', 'lt-nl', None])
def test_satisfies_unknown_operator(operator):
    with pytest.raises(ValueError) as excinfo:
        satisfies('1.0', operator, '1.0')
    assert str(excinfo.value) == ('unknown comparison operator %r (use one of <<, <=, =, >=, >>, ==, !=, '
                                  'lt, le, eq, ne, ge, gt)' % (operator,))


def test_satisfies_malformed_version():
    with pytest.raises(ValueError) as excinfo:
        satisfies('1.0', '<<', 'x1')
    assert str(excinfo.value) == "version 'x1': the upstream version must start with a digit"
