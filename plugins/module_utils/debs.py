# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The .deb file of an installed package, so a rollback never needs the vendor repository.

The vendor's repository is reachable only while a support contract runs, so the exact
installed .deb is kept in every backup set. It comes from apt's cache when it is there, else
from the configured apt sources (``apt-get download``), else it is rebuilt from the installed
files with ``dpkg-repack``. Whatever the source, its control fields must name exactly the
installed package, version and architecture.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

APT_ARCHIVES = '/var/cache/apt/archives'


def deb_filename(name, version, architecture):
    """File name apt gives a .deb (an epoch's ':' is stored as '%3a')."""
    return '%s_%s_%s.deb' % (name, version.replace(':', '%3a'), architecture)


def control_fields(module, path):
    """{Package, Version, Architecture} of a .deb, or None when dpkg-deb cannot read it."""
    dpkg_deb = module.get_bin_path('dpkg-deb', required=True)
    rc, out, err = module.run_command([dpkg_deb, '--field', path, 'Package', 'Version', 'Architecture'])
    if rc != 0:
        return None
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(':')
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _matches(module, path, name, version, architecture):
    fields = control_fields(module, path)
    return fields == dict(Package=name, Version=version, Architecture=architecture)


def obtain_deb(module, name, version, architecture, dest_dir, work_dir):
    """Put the .deb of the installed ``name`` into ``dest_dir``; return (path, source).

    ``work_dir`` is scratch space on the same filesystem. Fails the module, naming the
    package and every source tried, when no source gives the right file.
    """
    filename = deb_filename(name, version, architecture)
    destination = os.path.join(dest_dir, filename)
    tried = []

    cached = os.path.join(APT_ARCHIVES, filename)
    if os.path.isfile(cached) and _matches(module, cached, name, version, architecture):
        shutil.copyfile(cached, destination)
        return destination, 'apt-cache'
    tried.append('apt cache (%s)' % ('no %s' % cached if not os.path.isfile(cached) else 'control fields differ'))

    scratch = os.path.join(work_dir, 'deb-%s' % name)
    os.mkdir(scratch, 0o700)
    try:
        apt_get = module.get_bin_path('apt-get')
        if apt_get:
            rc, out, err = module.run_command([apt_get, 'download', '-q', '%s:%s=%s' % (name, architecture, version)],
                                              cwd=scratch)
            found = os.path.join(scratch, filename)
            if rc == 0 and os.path.isfile(found) and _matches(module, found, name, version, architecture):
                shutil.move(found, destination)
                return destination, 'apt-download'
            tried.append('apt-get download (%s)' % ((err or out).strip().splitlines() or ['rc=%d' % rc])[-1])
        else:
            tried.append('apt-get download (apt-get not found)')

        dpkg_repack = module.get_bin_path('dpkg-repack')
        if dpkg_repack:
            rc, out, err = module.run_command([dpkg_repack, name], cwd=scratch)
            built = [f for f in os.listdir(scratch) if f.endswith('.deb')]
            if rc == 0 and len(built) == 1 and _matches(module, os.path.join(scratch, built[0]),
                                                        name, version, architecture):
                shutil.move(os.path.join(scratch, built[0]), destination)
                return destination, 'dpkg-repack'
            tried.append('dpkg-repack (%s)' % ((err or out).strip().splitlines() or ['rc=%d' % rc])[-1])
        else:
            tried.append('dpkg-repack (not installed: apt-get install dpkg-repack)')
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    module.fail_json(msg='cannot save the installed .deb of %s %s (%s): tried %s'
                         % (name, version, architecture, '; '.join(tried)))


def estimated_size(module, name, version, architecture, installed_size_kib):
    """Bytes the saved .deb will take: the cached file's size, else the installed size."""
    cached = os.path.join(APT_ARCHIVES, deb_filename(name, version, architecture))
    if os.path.isfile(cached):
        return os.path.getsize(cached)
    return int(installed_size_kib or 0) * 1024


def relation_names(clause):
    """Package names of one Depends clause (``a (>= 1) | b:any``), architecture qualifiers dropped."""
    names = []
    for alternative in clause.split('|'):
        token = alternative.strip().split('(')[0].split('[')[0].split('<')[0].strip()
        if token:
            names.append(token.split(':')[0])
    return names


def external_dependencies(control, own_names):
    """The Pre-Depends and Depends clauses of saved packages that packages outside the set satisfy.

    ``control`` maps each package to its control fields ({'Pre-Depends': ..., 'Depends': ...});
    a clause that names one of ``own_names`` (the set's own packages, for example a companion
    pinned to ``micropvr (= 1:1.10.0-1)``) is left out: the saved .deb files provide it, and apt
    would take another version from its sources. Returns the clauses in order, each once, as
    ``apt-get satisfy`` takes them.
    """
    own = set(own_names)
    clauses = []
    for name in sorted(control):
        fields = control[name] or {}
        for field in ('Pre-Depends', 'Depends'):
            for clause in (fields.get(field) or '').split(','):
                clause = ' '.join(clause.split())
                if not clause or own.intersection(relation_names(clause)) or clause in clauses:
                    continue
                clauses.append(clause)
    return clauses


def dependency_fields(module, path):
    """{'Pre-Depends': ..., 'Depends': ...} of a .deb (empty strings when a field is absent)."""
    dpkg_deb = module.get_bin_path('dpkg-deb', required=True)
    fields = {}
    for field in ('Pre-Depends', 'Depends'):
        rc, out, err = module.run_command([dpkg_deb, '--field', path, field])
        if rc != 0:
            raise ValueError('dpkg-deb cannot read %s: %s' % (path, (err or out).strip()))
        fields[field] = out.strip()
    return fields
