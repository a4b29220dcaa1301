"""
Indexes nothing reads (core.schema): a foreign key's plain index where another index leads with
its column.
"""

from django.db import migrations

from core.schema import DropFieldIndexes


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_history_json"),
        ("proactive", "0013_drop_unneeded_indexes"),
        ("tenants", "0005_drop_unneeded_indexes"),
    ]

    operations = [
        DropFieldIndexes("alert", ["rule"]),
        DropFieldIndexes("alertbudget", ["tenant"]),
        DropFieldIndexes("delivery", ["alert_event"]),
    ]
