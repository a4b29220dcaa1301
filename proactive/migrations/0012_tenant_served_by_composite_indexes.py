"""
The rules' and metric points' own indexes on tenant_id (and PostgreSQL's `_like` twin) go: the
composite indexes that lead with the tenant serve the foreign key. Dropped by name (core.schema).
"""

from django.db import migrations

from core.schema import DropFieldIndexes


class Migration(migrations.Migration):
    dependencies = [
        ("proactive", "0011_rule_wakes"),
        ("tenants", "0004_tenant_alert_budget_per_hour"),
    ]

    operations = [
        DropFieldIndexes("metricpoint", ["tenant"]),
        DropFieldIndexes("triggerrule", ["tenant"]),
    ]
