#!/usr/bin/env bash
# Build the Debian base images used by Molecule, without any image registry:
# debootstrap a minbase rootfs from Debian's mirror and `docker import` it.
#
# Usage: tests/testbed/build-images.sh [--force] [--selftest] [FLAVOUR...]
#   FLAVOUR     one of the flavours defined below (default: debian12 debian13)
#   --force     rebuild even if an image with the same recipe hash exists
#   --selftest  afterwards run selftest.sh (tini/service/zombie check) on them
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#      DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security)
#
# Each image carries the label org.microimpuls.testbed.recipe = sha256 over
# (suite, mirrors, arch, package list, this script's content). An image whose
# tag and label match is not rebuilt.
# Needs root, debootstrap and a running docker engine: see host-setup.sh.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
SCRIPT_PATH="${SCRIPT_DIR}/$(basename -- "${BASH_SOURCE[0]}")"
readonly SCRIPT_DIR SCRIPT_PATH

readonly IMAGE_REPO=micropvr-testbed
readonly RECIPE_LABEL=org.microimpuls.testbed.recipe
readonly ARCH=amd64
readonly VARIANT=minbase
readonly HOST_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly IMAGE_CMD='["/usr/bin/tini","-s","--","sleep","infinity"]'
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
readonly DEBIAN_MIRROR DEBIAN_SECURITY_MIRROR

# ============================ the recipes =====================================
# Packages of every test-bed image. python3-apt: Ansible's apt module needs it;
# tini: PID 1 that reaps the daemons that services started by `service` leave;
# sudo: the playbooks become root as they do on real hosts.
BASE_PACKAGES=(
    python3 python3-apt tini nginx sqlite3 procps iproute2
    ca-certificates gnupg less netcat-openbsd curl sudo
)
# One image flavour = one line: flavour NAME SUITE PACKAGE...
# The image is tagged micropvr-testbed:NAME.
declare -A FLAVOUR_SUITE=() FLAVOUR_PACKAGES=()
flavour() {
    local name=$1 suite=$2
    shift 2
    FLAVOUR_SUITE[${name}]=${suite}
    FLAVOUR_PACKAGES[${name}]="$*"
}
flavour debian12    bookworm "${BASE_PACKAGES[@]}"
flavour debian13    trixie   "${BASE_PACKAGES[@]}"
# With the external database servers some MicroPVR sites use (each release's own versions).
DB_PACKAGES=(postgresql mariadb-server python3-psycopg2 python3-pymysql)
flavour debian12-db bookworm "${BASE_PACKAGES[@]}" "${DB_PACKAGES[@]}"
flavour debian13-db trixie   "${BASE_PACKAGES[@]}" "${DB_PACKAGES[@]}"
DEFAULT_FLAVOURS=(debian12 debian13 debian12-db debian13-db)
# ==============================================================================

log() { printf 'build-images: %s\n' "$*"; }
die() { printf 'build-images: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${SCRIPT_PATH}"
    printf 'Defined flavours: %s\n' "${!FLAVOUR_SUITE[*]}"
}

# --- temp dirs: always unmounted and removed, even on failure -----------------
WORKDIRS=()
umount_under() { # unmount everything mounted below $1, deepest first
    local dir=$1 mp
    [[ -d ${dir} ]] || return 0
    while read -r mp; do
        umount -l "${mp}" 2>/dev/null || printf 'build-images: WARNING: could not unmount %s\n' "${mp}" >&2
    done < <(awk -v d="${dir}/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
cleanup() {
    local d
    for d in "${WORKDIRS[@]}"; do
        [[ -d ${d} ]] || continue
        umount_under "${d}"
        # --one-file-system: never descend into something still mounted
        rm -rf --one-file-system -- "${d}" || printf 'build-images: WARNING: could not remove %s\n' "${d}" >&2
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------
recipe_hash() { # recipe_hash FLAVOUR
    local name=$1 pkgs
    pkgs=$(tr ' ' '\n' <<<"${FLAVOUR_PACKAGES[${name}]}" | sed '/^$/d' | sort -u | tr '\n' ' ')
    {
        printf 'suite=%s\n' "${FLAVOUR_SUITE[${name}]}"
        printf 'mirror=%s\nsecurity-mirror=%s\n' "${DEBIAN_MIRROR}" "${DEBIAN_SECURITY_MIRROR}"
        printf 'arch=%s\nvariant=%s\n' "${ARCH}" "${VARIANT}"
        printf 'packages=%s\n' "${pkgs}"
        cat -- "${SCRIPT_PATH}"
    } | sha256sum | cut -d' ' -f1
}

image_label() { # image_label TAG -> recipe label value, empty if no such image
    docker image inspect -f "{{ index .Config.Labels \"${RECIPE_LABEL}\" }}" "$1" 2>/dev/null || true
}

in_chroot() { # in_chroot ROOTFS CMD... (plain environment, no host locale)
    local rootfs=$1
    shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive chroot "${rootfs}" "$@"
}

write_sources() { # write_sources ROOTFS SUITE
    local rootfs=$1 suite=$2 keyring
    # trixie's keyring package also ships .pgp names; take what the rootfs has
    for keyring in /usr/share/keyrings/debian-archive-keyring.gpg /usr/share/keyrings/debian-archive-keyring.pgp; do
        [[ -e ${rootfs}${keyring} ]] && break
    done
    [[ -e ${rootfs}${keyring} ]] || die "${suite}: no debian-archive-keyring in the rootfs (/usr/share/keyrings)"
    rm -f -- "${rootfs}/etc/apt/sources.list"
    mkdir -p -- "${rootfs}/etc/apt/sources.list.d"
    cat >"${rootfs}/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${DEBIAN_MIRROR}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: ${keyring}

Types: deb
URIs: ${DEBIAN_SECURITY_MIRROR}
Suites: ${suite}-security
Components: main
Signed-By: ${keyring}
EOF
}

build_flavour() { # build_flavour FLAVOUR
    local name=$1 suite tag hash old_id workdir rootfs pkgs start id size
    suite=${FLAVOUR_SUITE[${name}]}
    tag="${IMAGE_REPO}:${name}"
    start=${SECONDS}
    hash=$(recipe_hash "${name}")

    if [[ ${FORCE} -eq 0 && $(image_label "${tag}") == "${hash}" ]]; then
        log "${tag}: up to date (recipe ${hash:0:12}), skipping build"
        return 0
    fi
    old_id=$(docker image inspect -f '{{.Id}}' "${tag}" 2>/dev/null || true)
    log "${tag}: building from ${suite} (${DEBIAN_MIRROR}, recipe ${hash:0:12})"

    workdir=$(mktemp -d "/var/tmp/${IMAGE_REPO}-${name}.XXXXXX")
    WORKDIRS+=("${workdir}")
    rootfs="${workdir}/rootfs"
    pkgs=${FLAVOUR_PACKAGES[${name}]}

    # 1. debootstrap (the log goes to a file; its tail is shown on failure)
    log "${tag}: debootstrap --variant=${VARIANT} --arch=${ARCH} ${suite} (+ ${pkgs})"
    if ! debootstrap --variant="${VARIANT}" --arch="${ARCH}" --components=main \
        --keyring="${HOST_KEYRING}" --include="${pkgs// /,}" \
        "${suite}" "${rootfs}" "${DEBIAN_MIRROR}" >"${workdir}/debootstrap.log" 2>&1; then
        printf 'build-images: ERROR: %s: debootstrap of %s failed; last lines of its log:\n' "${tag}" "${suite}" >&2
        tail -n 25 "${workdir}/debootstrap.log" >&2
        [[ -f ${rootfs}/debootstrap/debootstrap.log ]] && tail -n 25 "${rootfs}/debootstrap/debootstrap.log" >&2
        if grep -qiE 'unknown key|NO_PUBKEY|Release signature|EXPKEYSIG' "${workdir}/debootstrap.log"; then
            printf 'build-images: hint: %s lacks the keys %s is signed with; run %s/host-setup.sh (upgrades debian-archive-keyring)\n' \
                "${HOST_KEYRING}" "${suite}" "${SCRIPT_DIR}" >&2
        fi
        exit 1
    fi
    log "${tag}: debootstrap done ($((SECONDS - start))s)"

    # 2. apt sources for suite, -updates and -security, then bring the rootfs
    #    up to date with them. A temporary policy-rc.d keeps maintainer scripts
    #    from starting daemons in the build chroot; it is removed afterwards so
    #    that in containers invoke-rc.d may start services.
    write_sources "${rootfs}" "${suite}"
    # keep the apt lists compressed (apt stores them as .lz4) and without
    # translations: ~20 MB instead of ~85 MB; apt works the same
    cat >"${rootfs}/etc/apt/apt.conf.d/90micropvr-testbed" <<'EOF'
// micropvr test bed image: compact apt lists
Acquire::GzipIndexes "true";
Acquire::Languages "none";
EOF
    find "${rootfs}/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
    cp -L /etc/resolv.conf "${rootfs}/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"${rootfs}/usr/sbin/policy-rc.d"
    chmod 0755 "${rootfs}/usr/sbin/policy-rc.d"
    mount -t proc proc "${rootfs}/proc"
    log "${tag}: apt-get update + dist-upgrade from ${suite}, ${suite}-updates, ${suite}-security"
    if ! { in_chroot "${rootfs}" apt-get -q update \
        && in_chroot "${rootfs}" apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade; } \
        >"${workdir}/apt.log" 2>&1; then
        printf 'build-images: ERROR: %s: apt-get update/dist-upgrade in the rootfs failed:\n' "${tag}" >&2
        tail -n 25 "${workdir}/apt.log" >&2
        exit 1
    fi
    umount "${rootfs}/proc"

    # 3. clean: no .debs, no policy-rc.d, no host resolv.conf; keep apt lists
    rm -f -- "${rootfs}/usr/sbin/policy-rc.d"
    rm -f -- "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/cache/apt/archives/partial/* \
        "${rootfs}"/var/cache/apt/*.bin
    rm -rf -- "${rootfs}/debootstrap"
    : >"${rootfs}/etc/resolv.conf"
    printf '%s\n' "${IMAGE_REPO}" >"${rootfs}/etc/hostname"
    [[ -n $(ls -A "${rootfs}/var/lib/apt/lists") ]] || die "${tag}: apt lists are empty after cleanup"
    [[ ! -e ${rootfs}/usr/sbin/policy-rc.d ]] || die "${tag}: policy-rc.d still present"

    # 4. import
    log "${tag}: docker import"
    tar --numeric-owner --xattrs -C "${rootfs}" -cf - . \
        | docker import \
            --change "CMD ${IMAGE_CMD}" \
            --change 'ENV container=docker' \
            --change "LABEL ${RECIPE_LABEL}=${hash}" \
            --change "LABEL org.microimpuls.testbed.suite=${suite}" \
            --message "micropvr test bed ${name}: debootstrap ${suite} ${VARIANT} ${ARCH}" \
            - "${tag}" >/dev/null \
        || die "${tag}: docker import failed"

    # the temp dir is no longer needed; free the space now
    umount_under "${workdir}"
    rm -rf --one-file-system -- "${workdir}"

    # 5. verify
    docker run --rm "${tag}" python3 -c 'import apt' || die "${tag}: python3 -c 'import apt' failed"
    docker run --rm "${tag}" nginx -v >/dev/null 2>&1 || die "${tag}: nginx -v failed"
    docker run --rm "${tag}" tini --version >/dev/null || die "${tag}: tini --version failed"
    docker run --rm "${tag}" sh -c 'apt-get -q update >/tmp/u.log 2>&1 || { cat /tmp/u.log; exit 1; }' \
        || die "${tag}: apt-get update inside the image failed (sources.list / network)"
    [[ $(image_label "${tag}") == "${hash}" ]] || die "${tag}: recipe label missing after import"

    id=$(docker image inspect -f '{{.Id}}' "${tag}")
    size=$(docker image inspect -f '{{.Size}}' "${tag}")
    log "${tag}: built and verified in $((SECONDS - start))s: id ${id}, size $(numfmt --to=iec "${size}")B"
    if [[ -n ${old_id} && ${old_id} != "${id}" ]]; then
        if docker image rm "${old_id}" >/dev/null 2>&1; then
            log "${tag}: removed the previous image ${old_id:7:12}"
        else
            log "${tag}: previous image ${old_id:7:12} kept (still in use)"
        fi
    fi
}

# --- main ---------------------------------------------------------------------
FORCE=0
SELFTEST=0
flavours=()
for arg in "$@"; do
    case ${arg} in
        --force) FORCE=1 ;;
        --selftest) SELFTEST=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: ${arg}" ;;
        *)
            [[ -n ${FLAVOUR_SUITE[${arg}]+set} ]] || die "unknown flavour '${arg}' (defined: ${!FLAVOUR_SUITE[*]})"
            flavours+=("${arg}")
            ;;
    esac
done
((${#flavours[@]})) || flavours=("${DEFAULT_FLAVOURS[@]}")

[[ ${EUID} -eq 0 ]] || die "must run as root (debootstrap, chroot, mount)"
for cmd in debootstrap docker chroot tar sha256sum flock numfmt; do
    command -v "${cmd}" >/dev/null 2>&1 || die "'${cmd}' not found: run ${SCRIPT_DIR}/host-setup.sh first"
done
[[ -r ${HOST_KEYRING} ]] || die "${HOST_KEYRING} missing: run ${SCRIPT_DIR}/host-setup.sh first"
docker info >/dev/null 2>&1 || die "the docker engine does not answer 'docker info': run ${SCRIPT_DIR}/host-setup.sh first"

# one build at a time on this host (parallel runs would fight over the tags)
exec 9>"/var/lock/${IMAGE_REPO}-build.lock"
flock -w 1800 9 || die "another build-images.sh still holds /var/lock/${IMAGE_REPO}-build.lock after 30 min"

tags=()
for f in "${flavours[@]}"; do tags+=("${IMAGE_REPO}:${f}"); done

total_start=${SECONDS}
for f in "${flavours[@]}"; do
    build_flavour "${f}"
done
log "images ready in $((SECONDS - total_start))s: ${tags[*]}"

if ((SELFTEST)); then
    "${SCRIPT_DIR}/selftest.sh" "${tags[@]}"
fi
