"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column, and the `_like` twins of columns no query matches with LIKE.
"""

from django.db import migrations

from core.schema import DropFieldIndexes


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_tenant_alert_budget_per_hour"),
    ]

    operations = [
        DropFieldIndexes("membership", ["tenant"]),
        DropFieldIndexes("apikey", ["tenant", "prefix", "key_hash"], twins_only=True),
        DropFieldIndexes("tenant", ["id", "slug", "stripe_customer_id"], twins_only=True),
    ]
