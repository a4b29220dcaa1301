import logging

from celery import shared_task

from alerts.models import Alert, AlertEvent
from alerts.notifications import channel_by_name
from alerts.services import alerts_wake_due

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(Exception,),
    max_retries=5,
    retry_backoff=True,
    retry_jitter=True,
    acks_late=True,
)
def deliver_alert_notification(self, channel_name: str, kind: str, alert_ids: list[int], event_ids=None):
    """`kind` "raised": the alerts; "changed": the alerts with their events (pairwise)."""
    channel = channel_by_name(channel_name)
    if channel is None:
        logger.warning("notification channel %r is no longer configured; dropping", channel_name)
        return
    alerts = Alert.objects.in_bulk(alert_ids)  # vanished alerts are simply skipped
    if kind == "raised":
        channel.alerts_raised([alerts[alert_id] for alert_id in alert_ids if alert_id in alerts])
        return
    if isinstance(event_ids, int):  # queued before changes were batched: one alert, one event
        event_ids = [event_ids]
    if not event_ids or len(event_ids) != len(alert_ids):
        logger.warning("a %s notice without its events for alerts %s; dropping", channel_name, alert_ids)
        return
    events = AlertEvent.objects.in_bulk(event_ids)
    changes = [
        (alerts[alert_id], events[event_id])
        for alert_id, event_id in zip(alert_ids, event_ids, strict=True)
        if alert_id in alerts and event_id in events
    ]
    if changes:
        channel.alerts_changed(changes)


@shared_task(max_retries=0, ignore_result=True, expires=55)
def wake_snoozed_alerts() -> int:
    return alerts_wake_due()
