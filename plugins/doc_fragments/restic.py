# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The off-host restic repository, as every module that uses it takes it
    # (argument spec and rules: module_utils/restic.py restic_argument_spec, repository_kind).
    DOCUMENTATION = r'''
options:
  repository:
    description:
      - The restic repository that holds the off-host copies.
      - An absolute local path (for example a mounted share), C(sftp:[user@]host:/path),
        C(s3:[https://]host/bucket[/prefix]) or C(rest:http(s)://[user:password@]host[:port]/[path]).
        Other restic backends are refused.
      - It reaches restic only through its environment (C(RESTIC_REPOSITORY)), never on a command line.
        A password written in a C(rest:) URL is masked in every message and result.
    type: str
    required: true
  password:
    description:
      - The repository's password, for example from Ansible Vault.
      - restic gets it only through a 0600 file in a private work directory under O(state_dir)
        (C(RESTIC_PASSWORD_FILE)), removed when the module ends; never on a command line, never in
        the output.
      - It must not begin or end with blanks (restic strips them from a password file).
      - Exactly one of O(password) and O(password_file) is required.
    type: str
  password_file:
    description:
      - A file on the host that holds the repository's password, owned by root (or the user the
        module runs as) with mode 0600 or 0400; passed to restic as it is.
    type: path
  backend_env:
    description:
      - Environment variables for the backend, for example C(AWS_ACCESS_KEY_ID) and
        C(AWS_SECRET_ACCESS_KEY) for C(s3:). Given to restic's environment only; their values are masked.
      - The C(RESTIC_REPOSITORY*), C(RESTIC_PASSWORD*), C(RESTIC_KEY_HINT) and C(RESTIC_CACHE_DIR)
        variables are set by the module and refused here.
    type: dict
    default: {}
requirements:
  - restic on the host (Debian package C(restic), 0.14 or later).
notes:
  - restic's cache lives in C(restic-cache) under O(state_dir).
'''
