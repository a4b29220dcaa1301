"""
Every index is written on each insert (and each update that is not HOT) of its table, so none of
ours is there for nothing: no plain index on a column that another index already leads with, no
`_like` (varchar_pattern_ops) twin for LIKE 'prefix%' queries nothing runs (core.schema).
"""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue"),
]

OUR_APPS = ("alerts", "billing", "marketplace", "proactive", "tenants")

INDEXES_SQL = """
SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n),
       EXISTS (SELECT 1 FROM unnest(x.indclass) AS c(oid) JOIN pg_opclass o ON o.oid = c.oid
               WHERE o.opcname LIKE '%%pattern_ops')
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relname = ANY(%s)
"""


def our_indexes() -> list[tuple]:
    tables = [model._meta.db_table for app in OUR_APPS for model in apps.get_app_config(app).get_models()]
    with connection.cursor() as cursor:
        cursor.execute(INDEXES_SQL, [tables])
        return cursor.fetchall()


def test_no_table_of_ours_has_a_pattern_ops_twin():
    assert [f"{table}.{index}" for table, index, *_, pattern_ops in our_indexes() if pattern_ops] == []


def test_no_plain_index_on_a_column_another_index_leads_with():
    indexes = our_indexes()
    leading = {(table, columns[0]) for table, _, _, partial, columns, _ in indexes if len(columns) > 1 and not partial}
    leading |= {(table, columns[0]) for table, _, unique, partial, columns, _ in indexes if unique and not partial}
    redundant = [
        f"{table}.{index}"
        for table, index, unique, partial, columns, _ in indexes
        if len(columns) == 1 and not (unique or partial) and (table, columns[0]) in leading
    ]

    assert redundant == []
    # What it checks is there to check: the tables whose plain tenant index went (stop 25).
    assert {("alerts_alertbudget", "tenant_id"), ("proactive_metricwake", "tenant_id")} <= leading
