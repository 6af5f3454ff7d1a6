# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: deb_version.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils import debversion


def deb_version(version, operator, other):
    """Whether ``version <operator> other`` holds in dpkg's ordering."""
    try:
        return debversion.satisfies(version, operator, other)
    except ValueError as exc:
        raise AnsibleFilterError('deb_version: %s' % exc)


class TestModule(object):
    def tests(self):
        return {'deb_version': deb_version}
