# -*- coding: utf-8 -*-
# Copyright: contributors to microimpuls.micropvr
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The external databases of MicroPVR, as every module that touches them takes them
    # (argument spec: module_utils/external_db.py database_argument_spec).
    DOCUMENTATION = r'''
options:
  databases:
    description:
      - External PostgreSQL or MariaDB databases that belong to MicroPVR.
      - Passwords reach the client tools only through a 0600 file (C(PGPASSFILE),
        C(--defaults-extra-file)), never on a command line, and never appear in the output.
    type: list
    elements: dict
    default: []
    suboptions:
      engine:
        description: C(postgresql), or C(mysql) for MySQL and MariaDB.
        type: str
        required: true
        choices: [postgresql, mysql]
      name:
        description: Database name.
        type: str
        required: true
      host:
        description: Server host; the local socket when omitted.
        type: str
      port:
        description: Server port.
        type: int
      socket:
        description: Unix socket directory (PostgreSQL) or file (MariaDB).
        type: path
      login_user:
        description: User to connect as.
        type: str
      login_password:
        description: Password.
        type: str
      login_password_file:
        description: File on the host that holds the password, instead of O(databases[].login_password).
        type: path
requirements:
  - For a PostgreSQL database in O(databases), the PostgreSQL client tools C(pg_dump), C(pg_restore)
    and C(psql) on the host (Debian package C(postgresql-client)).
  - For a MySQL or MariaDB database in O(databases), C(mysqldump) and C(mysql) on the host (Debian
    package C(mariadb-client)).
'''
