from django.db import migrations


def fill_options_of_existing_rules(apps, schema_editor):
    """Existing rules keep today's behaviour exactly: the guide's defaults, and no data never resolves an alert."""
    TriggerRule = apps.get_model("proactive", "TriggerRule")
    metric_rules = TriggerRule.objects.exclude(type="schedule")
    metric_rules.update(for_evaluations=1, clear_evaluations=1, no_data="ok")
    # Until now no data left an open alert as it was; "ok" would let it auto-resolve.
    metric_rules.filter(auto_resolve=True).update(no_data="keep")
    TriggerRule.objects.filter(type="metric_threshold").update(comparison="above", aggregate="last")
    TriggerRule.objects.filter(type="anomaly").update(method="zscore", direction="both")


class Migration(migrations.Migration):
    # Its own migration: PostgreSQL cannot alter a table in the transaction that updated its rows
    # (the tenant foreign key's checks are deferred), so the constraints come in the next one.
    dependencies = [("proactive", "0005_rule_options")]

    operations = [migrations.RunPython(fill_options_of_existing_rules, migrations.RunPython.noop)]
