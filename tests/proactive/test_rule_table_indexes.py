"""
Every evaluation writes a new row version of its rule (non-HOT: `next_run_at` is indexed), and
every index of the table gets an entry for it; metric points are written as fast as tenants send
them. Each index there has to earn its place: a plain one on the tenant beside a composite that
leads with the tenant only doubles the writes (docs/performance.md, stop 24).
"""

import pytest
from django.db import connection

from proactive.models import MetricPoint, TriggerRule

pytestmark = pytest.mark.django_db


def index_columns(model) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    # Unique constraints and the primary key are indexes too (each one is written on every insert).
    return {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"] or info["unique"] or info["primary_key"]
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index names")
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            TriggerRule,
            {
                "proactive_triggerrule_pkey": ["id"],
                "trigger_rule_tenant_recent": ["tenant_id", "created_at", "id"],
                "trigger_rule_due": ["next_run_at"],
            },
        ),
        (
            MetricPoint,
            {
                "proactive_metricpoint_pkey": ["id"],
                "metric_point_unique_per_time": ["tenant_id", "metric", "timestamp"],
            },
        ),
    ],
)
def test_the_hot_tables_carry_only_the_indexes_their_reads_need(model, expected):
    assert index_columns(model) == expected
