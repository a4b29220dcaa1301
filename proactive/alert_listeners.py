"""
The engine hears of alert changes it did not make. A rule whose alert a person resolves while its
condition still holds raises a new alert at its next evaluation; a sleeping rule (see
proactive.engine.runner) is woken for it, as if it were looked at every minute.
"""

from collections.abc import Sequence

from django.db.models import F
from django.db.models.functions import Coalesce, Least, TruncMinute

from alerts.channels import NotificationChannel
from alerts.models import Alert, AlertEvent, AlertStatus
from alerts.services import ENGINE
from proactive.models import RuleType, TriggerRule
from proactive.services import METRIC_EVALUATION_INTERVAL


class RulesWokenByResolves(NotificationChannel):
    name = "rules_woken_by_resolves"
    deliver_after_commit = False  # in the resolve's own transaction

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        pass

    def alerts_changed(self, changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
        resolved = [
            alert.rule_id
            for alert, event in changes
            if alert.rule_id and event.to_status == AlertStatus.RESOLVED and event.actor != ENGINE
        ]
        if not resolved:
            return
        # Due at the tick after its last evaluation, as if it were looked at every minute.
        next_tick = TruncMinute("last_evaluated_at") + METRIC_EVALUATION_INTERVAL
        TriggerRule.objects.filter(pk__in=resolved, enabled=True).exclude(type=RuleType.SCHEDULE).update(
            next_run_at=Coalesce(Least(F("next_run_at"), next_tick), F("next_run_at"))
        )
