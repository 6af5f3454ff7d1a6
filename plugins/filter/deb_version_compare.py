# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: deb_version_compare.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils import debversion


def deb_version_compare(version, other):
    """-1, 0 or 1 as dpkg orders ``version`` and ``other``."""
    try:
        return debversion.compare(version, other)
    except ValueError as exc:
        raise AnsibleFilterError('deb_version_compare: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'deb_version_compare': deb_version_compare}
