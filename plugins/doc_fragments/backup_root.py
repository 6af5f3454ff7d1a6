# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where the backup sets live, as every module that writes, reads or measures them takes it
    # (rules: module_utils/safepath.py check_private_dir; default: module_utils/common.py).
    DOCUMENTATION = r'''
options:
  backup_root:
    description:
      - Directory that holds the backup sets, one directory per set named by its id (its UTC creation
        time, for example C(20261126T221500Z)).
      - Where a module reads or writes sets, it must be a directory of the collection's own - an absolute
        path that is not C(/) or a system directory, owned by the user the module runs as and not
        writable by group or others - checked before anything else, in check mode too.
    type: path
    default: /var/backups/micropvr
'''
