"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column, and the `_like` twins of columns no query matches with LIKE.
"""

from django.db import migrations

from core.schema import DropFieldIndexes


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        DropFieldIndexes("billingusage", ["tenant"]),
        DropFieldIndexes("usagesnapshot", ["tenant"]),
        DropFieldIndexes("billingevent", ["tenant", "event_id"], twins_only=True),
    ]
