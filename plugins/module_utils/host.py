# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only queries about a MicroPVR host: dpkg, init scripts, disk space."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import INIT_DIR
from ansible_collections.microimpuls.micropvr.plugins.module_utils.config import (
    MicroPVRConfigError,
    load_config,
    sqlite_paths_from_config,
)

# LSB init-script status codes (LSB core spec, "Init Script Actions").
_LSB_STATUS = {0: 'running', 1: 'dead', 2: 'dead', 3: 'stopped', 4: 'unknown'}

_DPKG_FORMAT = '${Package}\\t${Version}\\t${Architecture}\\t${Installed-Size}\\t${Status}\\n'


def parse_dpkg_query(output):
    """Parse ``dpkg-query -W -f`` output in the _DPKG_FORMAT layout into a dict by package."""
    packages = {}
    for line in output.splitlines():
        fields = line.split('\t')
        if len(fields) != 5:
            continue
        name, version, arch, installed_size, status = fields
        # Status is "want flag state", e.g. "install ok installed" or
        # "deinstall ok config-files"; only "installed" means usable files.
        state = status.split()[-1] if status.split() else 'unknown'
        packages[name] = dict(
            version=version or None,
            architecture=arch or None,
            installed_size_kib=int(installed_size) if installed_size.isdigit() else None,
            status=status,
            installed=state == 'installed',
            state=state,
        )
    return packages


def package_versions(module, names):
    """Installed state of each package in ``names`` (absent ones included), from one
    ``dpkg-query``; a name given twice (a package that is also a tool) is asked once."""
    names = list(dict.fromkeys(names))
    result = dict((name, dict(version=None, architecture=None, installed_size_kib=None, status='not-installed',
                              installed=False, state='not-installed')) for name in names)
    if not names:
        return result
    dpkg_query = module.get_bin_path('dpkg-query', required=True)
    # dpkg-query exits 1 when one of the packages is unknown; the others are still printed.
    rc, out, err = module.run_command([dpkg_query, '-W', '-f', _DPKG_FORMAT, '--'] + names)
    if rc not in (0, 1):
        module.fail_json(msg='dpkg-query failed (rc=%d): %s' % (rc, err.strip()))
    result.update((name, info) for name, info in parse_dpkg_query(out).items() if name in result)
    return result


def service_state(module, name):
    """State of an init.d service from its ``status`` action (LSB exit codes)."""
    script = os.path.join(INIT_DIR, name)
    if not os.access(script, os.X_OK):
        return dict(init_script=script, exists=False, state='absent', status_rc=None)
    rc, out, err = module.run_command([script, 'status'])
    return dict(init_script=script, exists=True, state=_LSB_STATUS.get(rc, 'unknown'),
                status_rc=rc, status_output=(out + err).strip())


def free_space(path):
    """Free bytes for unprivileged and root writers on the filesystem that holds ``path``.

    ``path`` need not exist yet: the nearest existing parent is measured.
    """
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    stats = os.statvfs(probe)
    return dict(path=path, exists=os.path.isdir(path), measured_at=probe,
                free_bytes=stats.f_bavail * stats.f_frsize,
                total_bytes=stats.f_blocks * stats.f_frsize)


def read_micropvr_config(path):
    """The parsed micropvr.conf with a summary of what the collection uses from it."""
    info = dict(path=path, exists=os.path.isfile(path), valid=False, error=None,
                rpc_enabled=None, rpc_listen_host=None, rpc_listen_port=None, log_path=None,
                sqlite_databases=[])
    if not info['exists']:
        info['error'] = '%s: file not found' % path
        return info, None
    try:
        config = load_config(path)
    except MicroPVRConfigError as exc:
        info['error'] = str(exc)
        return info, None
    info.update(valid=True,
                rpc_enabled=config.get('json-rpc-enabled'),
                rpc_listen_host=config.get('json-rpc-listen-host'),
                rpc_listen_port=config.get('json-rpc-listen-port'),
                log_path=config.get('log-path'),
                sqlite_databases=sqlite_paths_from_config(config))
    return info, config


def discover_sqlite_databases(config_file, configured_paths):
    """SQLite databases of MicroPVR: those the config names plus ``*.db`` next to it."""
    found = list(configured_paths)
    config_dir = os.path.dirname(config_file)
    for candidate in sorted(glob.glob(os.path.join(config_dir, '*.db'))):
        if candidate not in found:
            found.append(candidate)
    return found


def dpkg_audit(module):
    """What ``dpkg --audit`` says is half-installed or half-configured (empty when all is well)."""
    rc, out, err = module.run_command([module.get_bin_path('dpkg', required=True), '--audit'])
    return (out + err).strip()


def gather_facts(module, params, queried=None):
    """``ansible_facts.micropvr`` of the host (micropvr_facts, and micropvr_install's pre-flight
    with facts=true): the keys of ``params`` are micropvr_facts' options. ``queried`` is the
    package_versions() of the packages and tools when the caller already has it."""
    tools = list(params.get('tools') or [])
    if queried is None:
        # One dpkg-query for both lists; a name in both is reported in both.
        queried = package_versions(module, list(params['packages']) + tools)
    packages = dict((name, queried[name]) for name in params['packages'])
    services = dict((name, service_state(module, name)) for name in params['services'])
    config_info, dummy = read_micropvr_config(params['config_file'])
    if params['sqlite_databases']:
        databases = list(params['sqlite_databases'])
    else:
        databases = discover_sqlite_databases(params['config_file'], config_info['sqlite_databases'])
    return dict(
        packages=packages,
        services=services,
        config=config_info,
        sqlite_databases=databases,
        nginx_config=dict(path=params['nginx_config'], exists=os.path.isfile(params['nginx_config'])),
        backup_root=free_space(params['backup_root']),
        tools=dict((name, queried[name]) for name in tools),
        installed=all(info['installed'] for info in packages.values()),
        running=all(info['state'] == 'running' for info in services.values()),
    )
