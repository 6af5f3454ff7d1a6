"""external_db.restore: MariaDB imports into a scratch database, compares, swaps in with one RENAME TABLE
and swaps back on failure; PostgreSQL restores in one transaction and compares. Against a fake server
that keeps databases, tables, views, triggers, routines and events and obeys MariaDB's rules for
RENAME TABLE (atomic; no view and no table with triggers changes database)."""

import binascii
import copy
import os
import re

import pytest

from fake_module import FailJson, FakeModuleBase

from ansible_collections.microimpuls.micropvr.plugins.module_utils import external_db
from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    HOLDING_SUFFIX,
    SCRATCH_SUFFIX,
    dump_digests,
    mysql_values,
    quote_name,
    restore,
    work_database_name,
)

IDENT = r'`((?:[^`]|``)+)`'
QUALIFIED = IDENT + r'\.' + IDENT


def unquote(text):
    return text.replace('``', '`')


def empty_database():
    return dict(tables={}, views={}, triggers={}, routines={}, events={})


class ServerError(Exception):
    pass


class FakeMariaDB(object):
    """What a MariaDB server and its mysql/mysqldump clients do with the statements restore() sends.

    The dump format is mysqldump's, reduced to one statement per line: CREATE TABLE `t` ( ... );
    INSERT INTO `t` VALUES (...),(...); CREATE VIEW `v` AS ...; CREATE TRIGGER `tr` ... ON `t` ...;
    CREATE PROCEDURE|FUNCTION `p` ...; CREATE EVENT `e` ...
    """

    def __init__(self, databases):
        self.databases = copy.deepcopy(databases)
        self.log = []           # (tool, database, text) of every client run, failed or not
        self.calls = 0
        self.fail_call = None   # index of the client run that fails
        self.fail_after = False  # it fails after doing its work (a lost connection)
        self.rename_error = None  # what the server answers to RENAME TABLE

    # --- statements -------------------------------------------------------------------------------

    def db(self, name):
        if name not in self.databases:
            raise ServerError("ERROR 1049 (42000): Unknown database '%s'" % name)
        return self.databases[name]

    def run_sql(self, text, database, force=False):
        lines = iter(text.splitlines())
        for line in lines:
            line = line.strip()
            if not line or line.startswith('--') or line.startswith('/*'):
                continue
            if line.startswith('CREATE TABLE ') and line.endswith('('):
                for rest in lines:
                    if rest.startswith(')'):
                        break
            for statement in ([line] if line.startswith('INSERT') else re.split(r'(?<=;)\s+', line)):
                try:
                    self.statement(statement, database)
                except ServerError:
                    if not force:
                        raise

    def statement(self, line, database):
        match = re.match(r'^SET SESSION lock_wait_timeout = \d+;$', line)
        if match:
            return
        match = re.match(r'^CREATE DATABASE %s;$' % IDENT, line)
        if match:
            name = unquote(match.group(1))
            if name in self.databases:
                raise ServerError("ERROR 1007 (HY000): Can't create database '%s'; database exists" % name)
            self.databases[name] = empty_database()
            return
        match = re.match(r'^DROP DATABASE IF EXISTS %s;$' % IDENT, line)
        if match:
            self.databases.pop(unquote(match.group(1)), None)
            return
        match = re.match(r'^CREATE TABLE %s \($' % IDENT, line)
        if match:
            tables = self.db(database)['tables']
            name = unquote(match.group(1))
            if name in tables or name in self.db(database)['views']:
                raise ServerError("ERROR 1050 (42S01): Table '%s' already exists" % name)
            tables[name] = []
            return
        match = re.match(r'^INSERT INTO %s VALUES (.*);$' % IDENT, line)
        if match:
            self.db(database)['tables'][unquote(match.group(1))].extend(mysql_values(match.group(2)))
            return
        match = re.match(r'^CREATE VIEW %s AS (.*);$' % IDENT, line)
        if match:
            views = self.db(database)['views']
            name = unquote(match.group(1))
            if name in views or name in self.db(database)['tables']:
                raise ServerError("ERROR 1050 (42S01): Table '%s' already exists" % name)
            views[name] = match.group(2)
            return
        match = re.match(r'^CREATE TRIGGER %s (.*) ON %s (.*);$' % (IDENT, IDENT), line)
        if match:
            content = self.db(database)
            name, table = unquote(match.group(1)), unquote(match.group(3))
            if name in content['triggers']:
                raise ServerError('ERROR 1359 (HY000): Trigger %s already exists' % name)
            if table not in content['tables']:
                raise ServerError("ERROR 1146 (42S02): Table '%s.%s' doesn't exist" % (database, table))
            content['triggers'][name] = (table, match.group(2) + ' ' + match.group(4))
            return
        match = re.match(r'^CREATE (PROCEDURE|FUNCTION|EVENT) %s (.*);$' % IDENT, line)
        if match:
            kind = 'events' if match.group(1) == 'EVENT' else 'routines'
            key = unquote(match.group(2)) if kind == 'events' else (match.group(1), unquote(match.group(2)))
            if key in self.db(database)[kind]:
                raise ServerError('ERROR 1304 (42000): %s %s already exists' % (match.group(1), match.group(2)))
            self.db(database)[kind][key] = match.group(3)
            return
        match = re.match(r'^DROP TRIGGER IF EXISTS %s;$' % QUALIFIED, line)
        if match:
            self.databases.get(unquote(match.group(1)), empty_database())['triggers'].pop(unquote(match.group(2)), None)
            return
        match = re.match(r'^DROP VIEW IF EXISTS (.*);$', line)
        if match:
            for schema, name in re.findall(QUALIFIED, match.group(1)):
                self.databases.get(unquote(schema), empty_database())['views'].pop(unquote(name), None)
            return
        match = re.match(r'^DROP (PROCEDURE|FUNCTION|EVENT) IF EXISTS %s;$' % QUALIFIED, line)
        if match:
            content = self.databases.get(unquote(match.group(2)), empty_database())
            if match.group(1) == 'EVENT':
                content['events'].pop(unquote(match.group(3)), None)
            else:
                content['routines'].pop((match.group(1), unquote(match.group(3))), None)
            return
        match = re.match(r'^RENAME TABLE (.*);$', line)
        if match:
            self.rename(match.group(1))
            return
        raise AssertionError('the fake server does not know: %r' % line)

    def rename(self, text):
        if self.rename_error:
            raise ServerError(self.rename_error)
        moves = re.findall(r'%s TO %s' % (QUALIFIED, QUALIFIED), text)
        assert ', '.join('`%s`.`%s` TO `%s`.`%s`' % move for move in moves) == text, text
        databases = copy.deepcopy(self.databases)   # atomic: all or nothing
        for source_db, name, target_db, target_name in moves:
            source_db, name, target_db, target_name = [unquote(x) for x in (source_db, name, target_db, target_name)]
            assert name == target_name
            source, target = self.databases_of(databases, source_db), self.databases_of(databases, target_db)
            if name in source['views']:
                if source_db != target_db:
                    raise ServerError("ERROR 1450 (HY000): Changing schema from '%s' to '%s' is not allowed"
                                      % (source_db, target_db))
                continue
            if name not in source['tables']:
                raise ServerError("ERROR 1146 (42S02): Table '%s.%s' doesn't exist" % (source_db, name))
            if name in target['tables'] or name in target['views']:
                raise ServerError("ERROR 1050 (42S01): Table '%s' already exists" % name)
            if any(table == name for table, body in source['triggers'].values()):
                raise ServerError('ERROR 1435 (HY000): Trigger in wrong schema')
            target['tables'][name] = source['tables'].pop(name)
        self.databases = databases

    def databases_of(self, databases, name):
        if name not in databases:
            raise ServerError("ERROR 1049 (42000): Unknown database '%s'" % name)
        return databases[name]

    # --- what the clients print ----------------------------------------------------------------------

    def inventory(self, text):
        names = [binascii.unhexlify(h).decode('utf-8') for h in re.findall(r"X'([0-9a-f]*)'", text.split('\n')[0])]
        rows = []
        for name in names:
            content = self.databases.get(name)
            if content is None:
                continue
            hexname = binascii.hexlify(name.encode('utf-8')).decode('ascii').upper()

            def row(kind, kind_type, value, hexname=hexname):
                rows.append('\t'.join([kind, kind_type, hexname,
                                       binascii.hexlify(value.encode('utf-8')).decode('ascii').upper()]))
            rows.append('schema\t\t%s\t' % hexname)
            for table in content['tables']:
                row('table', 'BASE TABLE', table)
            for view in content['views']:
                row('table', 'VIEW', view)
            for trigger in content['triggers']:
                row('trigger', '', trigger)
            for kind_type, routine in content['routines']:
                row('routine', kind_type, routine)
            for event in content['events']:
                row('event', '', event)
        return ''.join(line + '\n' for line in rows)

    def mysqldump(self, args):
        database = args[args.index('--') + 1]
        content = self.db(database)
        out = ['/*M!999999\\- enable the sandbox mode */', '-- MariaDB dump 10.19']
        if '--no-data' not in args:     # live_digests
            for table, rows in sorted(content['tables'].items()):
                out.append('CREATE TABLE %s (' % quote_name(table))
                out.append(');')
                if rows:
                    out.append('INSERT INTO %s VALUES %s;' % (quote_name(table), ','.join('(%s)' % r for r in rows)))
        elif '--routines' in args:
            for (kind_type, name), body in sorted(content['routines'].items()):
                out.append('CREATE %s %s %s;' % (kind_type, quote_name(name), body))
            for name, body in sorted(content['events'].items()):
                out.append('CREATE EVENT %s %s;' % (quote_name(name), body))
        elif '--triggers' in args:
            for name, (table, body) in sorted(content['triggers'].items()):
                timing, statement = body.split(' ', 1)
                out.append('CREATE TRIGGER %s %s ON %s %s;' % (quote_name(name), timing, quote_name(table), statement))
        else:
            for view in args[args.index('--') + 2:]:
                out.append('CREATE VIEW %s AS %s;' % (quote_name(view), content['views'][view]))
        return '\n'.join(out) + '\n'

    def run_command(self, args, data=None, binary_data=False, environ_update=None):
        tool = os.path.basename(args[0])
        database = [a.split('=', 1)[1] for a in args if a.startswith('--database=')]
        database = database[0] if database else None
        if tool == 'mysql' and database is None and len(args) > 1 and not args[-1].startswith('-'):
            database = args[-1]     # mysql [options] db_name
        text = data.decode('utf-8') if isinstance(data, bytes) else (data or '')
        self.log.append((tool, database, text if tool == 'mysql' else ' '.join(args[1:])))
        index, self.calls = self.calls, self.calls + 1
        failing = index == self.fail_call
        if failing and not self.fail_after:
            if tool == 'mysql' and database and database.endswith(SCRATCH_SUFFIX) and 'INSERT INTO' in text:
                # an import that stops halfway: the first half of the dump is in
                lines = text.splitlines()
                self.run_sql('\n'.join(lines[:len(lines) // 2]), database, force=True)
            return 1, '', "ERROR 2013 (HY000) at line 7: Lost connection to server during query (injected)\n"
        try:
            if tool == 'mysqldump':
                out = self.mysqldump(args)
            elif text.startswith("SELECT 'schema'"):
                out = self.inventory(text)
            else:
                out = ''
                self.run_sql(text, database, force='--force' in args)
        except ServerError as exc:
            return 1, '', '--------------\n%s\n--------------\n\n%s at line 1\n' % (text[:60], exc)
        if failing:
            return 1, '', 'ERROR 2013 (HY000): Lost connection to server during query (injected)\n'
        return 0, out, ''

    # --- what the tests look at -------------------------------------------------------------------------

    def statements(self):
        return [line for tool, database, text in self.log if tool == 'mysql' for line in text.splitlines()]


class FakeModule(FakeModuleBase):
    def __init__(self, server):
        self.server = server
        self.bins = dict((name, '/usr/bin/' + name) for name in ('mysql', 'mysqldump', 'pg_restore', 'pg_dump'))
        self.warnings = []

    def run_command(self, args, **kwargs):
        return self.server.run_command(args, **kwargs)

    def warn(self, message):
        self.warnings.append(message)


# --- the databases of the tests ------------------------------------------------------------------------

OLD = dict(
    tables={'subscribers': ["1,'user1','basic'", "2,'user2','gold'"], 'log': ["1,1,'deleted'"],
            'obsolete': ['7']},
    views={'basic_subscribers': 'SELECT old'},
    triggers={'subscribers_deleted': ('subscribers', 'AFTER old body')},
    routines={('PROCEDURE', 'p_old'): 'old body', ('FUNCTION', 'f'): 'old f'},
    events={'e_old': 'old schedule'},
)

DUMP = '''/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.14-MariaDB
/*!40101 SET NAMES utf8mb4 */;
CREATE TABLE `log` (
  `id` int(11) NOT NULL
);
CREATE TABLE `subscribers` (
  `id` int(11) NOT NULL
);
INSERT INTO `subscribers` VALUES (1,'user1','basic'),(2,'user2','basic'),(3,'user3','basic');
CREATE TABLE `tariffs` (
  `id` int(11) NOT NULL
);
INSERT INTO `tariffs` VALUES (1,'basic');
CREATE VIEW `basic_subscribers` AS SELECT new;
CREATE VIEW `tariff_names` AS SELECT names;
CREATE TRIGGER `subscribers_deleted` AFTER ON `subscribers` new body;
CREATE TRIGGER `tariffs_added` BEFORE ON `tariffs` new tariff body;
CREATE FUNCTION `f` new f;
CREATE PROCEDURE `p_new` new body;
CREATE EVENT `e_new` new schedule;
-- Dump completed on 2026-11-26 22:15:03
'''

NEW = dict(
    tables={'log': [], 'subscribers': ["1,'user1','basic'", "2,'user2','basic'", "3,'user3','basic'"],
            'tariffs': ["1,'basic'"]},
    views={'basic_subscribers': 'SELECT new', 'tariff_names': 'SELECT names'},
    triggers={'subscribers_deleted': ('subscribers', 'AFTER new body'),
              'tariffs_added': ('tariffs', 'BEFORE new tariff body')},
    routines={('FUNCTION', 'f'): 'new f', ('PROCEDURE', 'p_new'): 'new body'},
    events={'e_new': 'new schedule'},
)

OTHER = dict(tables={'untouched': ['1']}, views={}, triggers={}, routines={}, events={})


@pytest.fixture
def dump_file(tmp_path):
    path = tmp_path / 'mysql-mw.sql'
    path.write_text(DUMP)
    return str(path)


def setup(name='mw', dump=None, extra=None):
    databases = {name: OLD, 'other': OTHER}
    databases.update(extra or {})
    server = FakeMariaDB(databases)
    return server, FakeModule(server)


def run_restore(module, dump_path, tmp_path, name='mw', expected='from dump'):
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    if expected == 'from dump':
        expected = dump_digests(module, 'mysql', dump_path)
    restore(module, dict(engine='mysql', name=name, login_user='pvr', login_password='pw'), dump_path, str(work),
            expected_tables=expected)
    assert os.listdir(str(work)) == [], 'no credentials file is left'


def assert_never_dropped(server, name='mw'):
    """Nothing but the work databases is ever dropped, and no table anywhere."""
    for statement in server.statements():
        assert not statement.startswith('DROP TABLE'), statement
        match = re.match(r'^DROP DATABASE IF EXISTS %s;$' % IDENT, statement)
        if match:
            assert unquote(match.group(1)) in (name + SCRATCH_SUFFIX, name + HOLDING_SUFFIX), statement
        assert not re.match(r'^DROP DATABASE', statement) or match, statement


# --- a restore that works --------------------------------------------------------------------------------

def test_restore_swaps_the_new_contents_in(tmp_path, dump_file):
    server, module = setup()
    run_restore(module, dump_file, tmp_path)
    assert server.databases == {'mw': NEW, 'other': OTHER}
    assert module.warnings == []
    assert_never_dropped(server)


def test_restore_issues_one_rename_for_the_whole_swap(tmp_path, dump_file):
    server, module = setup()
    run_restore(module, dump_file, tmp_path)
    swap = [text for tool, database, text in server.log if 'RENAME TABLE' in text]
    assert swap == [
        'SET SESSION lock_wait_timeout = 120;\n'
        'DROP TRIGGER IF EXISTS `mw`.`subscribers_deleted`;\n'
        'RENAME TABLE '
        '`mw`.`log` TO `mw_micropvr_previous`.`log`, '
        '`mw`.`obsolete` TO `mw_micropvr_previous`.`obsolete`, '
        '`mw`.`subscribers` TO `mw_micropvr_previous`.`subscribers`, '
        '`mw_micropvr_restore`.`log` TO `mw`.`log`, '
        '`mw_micropvr_restore`.`subscribers` TO `mw`.`subscribers`, '
        '`mw_micropvr_restore`.`tariffs` TO `mw`.`tariffs`;']


def test_restore_sequence_of_steps(tmp_path, dump_file):
    """What runs, in order: the import goes to scratch, is compared, and only then the target changes."""
    server, module = setup()
    run_restore(module, dump_file, tmp_path)
    steps = []
    for tool, database, text in server.log:
        if tool == 'mysqldump':
            steps.append('mysqldump %s' % ('digests of ' + text.split(' -- ')[1] if '--no-data' not in text
                                           else 'objects of ' + ' '.join(text.split(' -- ')[1:])))
        elif text.startswith("SELECT 'schema'"):
            steps.append('inventory')
        elif 'INSERT INTO' in text:
            steps.append('import into %s' % database)
        elif database is not None:
            steps.append('create objects in %s' % database)
        else:
            steps.append(' '.join(re.sub(r'^(RENAME TABLE) .*', r'\1 (the swap)', line) for line in text.splitlines()
                                  if not line.startswith('SET SESSION')))
    assert steps == [
        'DROP DATABASE IF EXISTS `mw_micropvr_restore`; DROP DATABASE IF EXISTS `mw_micropvr_previous`; '
        'CREATE DATABASE `mw_micropvr_restore`;',
        'import into mw_micropvr_restore',
        'mysqldump digests of mw_micropvr_restore',
        'inventory',
        'mysqldump objects of mw',                       # routines and events, to swap back
        'mysqldump objects of mw',                       # triggers
        'mysqldump objects of mw basic_subscribers',     # views
        'mysqldump objects of mw_micropvr_restore',
        'mysqldump objects of mw_micropvr_restore',
        'mysqldump objects of mw_micropvr_restore basic_subscribers tariff_names',
        'DROP TRIGGER IF EXISTS `mw_micropvr_restore`.`subscribers_deleted`; '
        'DROP TRIGGER IF EXISTS `mw_micropvr_restore`.`tariffs_added`;',
        'CREATE DATABASE `mw_micropvr_previous`;',
        'DROP TRIGGER IF EXISTS `mw`.`subscribers_deleted`; RENAME TABLE (the swap)',
        'inventory',
        'DROP VIEW IF EXISTS `mw`.`basic_subscribers`; DROP FUNCTION IF EXISTS `mw`.`f`; '
        'DROP PROCEDURE IF EXISTS `mw`.`p_old`; DROP EVENT IF EXISTS `mw`.`e_old`;',
        'create objects in mw',     # routines and events
        'create objects in mw',     # triggers
        'create objects in mw',     # views
        'DROP DATABASE IF EXISTS `mw_micropvr_restore`; DROP DATABASE IF EXISTS `mw_micropvr_previous`;',
    ]


def test_restore_drops_what_a_killed_run_left(tmp_path, dump_file):
    leftovers = {'mw' + SCRATCH_SUFFIX: dict(empty_database(), tables={'half': ['1']}),
                 'mw' + HOLDING_SUFFIX: dict(empty_database(), tables={'subscribers': ['9']})}
    server, module = setup(extra=leftovers)
    run_restore(module, dump_file, tmp_path)
    assert server.databases == {'mw': NEW, 'other': OTHER}


def test_restore_into_a_database_that_does_not_exist(tmp_path, dump_file):
    server = FakeMariaDB({'other': OTHER})
    module = FakeModule(server)
    run_restore(module, dump_file, tmp_path)
    assert server.databases == {'mw': NEW, 'other': OTHER}


def test_restore_without_expected_digests_does_not_compare(tmp_path, dump_file):
    server, module = setup()
    run_restore(module, dump_file, tmp_path, expected=None)
    assert server.databases == {'mw': NEW, 'other': OTHER}
    assert not [text for tool, database, text in server.log if tool == 'mysqldump' and '--no-data' not in text]


@pytest.mark.parametrize('name', ['mw`x', '`', 'a``b`', 'has space', "quo'te", 'back\\slash', 'ü-база', '-dash'])
def test_restore_quotes_every_name(tmp_path, dump_file, name):
    server, module = setup(name=name)
    run_restore(module, dump_file, tmp_path, name=name)
    assert server.databases == {name: NEW, 'other': OTHER}
    quoted = '`%s`' % name.replace('`', '``')
    swap = [text for tool, database, text in server.log if 'RENAME TABLE' in text][0]
    assert '%s.`log` TO `%s`.`log`' % (quoted, (name + HOLDING_SUFFIX).replace('`', '``')) in swap
    assert_never_dropped(server, name)


# --- a restore that fails before the swap leaves the database as it was ------------------------------

def test_import_failure_leaves_the_old_contents(tmp_path, dump_file):
    server, module = setup()
    server.fail_call = 1    # the import
    with pytest.raises(FailJson) as excinfo:
        run_restore(module, dump_file, tmp_path)
    assert excinfo.value.kwargs['msg'] == (
        'mysql database mw was not restored, its old contents are still in place: the import into the scratch '
        'database mw_micropvr_restore failed (rc=1): ERROR 2013 (HY000) at line 7: Lost connection to server '
        'during query (injected)')
    assert server.databases == {'mw': OLD, 'other': OTHER}
    assert_never_dropped(server)
    # nothing after the import touched the target: no statement names it
    assert not [s for s in server.statements() if '`mw`.' in s or s.startswith('RENAME')]


def test_import_failure_never_drops_the_original_database(tmp_path, dump_file):
    """Called as before (no digests): the import still goes to scratch, the original stays."""
    server, module = setup()
    server.fail_call = 1
    work = tmp_path / 'work'
    work.mkdir()
    with pytest.raises(FailJson) as excinfo:
        restore(module, dict(engine='mysql', name='mw'), dump_file, str(work))
    assert 'its old contents are still in place' in excinfo.value.kwargs['msg']
    assert server.databases == {'mw': OLD, 'other': OTHER}
    assert_never_dropped(server)
    imports = [database for tool, database, text in server.log if 'INSERT INTO' in text]
    assert imports == ['mw_micropvr_restore']


def test_digest_mismatch_before_the_swap_leaves_the_old_contents(tmp_path, dump_file):
    server, module = setup()
    expected = dump_digests(module, 'mysql', dump_file)
    expected['subscribers'] = dict(rows=4, sha256='ab' * 32)
    with pytest.raises(FailJson) as excinfo:
        run_restore(module, dump_file, tmp_path, expected=expected)
    message = excinfo.value.kwargs['msg']
    assert message.startswith('mysql database mw was not restored, its old contents are still in place: the dump, '
                              'imported into the scratch database mw_micropvr_restore, does not match the backup '
                              'set: table subscribers has 3 rows (checksum ')
    assert message.endswith(', the backup 4 rows (checksum abababababab)')
    assert server.databases == {'mw': OLD, 'other': OTHER}
    assert_never_dropped(server)


def test_dump_that_changes_database_is_refused(tmp_path):
    path = tmp_path / 'mysql-mw.sql'
    path.write_text('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `mw`;\nUSE `mw`;\n' + DUMP)
    server, module = setup()
    with pytest.raises(FailJson) as excinfo:
        run_restore(module, str(path), tmp_path, expected=None)
    assert excinfo.value.kwargs['msg'] == (
        'mysql database mw was not restored, its old contents are still in place: the dump changes the database '
        '(USE `mw`;), a restore cannot keep it to the scratch database')
    assert server.databases == {'mw': OLD, 'other': OTHER}
    assert not [text for tool, database, text in server.log if 'INSERT INTO' in text]


def test_missing_dump_file_leaves_the_old_contents(tmp_path):
    server, module = setup()
    with pytest.raises(FailJson) as excinfo:
        run_restore(module, str(tmp_path / 'gone.sql'), tmp_path, expected=None)
    assert excinfo.value.kwargs['msg'].startswith('mysql database mw was not restored, its old contents are still '
                                                  'in place: [Errno 2] No such file or directory')
    assert server.databases == {'mw': OLD, 'other': OTHER}


def test_swap_refused_by_the_server_gives_the_target_its_triggers_back(tmp_path, dump_file):
    """The session of the swap drops the target's triggers, then MariaDB refuses the RENAME (all of
    it): the triggers are created again from what was saved, the scratch database dropped."""
    server, module = setup()
    server.databases['mw']['triggers']['log_added'] = ('log', 'BEFORE second trigger')
    old = copy.deepcopy(server.databases['mw'])
    server.rename_error = 'ERROR 1205 (HY000): Lock wait timeout exceeded; try restarting transaction'
    with pytest.raises(FailJson) as excinfo:
        run_restore(module, dump_file, tmp_path)
    assert excinfo.value.kwargs['msg'] == (
        'mysql database mw was not restored, its old contents are still in place: the swap of mw failed (rc=1): '
        'ERROR 1205 (HY000): Lock wait timeout exceeded; try restarting transaction at line 1')
    assert server.databases == {'mw': old, 'other': OTHER}
    swap = [text for tool, database, text in server.log if 'RENAME TABLE' in text]
    assert len(swap) == 1 and 'DROP TRIGGER IF EXISTS `mw`.`log_added`;\nDROP TRIGGER IF EXISTS `mw`.`subscribers_' \
        'deleted`;\nRENAME TABLE' in swap[0]
    assert_never_dropped(server)


# --- every step failing in turn ---------------------------------------------------------------------------

def count_calls(tmp_path, dump_file):
    server, module = setup()
    run_restore(module, dump_file, tmp_path)
    return server.calls


@pytest.mark.parametrize('after', [False, True], ids=['fails', 'fails-after-doing-it'])
def test_any_single_failure_leaves_either_the_old_or_the_new_contents(tmp_path, dump_file, after):
    """Make each client run of a restore fail in turn (before or after doing its work): the target
    database ends with its old contents and the message says so, or the restore succeeded."""
    total = count_calls(tmp_path, dump_file)
    assert total > 15
    outcomes = set()
    for index in range(total + 2):  # (a swap back makes more runs than a clean restore)
        server, module = setup()
        server.fail_call, server.fail_after = index, after
        try:
            run_restore(module, dump_file, tmp_path)
        except FailJson as exc:
            message = exc.kwargs['msg']
            assert message.startswith('mysql database mw was not restored, its old contents are still in place'), \
                (index, message)
            assert 'NOT' not in message
            assert server.databases['mw'] == OLD, (index, message)
            outcomes.add('swapped back' if '(swapped back)' in message else 'kept')
        else:
            assert server.databases['mw'] == NEW, index
            outcomes.add('restored')
        assert server.databases['other'] == OTHER
        work = [name for name in server.databases if name not in ('mw', 'other')]
        if work:    # only when the failing run was the one that drops them
            assert module.warnings and 'drop them by hand or let the next restore do it' in module.warnings[-1], index
        assert_never_dropped(server)
    assert outcomes == {'kept', 'swapped back', 'restored'} if not after else outcomes >= {'kept', 'restored'}


def test_failure_after_the_swap_swaps_back(tmp_path, dump_file):
    server, module = setup()
    original = FakeMariaDB.run_sql

    def run_sql(self, text, database, force=False):
        if database == 'mw' and 'CREATE TRIGGER `tariffs_added`' in text:
            raise ServerError('ERROR 1142 (42000): TRIGGER command denied to user')
        return original(self, text, database, force)
    FakeMariaDB.run_sql = run_sql
    try:
        with pytest.raises(FailJson) as excinfo:
            run_restore(module, dump_file, tmp_path)
    finally:
        FakeMariaDB.run_sql = original
    assert excinfo.value.kwargs['msg'].startswith(
        'mysql database mw was not restored, its old contents are still in place (swapped back): after the swap, '
        'creating the views, triggers, routines and events of the dump in mw (triggers) failed (rc=1): ')
    assert server.databases == {'mw': OLD, 'other': OTHER}
    back = [text for tool, database, text in server.log if 'RENAME TABLE' in text][1]
    assert back.endswith(
        'RENAME TABLE `mw`.`log` TO `mw_micropvr_restore`.`log`, '
        '`mw`.`subscribers` TO `mw_micropvr_restore`.`subscribers`, '
        '`mw`.`tariffs` TO `mw_micropvr_restore`.`tariffs`, '
        '`mw_micropvr_previous`.`log` TO `mw`.`log`, '
        '`mw_micropvr_previous`.`obsolete` TO `mw`.`obsolete`, '
        '`mw_micropvr_previous`.`subscribers` TO `mw`.`subscribers`;')


def test_a_swap_back_that_fails_says_where_the_old_tables_are(tmp_path, dump_file):
    server, module = setup()
    original = FakeMariaDB.run_sql

    def run_sql(self, text, database, force=False):
        if database == 'mw' and 'CREATE VIEW' in text:
            raise ServerError('ERROR 1356 (HY000): View references invalid table(s)')
        if 'RENAME TABLE `mw`.`log` TO `mw_micropvr_restore`' in text:
            raise ServerError('ERROR 1205 (HY000): Lock wait timeout exceeded')
        return original(self, text, database, force)
    FakeMariaDB.run_sql = run_sql
    try:
        with pytest.raises(FailJson) as excinfo:
            run_restore(module, dump_file, tmp_path)
    finally:
        FakeMariaDB.run_sql = original
    assert excinfo.value.kwargs['msg'].startswith(
        'mysql database mw was not restored, and its old contents are NOT in place: its old tables are in the '
        'database mw_micropvr_previous, the restored ones in mw: after the swap, creating the views')
    assert 'swapping back failed (rc=1): ERROR 1205 (HY000): Lock wait timeout exceeded' in excinfo.value.kwargs['msg']
    # nothing was dropped: the old tables wait in the holding database
    assert sorted(server.databases['mw' + HOLDING_SUFFIX]['tables']) == ['log', 'obsolete', 'subscribers']


def test_old_objects_that_cannot_be_saved_do_not_stop_the_restore(tmp_path, dump_file):
    server, module = setup()
    original = FakeMariaDB.mysqldump

    def mysqldump(self, args):
        if args[-2:] == ['mw', 'basic_subscribers']:
            raise ServerError("mysqldump: Couldn't execute 'SHOW FIELDS FROM `basic_subscribers`': View 'mw.basic_"
                              "subscribers' references invalid table(s) (1356)")
        return original(self, args)
    FakeMariaDB.mysqldump = mysqldump
    try:
        run_restore(module, dump_file, tmp_path)
    finally:
        FakeMariaDB.mysqldump = original
    assert server.databases == {'mw': NEW, 'other': OTHER}
    assert len(module.warnings) == 1
    assert module.warnings[0].startswith('mysql database mw: saving the views of mw as SQL failed (rc=1): ')
    assert module.warnings[0].endswith('; a swap back would not bring all of them back')


def test_the_old_objects_dump_is_forced_the_new_one_is_not(tmp_path, dump_file):
    server, module = setup()
    run_restore(module, dump_file, tmp_path)
    dumps = [text for tool, database, text in server.log if tool == 'mysqldump' and '--no-data' in text]
    assert [('--force' in text, text.split(' -- ')[1].split(' ')[0]) for text in dumps] == [
        (True, 'mw'), (True, 'mw'), (True, 'mw'),
        (False, 'mw_micropvr_restore'), (False, 'mw_micropvr_restore'), (False, 'mw_micropvr_restore')]
    for text in dumps:
        assert '--skip-add-drop-table' in text and '--no-data' in text
        assert ('--no-create-info' in text) != ('--skip-routines' in text and '--skip-triggers' in text)


# --- names ----------------------------------------------------------------------------------------------

def test_work_database_names_of_short_names():
    assert work_database_name('mysql', 'middleware', SCRATCH_SUFFIX) == 'middleware_micropvr_restore'
    assert work_database_name('mysql', 'middleware', HOLDING_SUFFIX) == 'middleware_micropvr_previous'
    assert work_database_name('postgresql', 'mw', '_micropvr_restore_test') == 'mw_micropvr_restore_test'
    longest = 'x' * (64 - len(HOLDING_SUFFIX))
    assert work_database_name('mysql', longest, HOLDING_SUFFIX) == longest + HOLDING_SUFFIX


@pytest.mark.parametrize('engine, limit, size', [('mysql', 64, len), ('postgresql', 63, lambda s: len(s.encode()))])
@pytest.mark.parametrize('suffix', [SCRATCH_SUFFIX, HOLDING_SUFFIX, '_micropvr_restore_test'])
def test_work_database_names_of_long_names_fit_and_stay_apart(engine, limit, size, suffix):
    names = ['a' * 64, 'a' * 63 + 'b', 'a' * 47, 'ü' * 60, 'б' * 40 + 'x' * 10]
    work = [work_database_name(engine, name, suffix) for name in names]
    for name, result in zip(names, work):
        assert size(result) <= limit, result
        assert result.endswith(suffix) and result != name
        assert result == work_database_name(engine, name, suffix), 'the same name gives the same work name'
    assert len(set(work)) == len(names)
    assert work_database_name(engine, 'a' * 64, SCRATCH_SUFFIX) != work_database_name(engine, 'a' * 64,
                                                                                       HOLDING_SUFFIX)


def test_restore_of_a_long_name_uses_shortened_work_databases(tmp_path, dump_file):
    name = 'n' * 60
    server, module = setup(name=name)
    run_restore(module, dump_file, tmp_path, name=name)
    assert server.databases == {name: NEW, 'other': OTHER}
    created = [unquote(m) for s in server.statements() for m in re.findall(r'^CREATE DATABASE %s;$' % IDENT, s)]
    assert created == [work_database_name('mysql', name, SCRATCH_SUFFIX),
                       work_database_name('mysql', name, HOLDING_SUFFIX)]
    assert all(len(n) <= 64 for n in created)


# --- PostgreSQL ---------------------------------------------------------------------------------------------

PG_DATA = '''COPY public.subscribers (id, login, tariff) FROM stdin;
1\tuser1\tbasic
2\tuser2\tbasic
\\.
'''


class PgModule(FakeModuleBase):
    def __init__(self, restore_rc=0, data=PG_DATA, dump_rc=0):
        self.bins = dict((name, '/usr/bin/' + name) for name in ('pg_restore', 'pg_dump'))
        self.calls = []
        self.restore_rc, self.data, self.dump_rc = restore_rc, data, dump_rc

    def run_command(self, args, **kwargs):
        self.calls.append(args)
        if os.path.basename(args[0]) == 'pg_restore':
            return self.restore_rc, '', 'pg_restore: error: could not execute query: ERROR:  deadlock detected\n'
        return self.dump_rc, self.data, 'pg_dump: error: connection lost\n' if self.dump_rc else ''


PG_DB = dict(engine='postgresql', name='mw', host='db', login_user='pvr', login_password='pw')
PG_EXPECTED = external_db.digests(external_db.pg_copy_rows(PG_DATA))


def test_postgresql_restore_in_one_transaction_and_compared(tmp_path):
    module = PgModule()
    restore(module, PG_DB, '/set/postgresql-mw.pgdump', str(tmp_path), expected_tables=PG_EXPECTED)
    assert module.calls[0] == ['/usr/bin/pg_restore', '--clean', '--if-exists', '--single-transaction',
                               '--no-password', '--exit-on-error', '--host', 'db', '--username', 'pvr',
                               '--dbname', 'mw', '/set/postgresql-mw.pgdump']
    assert module.calls[1][:4] == ['/usr/bin/pg_dump', '--data-only', '--format=plain', '--no-password']
    assert os.listdir(str(tmp_path)) == []


def test_postgresql_restore_without_digests_does_not_compare(tmp_path):
    module = PgModule()
    restore(module, PG_DB, '/set/postgresql-mw.pgdump', str(tmp_path))
    assert len(module.calls) == 1


def test_postgresql_restore_failure_keeps_the_old_contents(tmp_path):
    module = PgModule(restore_rc=1)
    with pytest.raises(FailJson) as excinfo:
        restore(module, PG_DB, '/set/postgresql-mw.pgdump', str(tmp_path), expected_tables=PG_EXPECTED)
    assert excinfo.value.kwargs['msg'] == (
        'postgresql database mw was not restored, its old contents are still in place (pg_restore runs in one '
        'transaction): pg_restore failed (rc=1): pg_restore: error: could not execute query: ERROR:  deadlock detected')
    assert len(module.calls) == 1


def test_postgresql_restore_that_does_not_match(tmp_path):
    module = PgModule(data=PG_DATA.replace('2\tuser2\tbasic\n', ''))
    with pytest.raises(FailJson) as excinfo:
        restore(module, PG_DB, '/set/postgresql-mw.pgdump', str(tmp_path), expected_tables=PG_EXPECTED)
    message = excinfo.value.kwargs['msg']
    assert message.startswith('postgresql database mw was restored but does not match the backup set, its old '
                              'contents were replaced: table public.subscribers has 1 rows (checksum ')
    assert os.listdir(str(tmp_path)) == []


def test_postgresql_restore_that_cannot_be_read_back(tmp_path):
    module = PgModule(dump_rc=1)
    with pytest.raises(FailJson) as excinfo:
        restore(module, PG_DB, '/set/postgresql-mw.pgdump', str(tmp_path), expected_tables=PG_EXPECTED)
    assert excinfo.value.kwargs['msg'] == (
        'postgresql database mw was restored, its old contents were replaced, but it could not be compared with the '
        'backup set: reading it back failed (rc=1): pg_dump: error: connection lost')


def test_restore_passes_no_password_on_a_command_line(tmp_path, dump_file):
    server, module = setup()
    work = tmp_path / 'work'
    work.mkdir()
    seen = []
    original = server.run_command

    def run_command(args, **kwargs):
        seen.append(list(args))
        for arg in args:
            if arg.startswith('--defaults-extra-file='):
                with open(arg.split('=', 1)[1]) as handle:
                    assert 'password="S3cr#t"' in handle.read()
        return original(args, **kwargs)
    server.run_command = run_command
    restore(module, dict(engine='mysql', name='mw', login_password='S3cr#t'), dump_file, str(work))
    assert seen and not [a for args in seen for a in args if 'S3cr#t' in a]
    assert os.listdir(str(work)) == []


def test_live_digests_of_a_database_the_server_lacks(tmp_path):
    """A host recovered onto a new MariaDB server: the database is not there yet, and the
    restore creates it, so comparing with it says 'missing' (None) rather than failing."""
    server, module = setup()
    db = dict(engine='mysql', name='absent', login_user='pvr', login_password='pw')
    work = tmp_path / 'work'
    work.mkdir()
    assert external_db.live_digests(module, db, str(work), missing_ok=True) is None
    with pytest.raises(FailJson) as failed:
        external_db.live_digests(module, db, str(work))
    assert "Unknown database 'absent'" in failed.value.kwargs['msg']
    assert external_db.live_digests(module, dict(db, name='mw'), str(work), missing_ok=True)['subscribers']['rows'] == 2
