# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The collection's directory on a host, as every module that keeps state there takes it
    # (rules: module_utils/safepath.py check_private_dir).
    DOCUMENTATION = r'''
options:
  state_dir:
    description:
      - The collection's directory on the host - the history C(history.jsonl), the host lock, the seal
        key C(seal.key) and private work directories for credential files (C(work/)); created 0700,
        its missing parents 0755.
      - It must be a directory of the collection's own, checked before anything else, in check mode
        too. That is an absolute path, not C(/) or a system directory such as C(/tmp), C(/var) or C(/home)
        (also after symbolic links and C(..) are resolved), not a symbolic link, owned by the user the
        module runs as, not writable by group or others, and inside directories nobody else may
        change. An existing directory is never chmodded.
    type: path
    default: /var/lib/microimpuls-micropvr
'''
