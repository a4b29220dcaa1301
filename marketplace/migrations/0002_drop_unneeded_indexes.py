"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column, and the `_like` twins of columns no query matches with LIKE.
"""

import django.db.models.deletion
from django.db import migrations, models

from core.schema import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0001_initial"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="tenantwidget",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="widget_installs",
                        to="tenants.tenant",
                    ),
                ),
            ],
            database_operations=[drop_field_indexes("marketplace", {"tenantwidget": ["tenant"]})],
        ),
        drop_field_indexes("marketplace", {"widget": ["slug"]}, pattern_ops_only=True),
    ]
