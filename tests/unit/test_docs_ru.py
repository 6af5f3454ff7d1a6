"""The Russian operator guide (docs/ru) stays in step with the collection and the English README.

It fails when the guide misses a playbook of playbooks/ (or a command line that runs it), a public
variable (every option of every entry point of roles/*/meta/argument_specs.yml, suboptions as
`parent[].sub`) or its default, a command of README.md's quick start, or when a link of the guide
points at a file or heading that does not exist. The checks are functions over text, so the last
tests feed them a guide with something removed and make sure they notice.
"""

import functools
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDE_DIR = ROOT / 'docs' / 'ru'
GUIDE_INDEX = GUIDE_DIR / 'README.md'
README = ROOT / 'README.md'
NAMESPACE = 'microimpuls.micropvr'

# README.md sections (level-2 headings) whose shell commands the guide must repeat verbatim.
COMMAND_SECTIONS = ('Quick start', 'Using the collection')
# Anywhere in README.md, shell commands starting with these must be in the guide too.
COMMAND_PREFIXES = ('ansible-playbook ', 'ansible-galaxy ')
SHELL_FENCES = ('sh', 'bash', 'shell', 'console')
# Header of the guide's variable tables: the only tables whose rows are checked as variables.
VARIABLE_TABLE_HEADER = ['переменная', 'по умолчанию', 'что значит']
REQUIRED_MARK = 'обязательн'
NO_DEFAULT_MARKS = ('—', '-', '')


def _guide_files():
    return sorted(GUIDE_DIR.rglob('*.md'))


def _guide():
    """{path: text} of every Markdown file of the guide."""
    return {path: path.read_text(encoding='utf-8') for path in _guide_files()}


def fenced_blocks(text):
    """[(language, [lines])] of the fenced code blocks of a Markdown text."""
    blocks, current, lang = [], None, ''
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith('```'):
            if current is None:
                current, lang = [], stripped[3:].strip().lower()
            else:
                blocks.append((lang, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def shell_commands(lines):
    """Command lines of a shell block: comments dropped, continuations joined, blanks squeezed."""
    commands, pending = [], ''
    for line in lines:
        line = re.sub(r'(^|\s)#.*$', '', line).strip()
        if not line and not pending:
            continue
        if line.endswith('\\'):
            pending += line[:-1] + ' '
            continue
        command = ' '.join((pending + line).split())
        pending = ''
        if command:
            commands.append(command)
    return commands


def sections(text, level=2):
    """{heading: body} of the headings of one level, outside code blocks."""
    result, name, body, in_fence = {}, None, [], False
    marker = '#' * level + ' '
    for line in text.splitlines():
        if line.strip().startswith('```'):
            in_fence = not in_fence
        if not in_fence and line.startswith(marker):
            if name is not None:
                result[name] = '\n'.join(body)
            name, body = line[len(marker):].strip(), []
        elif not in_fence and name is not None and re.match(r'#{1,%d} ' % (level - 1), line):
            result[name] = '\n'.join(body)
            name, body = None, []
        elif name is not None:
            body.append(line)
    if name is not None:
        result[name] = '\n'.join(body)
    return result


def readme_commands(readme_text):
    """The shell commands of README.md that the guide must show as they are."""
    found = sections(readme_text)
    missing = [name for name in COMMAND_SECTIONS if name not in found]
    assert not missing, 'README.md has no "## %s" section; update COMMAND_SECTIONS in %s' % (
        '", "## '.join(missing), pathlib.Path(__file__).name)
    commands = []
    for name in COMMAND_SECTIONS:
        for lang, lines in fenced_blocks(found[name]):
            if lang in SHELL_FENCES:
                commands += shell_commands(lines)
    for lang, lines in fenced_blocks(readme_text):
        if lang in SHELL_FENCES:
            commands += [c for c in shell_commands(lines) if c.startswith(COMMAND_PREFIXES)]
    commands += inline_commands(readme_text)
    return list(dict.fromkeys(commands))


def inline_commands(text):
    """`ansible-playbook …` and `ansible-galaxy …` written inline in the prose, outside code blocks."""
    prose = re.sub(r'^[ \t]*```.*?^[ \t]*```', '', text, flags=re.S | re.M)
    spans = re.findall(r'`([^`\n]+(?:\n[^`\n]+)?)`', prose)
    spans = [' '.join(span.split()) for span in spans]
    return [span for span in spans if span.startswith(COMMAND_PREFIXES)]


def guide_commands(texts):
    """Every command line of every fenced block of the guide, and its inline commands."""
    commands = {command for text in texts for _, lines in fenced_blocks(text) for command in shell_commands(lines)}
    return commands | {command for text in texts for command in inline_commands(text)}


@functools.lru_cache(maxsize=None)  # parsed once per session; nothing mutates the result
def public_options(root=ROOT):
    """{variable: [option spec, ...]} over every entry point of every role's argument specs."""
    options = {}
    for path in sorted((root / 'roles').glob('*/meta/argument_specs.yml')):
        specs = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
        for entry in (specs.get('argument_specs') or {}).values():
            for name, option in ((entry or {}).get('options') or {}).items():
                options.setdefault(name, []).append(option)
                for sub, suboption in (option.get('options') or {}).items():
                    options.setdefault('%s[].%s' % (name, sub), []).append(suboption)
    return options


def _cells(line):
    # A pipe escaped as \| belongs to the cell.
    return [cell.strip() for cell in re.split(r'(?<!\\)\|', line.strip())[1:-1]]


def variable_rows(texts):
    """{variable: default cell} of the guide's variable tables; a name twice is an error."""
    rows, duplicates = {}, []
    for text in texts:
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith('|') or _cells(line) != VARIABLE_TABLE_HEADER:
                continue
            for row in lines[index + 2:]:
                if not row.startswith('|'):
                    break
                cells = _cells(row)
                assert len(cells) == len(VARIABLE_TABLE_HEADER), 'malformed table row: %s' % row
                match = re.fullmatch(r'`([^`]+)`', cells[0])
                assert match, 'variable table row without a `name` in its first cell: %s' % row
                if match.group(1) in rows:
                    duplicates.append(match.group(1))
                rows[match.group(1)] = cells[1]
    assert not duplicates, 'variables listed twice in docs/ru: %s' % ', '.join(duplicates)
    return rows


def default_problem(name, specs, cell):
    """Why the default cell of a variable disagrees with its specs (None when it agrees)."""
    defaults = [spec['default'] for spec in specs if 'default' in spec]
    if defaults:
        spans = re.findall(r'`([^`]*)`', cell)
        if not spans:
            return '%s: the spec says default %r, the guide shows %r' % (name, defaults[0], cell)
        shown = yaml.safe_load(spans[0]) if spans[0] else ''
        for default in defaults:
            if shown != default and str(shown) != str(default):
                return '%s: the spec says default %r, the guide shows %r' % (name, default, spans[0])
        return None
    if any(spec.get('required') for spec in specs):
        if REQUIRED_MARK not in cell:
            return '%s: required in the spec, the guide does not say "%s…"' % (name, REQUIRED_MARK)
        return None
    if cell not in NO_DEFAULT_MARKS:
        return '%s: no default in the spec, the guide shows %r' % (name, cell)
    return None


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading).strip().lower()
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(text):
    found = set()
    in_fence = False
    for line in text.splitlines():
        if line.strip().startswith('```'):
            in_fence = not in_fence
        match = None if in_fence else re.match(r'#{1,6} (.+)$', line)
        if match:
            found.add(github_anchor(match.group(1)))
    return found


def broken_links(path, text):
    """Links of one guide file to local files or headings that do not exist."""
    problems = []
    prose = re.sub(r'```.*?```', '', text, flags=re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', prose):
        if re.match(r'[a-z][a-z0-9+.-]*:', target):
            continue  # https:, mailto: — not checked offline
        file_part, _, anchor = target.partition('#')
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append('%s: link to %s, which does not exist' % (path.relative_to(ROOT), target))
        elif anchor and resolved.suffix == '.md' and anchor not in anchors(resolved.read_text(encoding='utf-8')):
            problems.append('%s: link to %s, which has no heading #%s' % (path.relative_to(ROOT), target, anchor))
    return problems


def playbook_problems(playbooks, commands, text):
    problems = []
    for playbook in playbooks:
        fqcn = '%s.%s' % (NAMESPACE, playbook)
        if not re.search(r'`%s`' % re.escape(fqcn), text):
            problems.append('playbook %s is not described in docs/ru' % fqcn)
        if not any(c.startswith('ansible-playbook ') and fqcn in c.split() for c in commands):
            problems.append('docs/ru shows no ansible-playbook command that runs %s' % fqcn)
    return problems


def result_facts(root=ROOT):
    """The result facts the roles publish, as their argument specs announce them: "Sets C(name)"."""
    facts = set()
    for path in sorted((root / 'roles').glob('*/meta/argument_specs.yml')):
        for entry in (yaml.safe_load(path.read_text(encoding='utf-8')).get('argument_specs') or {}).values():
            description = entry.get('description') or []
            text = ' '.join(description) if isinstance(description, list) else description
            facts.update(re.findall(r'\bSets C\((\w+)\)', text))
    return facts


PLAYBOOKS = sorted(path.stem for path in (ROOT / 'playbooks').glob('*.yml'))


def test_the_guide_exists_and_readme_links_it():
    assert GUIDE_INDEX.is_file(), 'docs/ru/README.md is missing'
    assert '](docs/ru/README.md)' in README.read_text(encoding='utf-8'), \
        'README.md does not link the Russian guide docs/ru/README.md'


def test_every_playbook_is_described_with_a_command():
    guide = _guide()
    assert PLAYBOOKS, 'no playbooks found'
    problems = playbook_problems(PLAYBOOKS, guide_commands(guide.values()), '\n'.join(guide.values()))
    assert not problems, '\n'.join(problems)


def test_every_public_variable_is_in_the_variable_table():
    options = public_options()
    assert 'micropvr_version' in options, 'argument specs not read'
    rows = variable_rows(_guide().values())
    missing = sorted(set(options) - set(rows))
    assert not missing, 'public variables missing from the tables of docs/ru: %s' % ', '.join(missing)


def test_defaults_in_the_guide_match_the_argument_specs():
    options = public_options()
    rows = variable_rows(_guide().values())
    problems = [default_problem(name, options[name], rows[name]) for name in sorted(rows) if name in options]
    problems = [problem for problem in problems if problem]
    assert not problems, '\n'.join(problems)


def test_the_guide_lists_no_variable_the_collection_does_not_read():
    options = public_options()
    code = '\n'.join(path.read_text(encoding='utf-8')
                     for folder in ('playbooks', 'roles') for path in sorted((ROOT / folder).rglob('*.yml')))
    unknown = [name for name in variable_rows(_guide().values())
               if name not in options and not re.search(r'\b%s\b' % re.escape(name.split('[')[0]), code)]
    assert not unknown, 'docs/ru documents variables that nothing reads: %s' % ', '.join(unknown)


def test_every_result_fact_of_a_role_is_in_the_guide():
    text = '\n'.join(_guide().values())
    missing = sorted(fact for fact in result_facts() if '`%s`' % fact not in text)
    assert not missing, 'result facts of the roles missing from docs/ru: %s' % ', '.join(missing)


def test_readme_commands_are_in_the_guide():
    expected = readme_commands(README.read_text(encoding='utf-8'))
    assert any(c.startswith('ansible-playbook ') for c in expected), 'no ansible-playbook command found in README.md'
    shown = guide_commands(_guide().values())
    missing = [command for command in expected if command not in shown]
    assert not missing, 'README.md commands missing from docs/ru (as they are, in a code block or inline code):\n%s' % (
        '\n'.join(missing))


def test_links_of_the_guide_resolve():
    problems = [problem for path, text in _guide().items() for problem in broken_links(path, text)]
    assert not problems, '\n'.join(problems)


# The checks must be able to fail: each one is fed the real guide with one thing taken out.

def _without(texts, pattern):
    changed = [re.sub(pattern, '', text, flags=re.M) for text in texts]
    assert changed != list(texts), 'pattern %r removed nothing' % pattern
    return changed


def test_a_variable_removed_from_the_guide_is_noticed():
    texts = list(_guide().values())
    name = sorted(public_options())[0]
    rows = variable_rows(_without(texts, r'^\| `%s` \|.*\n' % re.escape(name)))
    assert name not in rows


def test_a_wrong_default_is_noticed():
    assert default_problem('x', [{'default': 5}], '`6`')
    assert default_problem('x', [{'default': []}], '—')
    assert default_problem('x', [{'required': True}], '—')
    assert default_problem('x', [{}], '`1`')
    assert default_problem('x', [{'default': [1, 2]}], '`[1, 2]`') is None
    assert default_problem('x', [{'default': ''}], "`''`") is None


def test_a_playbook_without_a_command_is_noticed():
    guide = list(_guide().values())
    texts = _without(guide, r'^[ \t]*ansible-playbook .*microimpuls\.micropvr\.backup_verify\b.*\n')
    problems = playbook_problems(['backup_verify'], guide_commands(texts), '\n'.join(texts))
    assert problems == ['docs/ru shows no ansible-playbook command that runs microimpuls.micropvr.backup_verify']


def test_a_missing_readme_command_is_noticed():
    readme = README.read_text(encoding='utf-8')
    command = next(c for c in readme_commands(readme) if c.startswith('ansible-playbook -i '))
    texts = _without(list(_guide().values()), r'^[ \t]*%s\n' % re.escape(command))
    assert command not in guide_commands(texts)
    assert inline_commands('run `ansible-playbook x.yml` and `ansible-galaxy\ncollection build`, not `make x`') == [
        'ansible-playbook x.yml', 'ansible-galaxy collection build']
    with pytest.raises(AssertionError, match='no "## Quick start" section'):
        readme_commands(readme.replace('## Quick start', '## Getting going'))


def test_a_broken_link_is_noticed():
    path = GUIDE_INDEX
    assert broken_links(path, '[x](no-such-file.md)')
    assert broken_links(path, '[x](runbook.md#no-such-heading)')
    assert broken_links(path, '[x](#быстрый-старт)') == []
    assert github_anchor('Переменные, которые стоит знать') == 'переменные-которые-стоит-знать'
