"""Content digests of external databases, computed from dump text."""

from ansible_collections.microimpuls.micropvr.plugins.module_utils.external_db import (
    digest_differences,
    digests,
    mysql_insert_rows,
    mysql_values,
    pg_copy_rows,
)

PG_DATA = """--
-- PostgreSQL database dump
--
COPY public.subscribers (id, login, tariff) FROM stdin;
1\tuser1\tbasic
2\t\\N\tpremium
\\.

COPY public.empty (id) FROM stdin;
\\.
"""

MYSQL_DUMP = """CREATE TABLE `subscribers` (
  `id` int(11) NOT NULL,
  PRIMARY KEY (`id`)
);
INSERT INTO `subscribers` VALUES (1,'user1','basic'),(2,NULL,'it''s (fine)'),(3,'a\\'b','x,y');
INSERT INTO `subscribers` VALUES (4,'u4','basic');
CREATE TABLE `empty` (
  `id` int(11) NOT NULL
);
CREATE TABLE `we``ird` (
  `id` int(11) NOT NULL
);
INSERT INTO `we``ird` VALUES (1);
CREATE TABLE `multi` (
  `id` int(11) NOT NULL
);
INSERT INTO `multi` VALUES
(1,'ends with ;'),
(2,'x\\n;'),
(3,NULL);
"""


def test_pg_copy_rows():
    assert pg_copy_rows(PG_DATA) == {'public.subscribers': ['1\tuser1\tbasic', '2\t\\N\tpremium'], 'public.empty': []}


def test_mysql_values_respects_quotes_and_escapes():
    assert mysql_values("(1,'a,b','x\\'y)'),(2,NULL,'(z)')") == ["1,'a,b','x\\'y)'", "2,NULL,'(z)'"]
    assert mysql_values("(1,'it''s (fine)')") == ["1,'it''s (fine)'"]


def test_mysql_insert_rows_counts_every_row_and_empty_tables():
    rows = mysql_insert_rows(MYSQL_DUMP)
    assert sorted(rows) == ['empty', 'multi', 'subscribers', 'we``ird']
    assert len(rows['subscribers']) == 4 and rows['empty'] == [] and rows['we``ird'] == ['1']
    # MariaDB 10.11+: the rows of one INSERT on lines of their own
    assert rows['multi'] == ["1,'ends with ;'", "2,'x\\n;'", '3,NULL']


def test_digests_ignore_row_order_but_not_content():
    a = digests({'t': ['1\ta', '2\tb']})
    assert a == digests({'t': ['2\tb', '1\ta']})
    assert a['t']['rows'] == 2
    assert a != digests({'t': ['1\ta', '2\tB']})


def test_digest_differences_name_each_table():
    want = digests({'t': ['1'], 'u': ['1'], 'gone': []})
    have = digests({'t': ['1'], 'u': ['1', '2'], 'new': []})
    problems = digest_differences(want, have)
    assert problems[0] == 'table gone is missing'
    assert problems[1] == 'table new is not in the backup'
    assert problems[2].startswith('table u has 2 rows (checksum ') and ', the backup 1 rows (checksum ' in problems[2]
    assert digest_differences(want, want) == []
