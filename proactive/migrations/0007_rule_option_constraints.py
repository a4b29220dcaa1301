import django.db.models.expressions
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("proactive", "0006_fill_rule_options")]

    operations = [
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("comparison", ""),
                    ("comparison__in", ["above", "below", "outside", "inside", "changeAbove", "changeBelow"]),
                    _connector="OR",
                ),
                name="trigger_rule_comparison_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("aggregate", ""), ("aggregate__in", ["last", "avg", "sum", "min", "max", "count"]), _connector="OR"
                ),
                name="trigger_rule_aggregate_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(("no_data", ""), ("no_data__in", ["ok", "alert", "keep"]), _connector="OR"),
                name="trigger_rule_no_data_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(("method", ""), ("method__in", ["zscore", "robust", "seasonal"]), _connector="OR"),
                name="trigger_rule_method_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(("direction", ""), ("direction__in", ["both", "up", "down"]), _connector="OR"),
                name="trigger_rule_direction_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("threshold_high__isnull", True), ("threshold_high__gt", models.F("threshold")), _connector="OR"
                ),
                name="trigger_rule_range_ordered",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("comparison__in", ("outside", "inside")), _negated=True),
                    ("threshold_high__isnull", False),
                    _connector="OR",
                ),
                name="trigger_rule_range_has_upper_bound",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("comparison__in", ("changeAbove", "changeBelow")), _negated=True),
                    ("compare_days__isnull", False),
                    _connector="OR",
                ),
                name="trigger_rule_change_has_compare_days",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("aggregate__in", ["", "last"]), ("aggregate_minutes__isnull", False), _connector="OR"
                ),
                name="trigger_rule_aggregate_has_minutes",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("for_evaluations__isnull", True),
                    models.Q(("for_evaluations__gte", 1), ("for_evaluations__lte", 1440)),
                    _connector="OR",
                ),
                name="trigger_rule_for_evaluations_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("clear_evaluations__isnull", True),
                    models.Q(("clear_evaluations__gte", 1), ("clear_evaluations__lte", 1440)),
                    _connector="OR",
                ),
                name="trigger_rule_clear_evaluations_range",
            ),
        ),
    ]
