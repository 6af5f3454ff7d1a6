#!/usr/bin/env bash
# ansible-test sanity over the collection as it ships: the tarball built into $1 (make tarball),
# installed fresh under build/sanity/ansible_collections/microimpuls/micropvr.
#
# --venv: each sanity test runs in its own virtualenv with the exact linters (pylint, pycodestyle,
# voluptuous, ...) that this ansible-core pins, created from PyPI on first use and reused after
# (~/.ansible/test/venv). --docker needs the quay.io test images, which are not reachable here;
# --local would need those pins installed into the project's venv, where they would clash with
# ansible-lint's and molecule's.
# --python 3.11 only: managed hosts are Debian 12/13 (tests/config.yml python_requires >=3.11) and
# 3.11 is the only interpreter on the test machine; the tests that cover every Python version
# (compile, import) use the controller and module versions that config allows.
# No tests/sanity/ignore-*.txt is written: the collection must pass without ignores.
set -euo pipefail

tarball_dir=${1:?usage: sanity.sh <directory holding the built collection tarball> [ansible-test sanity options]}
shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VENV_BIN:-$repo/.venv/bin}
root=$repo/build/sanity

shopt -s nullglob
tarballs=("$tarball_dir"/microimpuls-micropvr-*.tar.gz)
if (( ${#tarballs[@]} != 1 )); then
  echo "sanity.sh: expected exactly one microimpuls-micropvr-*.tar.gz in $tarball_dir, found ${#tarballs[@]}" >&2
  exit 2
fi

rm -rf "$root"
mkdir -p "$root"
ANSIBLE_COLLECTIONS_PATH=$root "$bin/ansible-galaxy" collection install --no-deps --force -p "$root" "${tarballs[0]}" >/dev/null
collection=$root/ansible_collections/microimpuls/micropvr
# ansible-galaxy install leaves its own bookkeeping next to the content; it is not shipped.
rm -f "$collection/MANIFEST.json.orig"

# The sanity configuration is not shipped content (tests/ is build_ignored); add it for the run.
mkdir -p "$collection/tests"
cp "$repo/tests/config.yml" "$collection/tests/config.yml"

# ansible-test takes its file list from version control and would otherwise find the project's
# own git repository above build/, where build/ is ignored, and see no files at all.
# ansible-test keeps its own venv and results under tests/output; they are not content to check.
git -C "$collection" init --quiet
echo '/tests/output/' >> "$collection/.git/info/exclude"
git -C "$collection" add --all

# ansible-test creates each venv without pip and bootstraps pip with a get-pip.py script that it
# downloads from ci-files.testing.ansible.com, which is not reachable here (only PyPI is). It first
# looks in its cache, so when nothing is cached yet put an equivalent there: pip from the venv's own
# ensurepip, then pip install of exactly what ansible-test asked for (the pinned pip), from PyPI.
pip_version=$("$bin/python" - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / '_internal' / 'python_requirements.py'
match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
print(match.group(1) if match else '')
PY
)
if [[ -z $pip_version ]]; then
  echo "sanity.sh: cannot find the pip version this ansible-test bootstraps (python_requirements.py changed?)" >&2
  exit 2
fi
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ ! -s $get_pip ]]; then
  mkdir -p "$(dirname "$get_pip")"
  cat > "$get_pip.tmp" <<'PY'
# Written by microimpuls.micropvr tests/tools/sanity.sh in place of get-pip.py, whose host is not
# reachable: ensurepip's bundled pip, then "pip install <the arguments ansible-test passes>".
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
PY
  mv "$get_pip.tmp" "$get_pip"
fi

cd "$collection"
PATH=$bin:$PATH "$bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
