# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The keys that seal and authenticate backup sets, as every module that writes or reads
    # sets takes them (argument spec: module_utils/backupset.py seal_argument_spec).
    DOCUMENTATION = r'''
options:
  seal_key:
    description:
      - The key (64 hex digits) that seals the manifests of the sets this host takes and
        authenticates them, instead of the host's own key file C(seal.key) in its state directory (O(state_dir)).
      - Supply it from Ansible Vault to give a fleet one key, or to keep the key off the host.
      - The key file is created (random, mode 0600) by the first backup when this is not set.
    type: str
  trusted_seal_keys:
    description:
      - Further keys whose seals are accepted when a set is checked or restored, never used
        to seal. For a set copied from another host, give that host's key here.
    type: list
    elements: str
    default: []
notes:
  - A set's C(manifest.json) carries an HMAC-SHA256 of its content under the seal key. A set whose
    seal does not verify (edited, resealed without the key, from another host, or of format 1)
    is C(tampered).
'''
