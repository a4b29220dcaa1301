"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column, and the `_like` twins of columns no query matches with LIKE.
"""

import django.db.models.deletion
from django.db import migrations, models

from core.schema import drop_field_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_tenant_alert_budget_per_hour"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="membership",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="tenants.tenant",
                    ),
                ),
            ],
            database_operations=[drop_field_indexes("tenants", {"membership": ["tenant"]})],
        ),
        drop_field_indexes(
            "tenants",
            {"apikey": ["tenant", "prefix", "key_hash"], "tenant": ["id", "slug", "stripe_customer_id"]},
            pattern_ops_only=True,
        ),
    ]
