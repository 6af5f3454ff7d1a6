# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The options that say what the MicroPVR facts (module_utils/host.py gather_facts) read on the
    # host, beyond the packages and services every module documents itself. micropvr_facts
    # gathers them; micropvr_install's pre-flight returns the same facts with facts=true.
    DOCUMENTATION = r'''
options:
  config_file:
    description: Path of the micropvr daemon configuration (JSON with C(//) comments).
    type: path
    default: /etc/micropvr/micropvr.conf
  nginx_config:
    description: Path of the micropvs nginx configuration.
    type: path
    default: /usr/local/nginx-micropvr/conf/nginx.conf
  sqlite_databases:
    description:
      - SQLite database files of MicroPVR.
      - When empty, they are discovered from the C(*-db-path) keys of O(config_file) and the
        C(*.db) files in its directory.
    type: list
    elements: path
    default: []
'''
