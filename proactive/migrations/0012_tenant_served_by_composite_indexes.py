"""
The rules' and metric points' own indexes on tenant_id (and PostgreSQL's `_like` twin) go: the
composite indexes that lead with the tenant serve the foreign key. Dropped by name, without the
drop and re-add of the foreign key constraint that AlterField would run: re-adding it validates
every row under a lock that blocks the points' writes for as long as the scan takes.
"""

import django.db.models.deletion
from django.db import migrations, models

MODELS = ("triggerrule", "metricpoint")


def _plain_indexes(schema_editor, table: str, column: str) -> list[str]:
    """The indexes on `column` alone: not unique, not a key (the composite ones stay)."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["index"] and info["columns"] == [column] and not (info["unique"] or info["primary_key"])
    ]


def drop_plain_tenant_indexes(apps, schema_editor):
    for model_name in MODELS:
        model = apps.get_model("proactive", model_name)
        for name in _plain_indexes(schema_editor, model._meta.db_table, model._meta.get_field("tenant").column):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_plain_tenant_indexes(apps, schema_editor):
    for model_name in MODELS:
        model = apps.get_model("proactive", model_name)
        for statement in schema_editor._field_indexes_sql(model, model._meta.get_field("tenant")):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("proactive", "0011_rule_wakes"),
        ("tenants", "0004_tenant_alert_budget_per_hour"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="metricpoint",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metric_points",
                        to="tenants.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="triggerrule",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="trigger_rules",
                        to="tenants.tenant",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_plain_tenant_indexes, create_plain_tenant_indexes)],
        )
    ]
