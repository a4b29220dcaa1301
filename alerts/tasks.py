import logging

from celery import shared_task

from alerts.deliveries import deliveries_due, deliveries_enqueue, delivery_send, digests_release
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


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_delivery(delivery_id: int) -> str | None:
    """
    Send one delivery; schedule its retry if it asks for one. Acknowledged late and requeued if the
    worker dies, so a delivery cut off mid-send is sent again rather than lost.
    """
    outcome = delivery_send(delivery_id=delivery_id)
    if outcome is None:
        return None
    if outcome.retry_in is not None:
        send_delivery.apply_async((delivery_id,), countdown=outcome.retry_in)
    return outcome.status


@shared_task(max_retries=0, ignore_result=True, expires=55)
def sweep_deliveries() -> int:
    """
    Every minute: bundle held notices whose quiet hours ended, and daily digests that are due, into
    digests (sent after commit); re-enqueue pending deliveries that are overdue (their task was lost
    with the broker or a worker).
    """
    digests_release()  # a channel that fails is logged and skipped: it cannot stop the rest
    due = deliveries_due()
    deliveries_enqueue(due)
    return len(due)
