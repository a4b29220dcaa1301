"""
The demo's seeded anomaly example carried only part of the engine's evidence (no mean, std,
threshold, window or point count). The API now documents each payload's keys exactly: complete it.
"""

from django.db import migrations

MISSING = {"mean": 1250.0, "std": 838.2352941176471, "threshold": 2.5, "windowDays": 14, "points": 14}


def complete(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    for alert in Alert.objects.filter(rule_type="anomaly", payload__seeded=True):
        if not all(key in alert.payload for key in MISSING):
            alert.payload = {**MISSING, **alert.payload}
            alert.save(update_fields=["payload"])


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(complete, migrations.RunPython.noop)]
