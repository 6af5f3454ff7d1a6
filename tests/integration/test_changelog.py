"""The changelog is antsibull-changelog's: fragments and changelog.yaml lint clean, and
CHANGELOG.md is exactly what `antsibull-changelog generate` makes of changelogs/changelog.yaml."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
CHANGELOG = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')


def run(args, cwd):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, '%s failed (rc=%d):\n%s\n%s' % (' '.join(args), proc.returncode,
                                                                proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def test_fragments_lint_clean():
    out = run([CHANGELOG, 'lint'], cwd=ROOT)
    assert not out.strip(), out


def test_changelog_yaml_lints_clean():
    out = run([CHANGELOG, 'lint-changelog-yaml', os.path.join('changelogs', 'changelog.yaml')], cwd=ROOT)
    assert not out.strip(), out


def test_changelog_md_is_generated(tmp_path):
    """Generated in a copy, so the test never rewrites the working tree."""
    shutil.copy(os.path.join(ROOT, 'galaxy.yml'), tmp_path)
    (tmp_path / 'changelogs').mkdir()
    for name in ('config.yaml', 'changelog.yaml'):
        shutil.copy(os.path.join(ROOT, 'changelogs', name), tmp_path / 'changelogs')
    run([CHANGELOG, 'generate'], cwd=str(tmp_path))
    with open(os.path.join(ROOT, 'CHANGELOG.md')) as f:
        committed = f.read()
    assert committed == (tmp_path / 'CHANGELOG.md').read_text(), (
        'CHANGELOG.md differs from what `antsibull-changelog generate` writes: edit fragments, '
        'not CHANGELOG.md, and run antsibull-changelog (release or generate)')
