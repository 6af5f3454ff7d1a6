# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The suboptions of the health option of the modules that check health after their change
    # (micropvr_restore, micropvr_install): the probe options of module_utils/health.py
    # probe_argument_spec. Each module documents health's description and type itself; Ansible
    # merges this fragment's suboptions under it.
    DOCUMENTATION = r'''
options:
  health:
    suboptions:
      rpc_host:
        description: As O(microimpuls.micropvr.micropvr_health#module:rpc_host).
        type: str
        default: 127.0.0.1
      rpc_port:
        description: As O(microimpuls.micropvr.micropvr_health#module:rpc_port).
        type: int
        default: 4089
      http_url:
        description: As O(microimpuls.micropvr.micropvr_health#module:http_url).
        type: str
        default: http://127.0.0.1:8080/nginx-stats
      nginx_config:
        description: As O(microimpuls.micropvr.micropvr_health#module:nginx_config).
        type: path
        default: /usr/local/nginx-micropvr/conf/nginx.conf
      nginx_binary:
        description: As O(microimpuls.micropvr.micropvr_health#module:nginx_binary).
        type: path
        default: /usr/sbin/nginx
      timeout:
        description: As O(microimpuls.micropvr.micropvr_health#module:timeout).
        type: float
        default: 5
      retries:
        description: As O(microimpuls.micropvr.micropvr_health#module:retries).
        type: int
        default: 1
      delay:
        description: As O(microimpuls.micropvr.micropvr_health#module:delay).
        type: float
        default: 3
'''
