#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: micropvr_facts
short_description: Gather facts about MicroPVR on a Debian host
version_added: 0.1.0
description:
  - Reports the installed versions of the MicroPVR packages (full Debian versions, epoch
    included), the state of their init.d services, the paths of C(micropvr.conf), its
    SQLite databases and the micropvs nginx configuration, and the free space under
    O(backup_root) (or under its nearest existing parent).
  - Reads the host only; it never changes anything.
  - "An unreadable or invalid C(micropvr.conf) is reported in C(config.error) as
    C(<file>:<line>: <reason>) rather than failing the module, so that callers can decide."
options:
  packages:
    description: Debian packages that make up MicroPVR on this host.
    type: list
    elements: str
    default: [micropvr, micropvs]
  services:
    description: Init script names under C(/etc/init.d) whose status is reported.
    type: list
    elements: str
    default: [micropvr, micropvs]
  tools:
    description:
      - Further Debian packages whose installed state is reported in C(tools), in the same
        C(dpkg-query) call as O(packages) - the tools a backup needs (the backup role installs
        those that are not installed, and runs no C(apt) when all are).
      - A name dpkg does not know is reported as not installed.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
  facts:
    support: full
requirements:
  - C(dpkg-query) on the host (Debian's C(dpkg)).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - microimpuls.micropvr.attributes.action_group
  - microimpuls.micropvr.backup_root
  - microimpuls.micropvr.micropvr_facts
author:
  - Microimpuls (@microimpuls)
'''

EXAMPLES = r'''
- name: Gather MicroPVR facts
  microimpuls.micropvr.micropvr_facts:

- name: Show the installed micropvr version
  ansible.builtin.debug:
    msg: "{{ ansible_facts.micropvr.packages.micropvr.version }}"

- name: Gather them for a host with a backup root of its own, keeping the result too
  microimpuls.micropvr.micropvr_facts:
    backup_root: /srv/backups/micropvr
  register: gathered

- name: Stop when micropvr.conf does not parse
  ansible.builtin.assert:
    that: gathered.ansible_facts.micropvr.config.valid
    fail_msg: "{{ gathered.ansible_facts.micropvr.config.error }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts under the key C(micropvr).
  returned: always
  type: complex
  contains:
    micropvr:
      description: Everything known about MicroPVR on the host.
      type: dict
      returned: always
      sample:
        packages:
          micropvr: {installed: true, version: 1.9.0-1, architecture: amd64,
                     status: install ok installed, state: installed}
        services:
          micropvr: {init_script: /etc/init.d/micropvr, exists: true, state: running,
                     status_rc: 0}
        config:
          path: /etc/micropvr/micropvr.conf
          exists: true
          valid: true
          error: null
          rpc_enabled: true
          rpc_listen_host: 0.0.0.0
          rpc_listen_port: 4089
          log_path: /var/log/micropvr/micropvr.log
          sqlite_databases: [/etc/micropvr/records.db, /etc/micropvr/tasks.db]
        sqlite_databases: [/etc/micropvr/records.db, /etc/micropvr/tasks.db]
        nginx_config: {path: /usr/local/nginx-micropvr/conf/nginx.conf, exists: true}
        backup_root: {path: /var/backups/micropvr, exists: false, measured_at: /var/backups,
                      free_bytes: 52613349376, total_bytes: 270465425408}
        tools:
          dpkg-repack: {installed: true, version: '1.52', architecture: all,
                        status: install ok installed, state: installed}
        installed: true
        running: true
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.microimpuls.micropvr.plugins.module_utils.common import host_argument_spec
from ansible_collections.microimpuls.micropvr.plugins.module_utils.host import gather_facts


def main():
    argument_spec = host_argument_spec()
    argument_spec.update(tools=dict(type='list', elements='str', default=[]))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=dict(micropvr=gather_facts(module, module.params)))


if __name__ == '__main__':
    main()
