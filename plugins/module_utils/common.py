# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Defaults and argument specs shared by the collection's modules.

The micropvr role's ``meta/argument_specs.yml`` carries the same defaults for the
``micropvr_*`` variables; tests/unit/test_role_interface.py keeps them equal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

DEFAULT_PACKAGES = ['micropvr', 'micropvs']
DEFAULT_SERVICES = ['micropvr', 'micropvs']
DEFAULT_CONFIG_FILE = '/etc/micropvr/micropvr.conf'
DEFAULT_NGINX_CONFIG = '/usr/local/nginx-micropvr/conf/nginx.conf'
DEFAULT_CONFIG_PATHS = ['/etc/micropvr', '/usr/local/nginx-micropvr/conf']
DEFAULT_BACKUP_ROOT = '/var/backups/micropvr'
INIT_DIR = '/etc/init.d'


def host_argument_spec():
    """Options that say where MicroPVR lives on a host (used by every module)."""
    return dict(
        packages=dict(type='list', elements='str', default=list(DEFAULT_PACKAGES)),
        services=dict(type='list', elements='str', default=list(DEFAULT_SERVICES)),
        config_file=dict(type='path', default=DEFAULT_CONFIG_FILE),
        nginx_config=dict(type='path', default=DEFAULT_NGINX_CONFIG),
        sqlite_databases=dict(type='list', elements='path', default=[]),
        backup_root=dict(type='path', default=DEFAULT_BACKUP_ROOT),
    )


def version_lines(versions):
    """``name version`` lines, sorted by package name, for a diff of package versions."""
    return ['%s %s' % (name, versions[name] or '(not installed)') for name in sorted(versions)]


def text_diff(before_lines, after_lines, before_header, after_header):
    """A module's ``diff`` result as Ansible's diff callback shows it: a unified diff of two
    texts, one line per item, under a header for each side."""
    return dict(before=''.join(line + '\n' for line in before_lines),
                after=''.join(line + '\n' for line in after_lines),
                before_header=before_header, after_header=after_header)


class Timings(object):
    """How long each part of a module's work took, in seconds (its ``step_seconds`` result):
    ``start(name)`` ends the part that ran and starts ``name`` (and returns it, the step named in
    a failure); a part started again adds to its time."""

    def __init__(self):
        self.seconds = {}
        self._name, self._started = None, None

    def start(self, name):
        self.stop()
        self._name, self._started = name, time.time()
        return name

    def stop(self):
        if self._name is not None:
            self.seconds[self._name] = round(self.seconds.get(self._name, 0.0) + time.time() - self._started, 3)
            self._name = None
