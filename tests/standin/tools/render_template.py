#!/usr/bin/env python3
"""Build helper for tests/standin/build.sh: release facts and template rendering.

    render_template.py variants                   "NAME SUBDIR" per build variant (SUBDIR "." = OUTDIR)
    render_template.py [--variant NAME] versions  stand-in versions, one per line
    render_template.py [--variant NAME] packages  package names of the variant, one per line
    render_template.py [--variant NAME] info VERSION
                                                  "SCHEMA_VERSION HAS_MIGRATE(yes|no) DEBVERSION"
    render_template.py [--variant NAME] render VERSION IN OUT [KEY=VALUE ...]

The variant (default: "default") selects the knobs of versioninfo.VARIANTS.

Template syntax (line based, so that shell scripts and JSON stay readable):

* ``@since X.Y@rest``  -> ``rest`` only for versions >= X.Y (the line is dropped otherwise);
* ``@until X.Y@rest``  -> ``rest`` only for versions <  X.Y;
* ``@if KEY@rest``     -> ``rest`` only when the value of KEY is "yes" (e.g. ``@if HAS_MIGRATE@``);
* ``@include FILE@``   -> the content of FILE (relative to the template's directory);
* ``@KEY@``            -> VERSION, DEBVERSION (with the variant's epoch), SCHEMA_VERSION,
  HAS_MIGRATE, JOURNAL_MODE ("wal" or "default"), VARIANT or a KEY=VALUE given.

An unknown ``@KEY@`` is an error (catches typos).
"""

from __future__ import annotations

import os
import re
import sys

sys.dont_write_bytecode = True  # keep tests/standin free of generated files (build stamp)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from micropvr_standin import versioninfo  # noqa: E402

_COND = re.compile(r"^@(since|until) (\d+(?:\.\d+)*)@")
_IF = re.compile(r"^@if ([A-Z][A-Z0-9_]*)@")
_INCLUDE = re.compile(r"^@include ([^@]+)@\s*$")
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


vtuple = versioninfo.vtuple


def values_for(version: str, variant: str = "default") -> dict[str, str]:
    release = versioninfo.get_release(version, variant)
    return {
        "VERSION": version,
        "DEBVERSION": versioninfo.debian_version(version, variant),
        "SCHEMA_VERSION": str(release.schema_version),
        "HAS_MIGRATE": "yes" if release.has_migrate else "no",
        "JOURNAL_MODE": release.journal_mode or "default",
        "VARIANT": variant,
    }


def render(text: str, version: str, base_dir: str, extra: dict[str, str] | None = None,
           variant: str = "default") -> str:
    values = values_for(version, variant)
    values.update(extra or {})
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        m = _INCLUDE.match(line)
        if m:
            with open(os.path.join(base_dir, m.group(1)), encoding="utf-8") as f:
                out.append(render(f.read(), version, base_dir, extra, variant))
            continue
        m = _IF.match(line)
        if m:
            if m.group(1) not in values:
                raise KeyError(f"unknown placeholder @if {m.group(1)}@")
            if values[m.group(1)] != "yes":
                continue
            line = line[m.end():]
        m = _COND.match(line)
        if m:
            newer = vtuple(version) >= vtuple(m.group(2))
            if newer != (m.group(1) == "since"):
                continue
            line = line[m.end():]

        def sub(pm: re.Match) -> str:
            key = pm.group(1)
            if key not in values:
                raise KeyError(f"unknown placeholder @{key}@")
            return values[key]

        out.append(_PLACEHOLDER.sub(sub, line))
    return "".join(out)


def main(argv: list[str]) -> int:
    variant = "default"
    if argv[:1] == ["--variant"] and len(argv) >= 2:
        variant, argv = argv[1], argv[2:]
        versioninfo.get_variant(variant)  # unknown -> ValueError
    if argv[:1] == ["variants"]:
        for knobs in versioninfo.VARIANTS.values():
            print(knobs.name, knobs.subdir or ".")
        return 0
    if argv[:1] == ["versions"]:
        print("\n".join(versioninfo.RELEASES))
        return 0
    if argv[:1] == ["packages"]:
        print("\n".join(versioninfo.packages(variant)))
        return 0
    if len(argv) == 2 and argv[0] == "info":
        v = values_for(argv[1], variant)
        print(v["SCHEMA_VERSION"], v["HAS_MIGRATE"], v["DEBVERSION"])
        return 0
    if len(argv) >= 4 and argv[0] == "render":
        version, src, dst = argv[1:4]
        extra = dict(kv.split("=", 1) for kv in argv[4:])
        with open(src, encoding="utf-8") as f:
            text = render(f.read(), version, os.path.dirname(os.path.abspath(src)), extra, variant)
        with open(dst, "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
