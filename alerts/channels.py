"""
Notification channels: where news of an alert goes. The alert services call
`alerts.notifications`, which fans out to the channels named in settings.ALERT_NOTIFICATION_CHANNELS.
Add email or webhooks by writing a channel and naming it there; no caller changes.
"""

from collections.abc import Sequence

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from alerts.models import Alert, AlertEvent, AlertStatus, Notification
from core.db import insert_rows

# A tenant who acknowledged or resolved an alert has dealt with its notification.
STATUSES_THAT_READ_THE_NOTIFICATION = (AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED)


class NotificationChannel:
    name: str = ""
    # External channels (email, webhooks) run in a Celery task after the alert's transaction
    # commits, so a slow or broken one never delays or rolls back an alert.
    deliver_after_commit: bool = True

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        raise NotImplementedError

    def alert_changed(self, alert: Alert, event: AlertEvent) -> None:
        raise NotImplementedError

    def alerts_changed(self, changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
        for alert, event in changes:
            self.alert_changed(alert, event)


class InAppChannel(NotificationChannel):
    """The notifications `GET /notifications` lists; written in the alert's own transaction."""

    name = "in_app"
    deliver_after_commit = False

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        now = timezone.now()
        insert_rows(
            model=Notification,
            columns=("tenant_id", "alert_id", "title", "body", "severity", "alert_status", "created_at", "updated_at"),
            rows=[
                (
                    alert.tenant_id,
                    alert.pk,
                    notification_title(alert),
                    notification_body(alert),
                    alert.severity,
                    alert.status,
                    alert.triggered_at,
                    now,
                )
                for alert in alerts
            ],
            suffix="ON CONFLICT DO NOTHING",  # one notification per alert
        )

    def alert_changed(self, alert: Alert, event: AlertEvent) -> None:
        self.alerts_changed([(alert, event)])

    def alerts_changed(self, changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
        # One UPDATE per (status, time): a batch of auto-resolves is one statement.
        groups: dict[tuple, list[int]] = {}
        for alert, event in changes:
            groups.setdefault((alert.status, event.at), []).append(alert.pk)
        for (status, at), alert_ids in groups.items():
            values = {"alert_status": status, "updated_at": at}
            if status in STATUSES_THAT_READ_THE_NOTIFICATION:
                values["read_at"] = Coalesce(F("read_at"), at)
            Notification.objects.filter(alert__id__any=alert_ids).update(**values)


def notification_title(alert: Alert) -> str:
    return f"[{alert.severity}] {alert.rule_name}"


def notification_body(alert: Alert) -> str:
    """The engine's own explanation (`payload.reason`); for other payloads, the evidence itself."""
    payload = alert.payload if isinstance(alert.payload, dict) else {}
    if isinstance(payload.get("reason"), str) and payload["reason"]:
        return payload["reason"]
    return ", ".join(f"{key}: {value}" for key, value in payload.items())[:1000]
