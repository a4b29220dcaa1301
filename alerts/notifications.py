"""The notification service: tells every configured channel that alerts were raised or changed."""

import logging
from collections.abc import Sequence
from functools import cache

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from alerts.channels import NotificationChannel
from alerts.models import Alert, AlertEvent

logger = logging.getLogger(__name__)


@cache
def _channels(paths: tuple[str, ...]) -> tuple[NotificationChannel, ...]:
    return tuple(import_string(path)() for path in paths)


def notification_channels() -> tuple[NotificationChannel, ...]:
    return _channels(tuple(settings.ALERT_NOTIFICATION_CHANNELS))


def channel_by_name(name: str) -> NotificationChannel | None:
    return next((channel for channel in notification_channels() if channel.name == name), None)


def _after_commit(channel: NotificationChannel, kind: str, alert_ids: list[int], event_ids: list[int] | None = None):
    """One task per channel and batch: a thousand auto-resolves are one delivery, not a thousand."""
    from alerts.tasks import deliver_alert_notification

    def enqueue():
        try:
            deliver_alert_notification.delay(channel.name, kind, alert_ids, event_ids)
        except Exception:  # the broker is down: the alert stands, the delivery is logged as lost
            logger.exception("could not enqueue %s notification for alerts %s", channel.name, alert_ids)

    transaction.on_commit(enqueue)


def notify_alerts_raised(alerts: Sequence[Alert]) -> None:
    if not alerts:
        return
    for channel in notification_channels():
        if channel.deliver_after_commit:
            _after_commit(channel, "raised", [alert.pk for alert in alerts])
        else:
            channel.alerts_raised(alerts)


def notify_alert_changed(alert: Alert, event: AlertEvent) -> None:
    notify_alerts_changed([(alert, event)])


def notify_alerts_changed(changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
    if not changes:
        return
    for channel in notification_channels():
        if channel.deliver_after_commit:
            _after_commit(channel, "changed", [alert.pk for alert, _ in changes], [event.pk for _, event in changes])
        else:
            channel.alerts_changed(changes)
