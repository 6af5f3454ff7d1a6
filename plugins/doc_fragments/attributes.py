# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Attributes every module of the collection shares; the generic ones (check_mode, diff_mode,
    # platform, facts) come from ansible.builtin.action_common_attributes.
    DOCUMENTATION = r'''
options: {}
'''

    # The group is defined in meta/runtime.yml action_groups; tests/unit/test_runtime_metadata.py
    # checks that every module is in it.
    ACTION_GROUP = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/microimpuls.micropvr.micropvr) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - microimpuls.micropvr.micropvr
'''
