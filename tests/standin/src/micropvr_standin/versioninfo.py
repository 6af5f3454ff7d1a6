"""Which behaviour each stand-in release has, in each build variant.

One source tree serves every release and variant: ``build.sh`` writes ``_build.py``
(``VERSION = "1.10.0"``, plus ``VARIANT = "strict"`` outside the default variant) into each
package, and everything version- or variant-specific is looked up here.

Variants are build-time knobs for the ways real vendor packages differ from the default
stand-in (see ``VARIANTS`` and tests/standin/README.md).  ``build.sh OUTDIR`` builds the
default variant into OUTDIR and every other one into ``OUTDIR/<variant.subdir>/``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    # Database schema version (PRAGMA user_version) this release reads and writes.
    schema_version: int
    # Ships /usr/sbin/micropvr-migrate and runs it from postinst.
    has_migrate: bool
    # Config keys that this release knows on top of the common ones.
    extra_config_keys: tuple[str, ...] = ()
    # Simulated regression: the load score is reported far above score-max-score, so is_alive is
    # always false although the daemon otherwise works (the "bad release" 1.10.1).
    broken_score: bool = False
    # SQLite journal mode the daemon sets on its databases when it starts ("wal"), or None:
    # leave the files as they are (SQLite's default for a new file is the rollback journal,
    # DELETE; a file left in WAL mode stays in WAL mode, which every release can read).
    journal_mode: str | None = None
    # Build variant this release belongs to (name of a VARIANTS entry).
    variant: str = "default"


RELEASES: dict[str, Release] = {
    "1.9.0": Release("1.9.0", schema_version=1, has_migrate=False),
    "1.10.0": Release(
        "1.10.0", schema_version=2, has_migrate=True, extra_config_keys=("score-max-cpu-la1",)
    ),
    "1.10.1": Release(
        "1.10.1",
        schema_version=2,
        has_migrate=True,
        extra_config_keys=("score-max-cpu-la1",),
        broken_score=True,
    ),
}

# Debian revision of every stand-in package.
DEBIAN_REVISION = "1"


@dataclasses.dataclass(frozen=True)
class Variant:
    """Build-time knobs.  The default variant is the stand-in as it always was."""

    name: str
    # Directory of this variant's flat repository, relative to build.sh's OUTDIR ("" = OUTDIR).
    subdir: str = ""
    # Debian epoch of every package version (0 = none): 1 gives "1:1.10.0-1".
    epoch: int = 0
    # First release whose daemon switches its SQLite databases to WAL (None = never).
    wal_since: str | None = None
    # Every release ships micropvr-migrate and runs it from postinst (not only 1.10+); the tool
    # refuses a database newer than its release in every variant.
    migrate_in_every_release: bool = False
    # Also build the companion package micropvr-control (micropvr_control, the JSON-RPC CLI)
    # with "Depends: micropvr (= <exact version>)".
    companion: bool = False


VARIANTS: dict[str, Variant] = {
    "default": Variant("default"),
    "strict": Variant(
        "strict",
        subdir="strict",
        epoch=1,
        wal_since="1.10",
        migrate_in_every_release=True,
        companion=True,
    ),
}


def vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown stand-in variant {name!r}; known: {', '.join(VARIANTS)}"
        ) from None


def get_release(version: str, variant: str = "default") -> Release:
    """The release ``version`` as built in ``variant`` (its knobs applied)."""
    knobs = get_variant(variant)
    try:
        release = RELEASES[version]
    except KeyError:
        raise ValueError(
            f"unknown stand-in version {version!r}; known: {', '.join(RELEASES)}"
        ) from None
    changes: dict[str, object] = {"variant": knobs.name}
    if knobs.migrate_in_every_release:
        changes["has_migrate"] = True
    if knobs.wal_since is not None and vtuple(version) >= vtuple(knobs.wal_since):
        changes["journal_mode"] = "wal"
    return dataclasses.replace(release, **changes)


def debian_version(version: str, variant: str = "default") -> str:
    """Version field of the packages: "[EPOCH:]UPSTREAM-REVISION"."""
    epoch = get_variant(variant).epoch
    prefix = f"{epoch}:" if epoch else ""
    return f"{prefix}{version}-{DEBIAN_REVISION}"


def deb_filename(package: str, version: str, variant: str = "default") -> str:
    """File name of a .deb as Debian names it: the epoch is not part of it."""
    del variant  # same name in every variant (the epoch never appears in file names)
    return f"{package}_{version}-{DEBIAN_REVISION}_amd64.deb"


def packages(variant: str = "default") -> tuple[str, ...]:
    """The packages built for every release of ``variant``."""
    if get_variant(variant).companion:
        return ("micropvr", "micropvs", "micropvr-control")
    return ("micropvr", "micropvs")


def current_release() -> Release:
    """The release of the installed package (from the generated ``_build`` module)."""
    try:
        from . import _build  # generated by build.sh, not in git
    except ImportError:
        raise RuntimeError(
            "micropvr_standin._build is missing: run the stand-in from a package built by "
            "tests/standin/build.sh"
        ) from None
    return get_release(_build.VERSION, getattr(_build, "VARIANT", "default"))
