"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column.
"""

from django.db import migrations

from core.schema import DropFieldIndexes


class Migration(migrations.Migration):
    dependencies = [
        ("proactive", "0012_tenant_served_by_composite_indexes"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        DropFieldIndexes("metricwake", ["tenant"]),
        DropFieldIndexes("rulechannel", ["rule"]),
        DropFieldIndexes("rulewake", ["rule"]),
    ]
