# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where micropvr's JSON-RPC 2.0 API listens (json-rpc-listen-host/-port in micropvr.conf).
    DOCUMENTATION = r'''
options:
  rpc_host:
    description: Address of micropvr's JSON-RPC API (raw TCP, not HTTP).
    type: str
    default: 127.0.0.1
  rpc_port:
    description: Port of micropvr's JSON-RPC API (C(json-rpc-listen-port)).
    type: int
    default: 4089
'''
