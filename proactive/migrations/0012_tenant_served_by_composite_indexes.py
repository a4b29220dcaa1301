"""
The rules' and metric points' own indexes on tenant_id (and PostgreSQL's `_like` twin) go: the
composite indexes that lead with the tenant serve the foreign key. Dropped by name (core.schema).
"""

import django.db.models.deletion
from django.db import migrations, models

from core.schema import drop_field_indexes


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
            database_operations=[
                drop_field_indexes("proactive", {"triggerrule": ["tenant"], "metricpoint": ["tenant"]})
            ],
        )
    ]
