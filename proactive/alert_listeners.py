"""
The engine hears of alert changes it did not make. A rule whose alert a person resolves while its
condition still holds raises a new alert at its next evaluation; a sleeping rule (see
proactive.engine.runner) is woken for it, as if it were looked at every minute: a metric rule by
a wake for its metric, a schedule rule (which sleeps while its alert is open) by a wake of its own.
"""

from collections.abc import Sequence

from alerts.channels import NotificationChannel
from alerts.models import Alert, AlertEvent, AlertStatus
from alerts.services import ENGINE
from proactive.models import MetricWake, RuleType, RuleWake, TriggerRule
from proactive.services import next_tick_after


class RulesWokenByResolves(NotificationChannel):
    name = "rules_woken_by_resolves"
    deliver_after_commit = False  # in the resolve's own transaction

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        pass

    def alerts_changed(self, changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
        resolved = [
            (alert.rule_id, event.at)
            for alert, event in changes
            if alert.rule_id and event.to_status == AlertStatus.RESOLVED and event.actor != ENGINE
        ]
        if not resolved:
            return
        # A wake, not an update of the rule row: a chunk holding the rule may be about to resolve
        # this very alert (rule, then alert), while this transaction holds the alert.
        at = dict(resolved)
        metric_wakes, schedule_wakes = [], []
        for rule_id, rule_type, tenant_id, metric, last_evaluated_at in TriggerRule.objects.filter(
            pk__in=at
        ).values_list("pk", "type", "tenant_id", "metric", "last_evaluated_at"):
            if rule_type == RuleType.SCHEDULE:
                schedule_wakes.append(RuleWake(rule_id=rule_id, at=at[rule_id]))
            else:
                wake_at = _next_tick_after(last_evaluated_at, at[rule_id])
                metric_wakes.append(MetricWake(tenant_id=tenant_id, metric=metric, at=wake_at))
        MetricWake.objects.bulk_create(metric_wakes, ignore_conflicts=True)
        RuleWake.objects.bulk_create(schedule_wakes, ignore_conflicts=True)


def _next_tick_after(last_evaluated_at, resolved_at):
    """Due at the tick after its last evaluation (or the resolve), as if it were looked at every minute."""
    if last_evaluated_at is None:
        return resolved_at
    return min(resolved_at, next_tick_after(last_evaluated_at))
