"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column.
"""

import django.db.models.deletion
from django.db import migrations, models

from core.schema import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_history_json"),
        ("proactive", "0013_drop_unneeded_indexes"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="alert",
                    name="rule",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="alerts",
                        to="proactive.triggerrule",
                    ),
                ),
                migrations.AlterField(
                    model_name="alertbudget",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alert_budgets",
                        to="tenants.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="alert_event",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="alerts.alertevent",
                    ),
                ),
            ],
            database_operations=[
                drop_field_indexes(
                    "alerts", {"alert": ["rule"], "alertbudget": ["tenant"], "delivery": ["alert_event"]}
                )
            ],
        ),
    ]
