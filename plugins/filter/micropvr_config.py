# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation: micropvr_config.yml beside this file.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.microimpuls.micropvr.plugins.module_utils.config import MicroPVRConfigError, parse_config


def micropvr_config(text, path='micropvr.conf'):
    """The micropvr.conf in ``text`` (JSON with // and /* */ comments) as a dict."""
    if not isinstance(text, str):
        raise AnsibleFilterError('micropvr_config: expected the text of micropvr.conf, got %s' % type(text).__name__)
    try:
        return parse_config(text, path)
    except MicroPVRConfigError as exc:
        raise AnsibleFilterError('micropvr_config: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'micropvr_config': micropvr_config}
