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
def deliver_alert_notification(self, channel_name: str, kind: str, alert_ids: list[int], event_id=None):
    channel = channel_by_name(channel_name)
    if channel is None:
        logger.warning("notification channel %r is no longer configured; dropping", channel_name)
        return
    alerts = list(Alert.objects.filter(pk__in=alert_ids))  # vanished alerts are simply skipped
    if kind == "raised":
        channel.alerts_raised(alerts)
        return
    event = AlertEvent.objects.filter(pk=event_id).first()
    if alerts and event is not None:
        channel.alert_changed(alerts[0], event)


@shared_task(max_retries=0, ignore_result=True, expires=55)
def wake_snoozed_alerts() -> int:
    return alerts_wake_due()
