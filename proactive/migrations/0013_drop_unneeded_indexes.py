"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column.
"""

import django.db.models.deletion
from django.db import migrations, models

from core.schema import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("proactive", "0012_tenant_served_by_composite_indexes"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="metricwake",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="metric_wakes",
                        to="tenants.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="rulechannel",
                    name="rule",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="channel_links",
                        to="proactive.triggerrule",
                    ),
                ),
                migrations.AlterField(
                    model_name="rulewake",
                    name="rule",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="wakes",
                        to="proactive.triggerrule",
                    ),
                ),
            ],
            database_operations=[
                drop_field_indexes(
                    "proactive", {"metricwake": ["tenant"], "rulechannel": ["rule"], "rulewake": ["rule"]}
                )
            ],
        ),
    ]
