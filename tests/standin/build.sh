#!/usr/bin/env bash
# Build the MicroPVR stand-in packages (every version listed in src/micropvr_standin/versioninfo.py)
# from this source tree into flat apt repositories, one per build variant (versioninfo.VARIANTS):
#
#   tests/standin/build.sh OUTDIR
#
# OUTDIR gets the default variant (micropvr and micropvs .deb files, Packages, Packages.gz and
# Release); OUTDIR/strict/ gets the strict variant (epoch versions, WAL from 1.10, migrate tool
# in every release, the micropvr-control companion package), with its own index.  Containers
# use one of them as
#
#   deb [trusted=yes] file:/srv/micropvr-repo ./
#
# This is a local test fixture repository, unsigned on purpose: trusted=yes is scoped to this
# one source line and never applies to Debian's own (signed) sources.
#
# Reproducible: fixed mtimes (SOURCE_DATE_EPOCH, default below), root:root owners, sorted
# inputs, so two builds give byte-identical .deb files.  Skips all work when OUTDIR already holds
# a build of the same sources, every variant included (stamp file with a hash of tests/standin).
set -euo pipefail

usage() {
    echo "usage: $0 OUTDIR" >&2
    exit 2
}
[[ $# -eq 1 ]] || usage

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
OUTDIR="$(cd "$1" && pwd)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01 00:00:00 UTC
export LC_ALL=C TZ=UTC
export PYTHONDONTWRITEBYTECODE=1
umask 022

for tool in dpkg-deb dpkg-scanpackages python3 gzip sha256sum md5sum; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool is required (dpkg-dev provides dpkg-scanpackages)" >&2
        exit 1
    }
done

TOOL="$HERE/tools/render_template.py"
STAMP="$OUTDIR/.standin-build-stamp"

# Hash of everything that goes into the build: the source tree (paths, modes, contents;
# Python caches excluded), the timestamp and the dpkg-deb version.
source_hash() {
    {
        echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
        dpkg-deb --version | head -n 1
        cd "$HERE"
        find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            sort -z |
            while IFS= read -r -d '' f; do
                printf '%s %s %s\n' "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"
            done
    } | sha256sum | cut -d' ' -f1
}

mapfile -t VERSIONS < <(python3 "$TOOL" versions)
mapfile -t VARIANTS < <(python3 "$TOOL" variants) # "NAME SUBDIR" ("." = OUTDIR itself)
want_stamp="$(source_hash)"

# Files of every variant, relative to OUTDIR (the .deb names carry no epoch, as in Debian).
expected_files() {
    local line name subdir v p
    for line in "${VARIANTS[@]}"; do
        read -r name subdir <<<"$line"
        while read -r p; do
            for v in "${VERSIONS[@]}"; do
                echo "$subdir/${p}_${v}-1_amd64.deb"
            done
        done < <(python3 "$TOOL" --variant "$name" packages)
        for p in Packages Packages.gz Release; do
            echo "$subdir/$p"
        done
    done
}

if [[ -f $STAMP && "$(cat "$STAMP")" == "$want_stamp" ]]; then
    up_to_date=yes
    while read -r f; do
        [[ -f $OUTDIR/$f ]] || up_to_date=no
    done < <(expected_files)
    if [[ $up_to_date == yes ]]; then
        echo "stand-in packages in $OUTDIR are up to date"
        exit 0
    fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/out"

VARIANT=default # the variant being built (set by the loop at the end)
render() { # VERSION SRC DST [KEY=VALUE...]
    python3 "$TOOL" --variant "$VARIANT" render "$@"
}

# Installed-Size the way dpkg-gencontrol counts it: KiB per file (rounded up), 1 per dir/link.
installed_size() {
    find "$1" -path "$1/DEBIAN" -prune -o -mindepth 1 -printf '%y %s\n' |
        awk '{ if ($1 == "f") n += int(($2 + 1023) / 1024); else n += 1 } END { print n + 0 }'
}

# finish ROOT CONTROL_TEMPLATE VERSION OUTFILE: md5sums, control, fixed mtimes, dpkg-deb.
finish() {
    local root="$1" control="$2" version="$3" out="$4"
    (
        cd "$root"
        find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs -r -d '\n' md5sum
    ) >"$root/DEBIAN/md5sums"
    render "$version" "$control" "$root/DEBIAN/control" "INSTALLED_SIZE=$(installed_size "$root")"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    [[ ! -f $root/DEBIAN/conffiles ]] || chmod 0644 "$root/DEBIAN/conffiles"
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
}

build_micropvr() { # VERSION HAS_MIGRATE OUTDIR
    local version="$1" has_migrate="$2" out="$3" src="$HERE/pkg/micropvr"
    local root="$WORK/$VARIANT/micropvr_$version"
    install -d "$root/DEBIAN" "$root/etc/init.d" "$root/etc/micropvr" "$root/etc/logrotate.d" \
        "$root/usr/sbin" "$root/usr/lib/micropvr/micropvr_standin" "$root/usr/share/doc/micropvr"
    install -m 0755 "$src/init.d" "$root/etc/init.d/micropvr"
    render "$version" "$src/micropvr.conf.in" "$root/etc/micropvr/micropvr.conf"
    chmod 0644 "$root/etc/micropvr/micropvr.conf"
    install -m 0644 "$src/logrotate" "$root/etc/logrotate.d/micropvr"
    install -m 0755 "$HERE/src/bin/micropvr" "$root/usr/sbin/micropvr"
    if [[ $has_migrate == yes ]]; then
        install -m 0755 "$HERE/src/bin/micropvr-migrate" "$root/usr/sbin/micropvr-migrate"
    fi
    install -m 0644 "$HERE"/src/micropvr_standin/*.py "$root/usr/lib/micropvr/micropvr_standin/"
    {
        printf '# Generated by tests/standin/build.sh\nVERSION = "%s"\n' "$version"
        [[ $VARIANT == default ]] || printf 'VARIANT = "%s"\n' "$VARIANT"
    } >"$root/usr/lib/micropvr/micropvr_standin/_build.py"
    chmod 0644 "$root/usr/lib/micropvr/micropvr_standin/_build.py"
    install -m 0644 "$HERE/pkg/README.Debian" "$root/usr/share/doc/micropvr/README.Debian"
    local script
    for script in postinst prerm postrm; do
        render "$version" "$src/$script.in" "$root/DEBIAN/$script"
        chmod 0755 "$root/DEBIAN/$script"
    done
    printf '%s\n' /etc/init.d/micropvr /etc/logrotate.d/micropvr /etc/micropvr/micropvr.conf \
        >"$root/DEBIAN/conffiles"
    finish "$root" "$src/control.in" "$version" "$out/micropvr_${version}-1_amd64.deb"
}

build_micropvs() { # VERSION OUTDIR
    local version="$1" out="$2" src="$HERE/pkg/micropvs"
    local root="$WORK/$VARIANT/micropvs_$version"
    install -d "$root/DEBIAN" "$root/etc/init.d" "$root/usr/local/nginx-micropvr/conf" \
        "$root/usr/local/nginx-micropvr/logs" "$root/usr/local/nginx-micropvr/temp" \
        "$root/usr/share/doc/micropvs"
    install -m 0755 "$src/init.d" "$root/etc/init.d/micropvs"
    install -m 0644 "$src/nginx.conf" "$root/usr/local/nginx-micropvr/conf/nginx.conf"
    printf '%s\n' "$version" >"$root/usr/local/nginx-micropvr/VERSION"
    install -m 0644 "$HERE/pkg/README.Debian" "$root/usr/share/doc/micropvs/README.Debian"
    local script
    for script in postinst prerm postrm; do
        render "$version" "$src/$script.in" "$root/DEBIAN/$script"
        chmod 0755 "$root/DEBIAN/$script"
    done
    printf '%s\n' /etc/init.d/micropvs /usr/local/nginx-micropvr/conf/nginx.conf \
        >"$root/DEBIAN/conffiles"
    finish "$root" "$src/control.in" "$version" "$out/micropvs_${version}-1_amd64.deb"
}

# micropvr-control: /usr/bin/micropvr_control, Depends: micropvr (= this exact version).
build_micropvr_control() { # VERSION OUTDIR
    local version="$1" out="$2" src="$HERE/pkg/micropvr-control"
    local root="$WORK/$VARIANT/micropvr-control_$version"
    install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/doc/micropvr-control"
    install -m 0755 "$HERE/src/bin/micropvr_control" "$root/usr/bin/micropvr_control"
    install -m 0644 "$HERE/pkg/README.Debian" "$root/usr/share/doc/micropvr-control/README.Debian"
    finish "$root" "$src/control.in" "$version" "$out/micropvr-control_${version}-1_amd64.deb"
}

# Repository index of DIR: every version of every package (--multiversion), flat layout.
index_repo() { # DIR LABEL
    local dir="$1" label="$2" sum f
    (cd "$dir" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null) >"$dir/Packages"
    gzip -9n <"$dir/Packages" >"$dir/Packages.gz"
    {
        echo "Origin: micropvr-standin"
        echo "Label: $label"
        echo "Suite: standin"
        echo "Codename: standin"
        echo "Date: $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')"
        echo "Architectures: amd64"
        echo "Description: MicroPVR stand-in packages (local test fixture, unsigned)"
        for sum in MD5Sum:md5sum SHA256:sha256sum; do
            echo "${sum%%:*}:"
            for f in Packages Packages.gz; do
                printf ' %s %s %s\n' "$("${sum#*:}" <"$dir/$f" | cut -d' ' -f1)" \
                    "$(stat -c %s "$dir/$f")" "$f"
            done
        done
    } >"$dir/Release"
}

for line in "${VARIANTS[@]}"; do
    read -r VARIANT subdir <<<"$line"
    out="$WORK/out/$subdir"
    mkdir -p "$out" "$WORK/$VARIANT"
    mapfile -t packages < <(python3 "$TOOL" --variant "$VARIANT" packages)
    for version in "${VERSIONS[@]}"; do
        read -r _schema has_migrate _debversion < <(python3 "$TOOL" --variant "$VARIANT" info "$version")
        build_micropvr "$version" "$has_migrate" "$out"
        build_micropvs "$version" "$out"
        if [[ " ${packages[*]} " == *" micropvr-control "* ]]; then
            build_micropvr_control "$version" "$out"
        fi
    done
    label=micropvr-standin
    [[ $VARIANT == default ]] || label="micropvr-standin-$VARIANT"
    index_repo "$out" "$label"
done

# Replace the previous build in OUTDIR (only files this script makes), variant by variant.
rm -f "$STAMP"
for line in "${VARIANTS[@]}"; do
    read -r _name subdir <<<"$line"
    dir="$OUTDIR/$subdir"
    mkdir -p "$dir"
    rm -f "$dir"/micropvr_*_amd64.deb "$dir"/micropvs_*_amd64.deb "$dir"/micropvr-control_*_amd64.deb \
        "$dir/Packages" "$dir/Packages.gz" "$dir/Release"
    find "$WORK/out/$subdir" -maxdepth 1 -type f -exec cp -p {} "$dir/" \;
    chmod 0755 "$dir"
    chmod 0644 "$dir"/*.deb "$dir/Packages" "$dir/Packages.gz" "$dir/Release"
done
echo "$want_stamp" >"$STAMP"
echo "built stand-in packages into $OUTDIR:"
expected_files | grep '\.deb$' | sed 's|^\./||' | (cd "$OUTDIR" && xargs sha256sum --)
