"""
Deliveries to the tenants' own channels (email, Slack, PagerDuty, webhooks).

Routing writes one `Delivery` per (alert event, channel) in the alert's own transaction — the
unique constraint makes a second one impossible — and after commit each is sent by its own Celery
task, so a slow or dead endpoint delays nobody else's. A delivery is marked sent only once the
receiver accepted it; a failed attempt is recorded and retried with a bounded exponential backoff
(5xx, 408, 429 — honouring Retry-After —, timeouts and connection errors), a final answer (another
4xx, a refused URL) fails it at once. A worker killed mid-send leaves it pending: the task is
acknowledged late, and the sweeper re-enqueues pending deliveries that are due.

A channel with quiet hours holds non-critical notices until they end; a daily-digest channel holds
every notice until its hour. Held deliveries are bundled, once, into one digest delivery per channel
(its `items`), which is sent and retried like any other.
"""

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts.channel_messages import (
    DIGEST_LINES,
    WEBHOOK_DIGEST_NOTICES,
    AlertNotice,
    DigestNotice,
    OpenAlert,
    digest_email,
    digest_slack_message,
    digest_webhook_event,
    email_message,
    json_body,
    pagerduty_event,
    slack_message,
    webhook_event,
    webhook_signature_headers,
)
from alerts.channels import NotificationChannel
from alerts.models import (
    Alert,
    AlertEvent,
    AlertStatus,
    Channel,
    ChannelDigest,
    ChannelEvent,
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryEvent,
    DeliveryStatus,
    Severity,
)
from alerts.quiet_hours import next_daily_at
from core.outbound import OutboundError, is_retryable_status, post_json

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 10  # then 20, 40, 80, 160: the last attempt about five minutes after the first
MAX_RETRY_AFTER_SECONDS = 3600


def channel_event_of(event: AlertEvent) -> str | None:
    """What a channel is told of an alert event, if anything."""
    if not event.from_status:
        return ChannelEvent.FIRED
    if event.to_status == AlertStatus.ACKNOWLEDGED:
        return ChannelEvent.ACKNOWLEDGED
    if event.to_status == AlertStatus.RESOLVED:
        return ChannelEvent.RESOLVED
    if event.from_status == AlertStatus.SNOOZED and event.to_status == AlertStatus.PENDING:
        return ChannelEvent.SNOOZE_ENDED
    return None


class TenantChannels(NotificationChannel):
    """Routes alert events to the tenant's channels: deliveries written with the event, sent after commit."""

    name = "tenant_channels"
    deliver_after_commit = False

    def alerts_raised(self, alerts: Sequence[Alert]) -> None:
        channels = _channels_of({alert.tenant_id for alert in alerts})
        if not channels:  # the engine's hot path: one query for a chunk whose tenants have no channels
            return
        alerts = [alert for alert in alerts if alert.tenant_id in channels]
        events = AlertEvent.objects.filter(alert__in=alerts, from_status="").order_by("alert_id", "at", "id")
        first = {}
        for event in events:
            first.setdefault(event.alert_id, event)
        by_id = {alert.pk: alert for alert in alerts}
        deliveries_route([(by_id[alert_id], event) for alert_id, event in first.items()], channels=channels)

    def alerts_changed(self, changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
        deliveries_route(changes)


def _channels_of(tenant_ids: set[str]) -> dict[str, list[Channel]]:
    channels: dict[str, list[Channel]] = {}
    for channel in Channel.objects.filter(tenant_id__in=tenant_ids, enabled=True).select_related("tenant"):
        channels.setdefault(channel.tenant_id, []).append(channel)
    return channels


def deliveries_route(
    changes: Sequence[tuple[Alert, AlertEvent]], *, channels: dict[str, list[Channel]] | None = None
) -> list[Delivery]:
    """
    One delivery per channel that wants each event: its kind and the alert's severity, among the
    channels the alert's rule names (if it names any). A resolve also goes to every channel that was
    told of the firing, whatever it subscribes to.
    """
    routed = [(alert, event, kind) for alert, event in changes if (kind := channel_event_of(event)) is not None]
    if not routed:
        return []
    if channels is None:
        channels = _channels_of({alert.tenant_id for alert, _, _ in routed})
    if not channels:
        return []
    # What the channels were told of these alerts before: a resolve goes wherever the firing went,
    # and a notice never overtakes one still held for the same channel (a resolve before its firing).
    told_of_firing: dict[int, set[int]] = {}
    still_held: dict[tuple[int, int], datetime] = {}
    follow_ups = [alert.pk for alert, _, kind in routed if kind != ChannelEvent.FIRED]
    earlier = Delivery.objects.filter(alert_id__in=follow_ups).filter(
        Q(event=ChannelEvent.FIRED) | Q(status=DeliveryStatus.HELD)
    )
    for alert_id, channel_id, earlier_event, status, next_attempt_at in earlier.values_list(
        "alert_id", "channel_id", "event", "status", "next_attempt_at"
    ):
        if earlier_event == ChannelEvent.FIRED:
            told_of_firing.setdefault(alert_id, set()).add(channel_id)
        if status == DeliveryStatus.HELD:
            key = (alert_id, channel_id)
            still_held[key] = max(next_attempt_at, still_held.get(key, next_attempt_at))
    now = timezone.now()
    deliveries = []
    for alert, event, kind in routed:
        for channel in channels.get(alert.tenant_id, []):
            wanted = channel.wants(event=kind, severity=alert.severity) and (
                not alert.channel_ids or channel.pk in alert.channel_ids
            )
            if not wanted and not (kind == ChannelEvent.RESOLVED and channel.pk in told_of_firing.get(alert.pk, ())):
                continue
            held_until = channel.held_until(severity=alert.severity, at=now, zone=channel.tenant.timezone)
            if (alert.pk, channel.pk) in still_held:
                held_until = max(held_until or now, still_held[alert.pk, channel.pk])
            deliveries.append(
                Delivery(
                    tenant_id=alert.tenant_id,
                    channel=channel,
                    alert=alert,
                    alert_event=event,
                    event=kind,
                    status=DeliveryStatus.HELD if held_until else DeliveryStatus.PENDING,
                    next_attempt_at=held_until or now,
                    created_at=now,
                )
            )
    Delivery.objects.bulk_create(deliveries)
    ids = [delivery.pk for delivery in deliveries if delivery.status == DeliveryStatus.PENDING]
    transaction.on_commit(lambda: deliveries_enqueue(ids))
    return deliveries


def deliveries_enqueue(delivery_ids: Sequence[int]) -> None:
    """One task per delivery. A broker outage loses nothing: the sweeper finds them still pending."""
    from alerts.tasks import send_delivery

    for delivery_id in delivery_ids:
        try:
            send_delivery.delay(delivery_id)
        except Exception:
            logger.exception("could not enqueue delivery %s; the sweeper will retry it", delivery_id)
            return


@dataclass(frozen=True)
class SendOutcome:
    status: str
    retry_in: float | None = None  # seconds until the next attempt, if any


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> SendOutcome | None:
    """
    Send one pending, due delivery and record the attempt. None when there is nothing to do (sent,
    failed, not due, or another worker is sending it right now).
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel__tenant", "alert", "alert_event")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        now = now or timezone.now()
        if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > now):
            return None
        if _waits_for_an_earlier_notice(delivery):
            delivery.next_attempt_at = now + timedelta(seconds=FIRST_RETRY_SECONDS)
            delivery.save(update_fields=["next_attempt_at"])
            return SendOutcome(DeliveryStatus.PENDING, retry_in=FIRST_RETRY_SECONDS)
        started = time.perf_counter()
        status_code, error, retryable, retry_after = None, "", False, None
        try:
            response = _send(delivery)
            status_code, error = response.status_code, _refusal(response)
            if error:
                retryable, retry_after = is_retryable_status(status_code), response.retry_after_seconds
        except OutboundError as exc:
            error, retryable = str(exc), exc.retryable
        except Exception as exc:  # an SMTP error, a bug in a message builder: recorded, retried
            logger.exception("delivery %s failed", delivery.pk)
            error, retryable = f"{type(exc).__name__}: {exc}", True
        duration_ms = (time.perf_counter() - started) * 1000
        DeliveryAttempt.objects.create(
            delivery=delivery, at=now, status_code=status_code, duration_ms=duration_ms, error=error[:1000]
        )
        delivery.attempts += 1
        outcome = _outcome(delivery, error=error, retryable=retryable, retry_after=retry_after)
        delivery.status = outcome.status
        delivery.last_error = error[:1000]
        if outcome.status == DeliveryStatus.SENT:
            delivery.sent_at, delivery.next_attempt_at = now, None
        elif outcome.retry_in is not None:
            delivery.next_attempt_at = now + timedelta(seconds=outcome.retry_in)
        else:
            delivery.next_attempt_at = None
        delivery.save(update_fields=["attempts", "status", "last_error", "sent_at", "next_attempt_at"])
    return outcome


def _waits_for_an_earlier_notice(delivery: Delivery) -> bool:
    """
    Notices of one alert reach a channel in order: a resolve waits while its firing is still to be
    sent — pending, held, or in a digest not sent yet — so a receiver never closes before it opens.
    (A failed one is final: nothing waits for it.) Attempts are not counted while it waits.
    """
    if delivery.event == DeliveryEvent.DIGEST:
        return False
    return (
        Delivery.objects.filter(alert_id=delivery.alert_id, channel_id=delivery.channel_id, pk__lt=delivery.pk)
        .filter(
            Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.HELD])
            | Q(status=DeliveryStatus.DIGESTED, digest__status=DeliveryStatus.PENDING)
        )
        .exists()
    )


def _outcome(delivery: Delivery, *, error: str, retryable: bool, retry_after: float | None) -> SendOutcome:
    if not error:
        return SendOutcome(DeliveryStatus.SENT)
    if not retryable or delivery.attempts >= MAX_ATTEMPTS:
        return SendOutcome(DeliveryStatus.FAILED)
    backoff = FIRST_RETRY_SECONDS * 2 ** (delivery.attempts - 1)
    if retry_after is not None:  # later if the receiver asks (bounded), never sooner than the backoff
        backoff = max(backoff, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return SendOutcome(DeliveryStatus.PENDING, retry_in=backoff)


def notice_of(delivery: Delivery) -> AlertNotice:
    alert, event = delivery.alert, delivery.alert_event
    payload = alert.payload if isinstance(alert.payload, dict) else {}
    value = payload.get("value")
    return AlertNotice(
        tenant_id=alert.tenant_id,
        alert_id=alert.pk,
        event=delivery.event,
        at=event.at,
        rule_name=alert.rule_name,
        rule_type=alert.rule_type,
        severity=alert.severity,
        status=event.to_status,
        reason=str(payload.get("reason") or alert.rule_name),
        triggered_at=alert.triggered_at,
        url=f"{settings.PUBLIC_BASE_URL}/alerts/{alert.pk}",
        value=float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None,
        metric=payload.get("metric") if isinstance(payload.get("metric"), str) else None,
        actor=event.actor if event.from_status else "",
    )


def _refusal(response) -> str:
    """Empty when the receiver accepted; else its status and the start of what it said."""
    if 200 <= response.status_code < 300:
        return ""
    return f"HTTP {response.status_code}: {response.body[:300].decode(errors='replace')}"


class _Accepted:
    status_code = 250
    body = b""
    retry_after_seconds = None


def _send(delivery: Delivery):
    # The id stays the same across retries, so a receiver can tell a redelivery from a new event.
    if delivery.event == DeliveryEvent.DIGEST:
        return send_digest(delivery.channel, digest_notice_of(delivery), message_id=f"msg_{delivery.pk}")
    return send_notice(delivery.channel, notice_of(delivery), message_id=f"msg_{delivery.pk}")


def _open_alerts(channel: Channel):
    """The alerts this channel was told of that are not resolved, newest first."""
    told = Delivery.objects.filter(channel=channel, event=ChannelEvent.FIRED).values("alert_id")
    return Alert.objects.filter(tenant_id=channel.tenant_id, pk__in=told).exclude(status=AlertStatus.RESOLVED)


def digest_notice_of(digest: Delivery) -> DigestNotice:
    """What a digest delivery says, read when it is sent: its held notices and (daily) what is still open."""
    channel = digest.channel
    items = digest.items.select_related("alert", "alert_event").order_by("alert_event__at", "id")
    # A person reads fifty lines; a webhook's receiver takes each notice (up to a bound on the body).
    limit = WEBHOOK_DIGEST_NOTICES if channel.kind == ChannelKind.WEBHOOK else DIGEST_LINES
    listed = list(items[:limit])
    still_open, more_open = (), 0
    daily = channel.digest == ChannelDigest.DAILY
    if daily:
        open_alerts = _open_alerts(channel).order_by("-triggered_at", "-id")
        still_open = tuple(
            OpenAlert(
                alert_id=alert.pk,
                rule_name=alert.rule_name,
                severity=alert.severity,
                status=alert.status,
                triggered_at=alert.triggered_at,
                url=f"{settings.PUBLIC_BASE_URL}/alerts/{alert.pk}",
            )
            for alert in open_alerts[:DIGEST_LINES]
        )
        more_open = max(open_alerts.count() - len(still_open), 0) if len(still_open) == DIGEST_LINES else 0
    more_notices = max(items.count() - len(listed), 0) if len(listed) == limit else 0
    return DigestNotice(
        tenant_id=channel.tenant_id,
        kind="daily" if daily else "quietHours",
        at=digest.created_at,
        zone=channel.tenant.timezone,
        notices=tuple(notice_of(item) for item in listed),
        more_notices=more_notices,
        still_open=still_open,
        more_open=more_open,
        url=f"{settings.PUBLIC_BASE_URL}/alerts",
    )


def send_digest(channel: Channel, digest: DigestNotice, *, message_id: str):
    """One digest to one channel, in the channel's shape (PagerDuty has none: it sends at once)."""
    if channel.kind == ChannelKind.EMAIL:
        return _send_email(channel, *digest_email(digest))
    if channel.kind == ChannelKind.SLACK:
        return post_json(channel.target, json_body(digest_slack_message(digest)), {})
    if channel.kind == ChannelKind.WEBHOOK:
        return _post_signed(channel, digest_webhook_event(digest), message_id=message_id)
    raise ValueError(f"a {channel.kind} channel sends at once; it has no digests")


def _send_email(channel: Channel, subject: str, body: str):
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, channel.email_addresses).send()
    return _Accepted()


def _post_signed(channel: Channel, message: dict, *, message_id: str):
    """A webhook's JSON body, signed per Standard Webhooks with the channel's secret."""
    body = json_body(message)
    headers = webhook_signature_headers(
        secret=channel.secret, message_id=message_id, timestamp=int(time.time()), body=body
    )
    return post_json(channel.target, body, headers)


def held_reschedule(*, channel: Channel, now: datetime) -> int:
    """
    The channel's quiet hours, digest, kind or zone changed: what it holds waits for its new time —
    the end of quiet hours on the current clock, the next daily digest — or goes at the next sweep.
    A channel that became PagerDuty (which sends at once) sends each held notice on its own, now.
    """
    held = Delivery.objects.filter(channel=channel, tenant_id=channel.tenant_id, status=DeliveryStatus.HELD)
    if channel.kind == ChannelKind.PAGERDUTY:
        if not channel.enabled:  # it keeps what it holds; the first sweep after it is enabled sends them
            return held.update(next_attempt_at=now)
        # A digest not sent yet cannot go to PagerDuty: its notices go one by one instead. (The lock
        # waits for a worker sending it right now; one that got through is left alone.)
        unsent = list(
            Delivery.objects.select_for_update()
            .filter(channel=channel, event=DeliveryEvent.DIGEST, status=DeliveryStatus.PENDING)
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=unsent).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="Not sent: the channel became PagerDuty; its notices went one by one.",
        )
        again = Delivery.objects.filter(digest_id__in=unsent, status=DeliveryStatus.DIGESTED)
        ids = list(held.values_list("pk", flat=True)) + list(again.values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, next_attempt_at=now, digest=None)
        transaction.on_commit(lambda: deliveries_enqueue(ids))
        return len(ids)
    release = channel.held_until(severity=Severity.INFO, at=now, zone=channel.tenant.timezone) or now
    return held.update(next_attempt_at=release)


def digests_release(*, now: datetime | None = None) -> list[int]:
    """
    One digest per enabled channel whose held notices are due (quiet hours over) or whose daily
    digest is due; the held notices go into it. Returns the new digests' ids; they are sent after
    commit. A channel that fails is logged and left for the next sweep; the others go on.
    """
    now = now or timezone.now()
    held = (
        Delivery.objects.filter(status=DeliveryStatus.HELD, next_attempt_at__lte=now, channel__enabled=True)
        .order_by()
        .values_list("channel_id", flat=True)
        .distinct()
    )
    daily = Channel.objects.filter(digest=ChannelDigest.DAILY, next_digest_at__lte=now, enabled=True).values_list(
        "pk", flat=True
    )
    released = []
    for channel_id in sorted(set(held) | set(daily)):
        try:
            released += _release(channel_id, now)
        except Exception:
            logger.exception("releasing the held notices of channel %s failed; the next sweep tries again", channel_id)
    return released


@transaction.atomic
def _release(channel_id: int, now: datetime) -> list[int]:
    # The channel's row lock makes two sweepers take turns: the second finds nothing left to bundle.
    channel = (
        Channel.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk=channel_id, enabled=True)
        .first()
    )
    if channel is None:
        return []
    held = Delivery.objects.filter(channel=channel, tenant_id=channel.tenant_id, status=DeliveryStatus.HELD)
    if channel.kind == ChannelKind.PAGERDUTY:
        held_reschedule(channel=channel, now=now)
        return []
    if channel.digest == ChannelDigest.DAILY:
        if channel.next_digest_at is not None and channel.next_digest_at > now:
            # Held while this sweep ran, against the digest that just went: they wait for the next.
            held.filter(next_attempt_at__lte=now).update(next_attempt_at=channel.next_digest_at)
            return []
        channel.next_digest_at = next_daily_at(now, hour=channel.digest_hour, zone=channel.tenant.timezone)
        Channel.objects.filter(pk=channel.pk).update(next_digest_at=channel.next_digest_at)
        item_ids = list(held.values_list("pk", flat=True))
        if not item_ids and not _open_alerts(channel).exists():
            return []  # nothing happened and nothing is open: no message
    else:
        item_ids = list(held.filter(next_attempt_at__lte=now).values_list("pk", flat=True))
        if not item_ids:
            return []
    digest = Delivery.objects.create(
        tenant_id=channel.tenant_id,
        channel=channel,
        event=DeliveryEvent.DIGEST,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    Delivery.objects.filter(pk__in=item_ids, status=DeliveryStatus.HELD).update(
        status=DeliveryStatus.DIGESTED, digest=digest, next_attempt_at=None
    )
    transaction.on_commit(lambda: deliveries_enqueue([digest.pk]))
    return [digest.pk]


def send_notice(channel: Channel, notice: AlertNotice, *, message_id: str, dedup_key: str | None = None):
    """One notice to one channel, in the channel's shape; the receiver's response (email: accepted)."""
    if channel.kind == ChannelKind.EMAIL:
        return _send_email(channel, *email_message(notice))
    if channel.kind == ChannelKind.SLACK:
        return post_json(channel.target, json_body(slack_message(notice)), {})
    if channel.kind == ChannelKind.PAGERDUTY:
        message = pagerduty_event(notice, routing_key=channel.secret, dedup_key=dedup_key)
        return post_json(settings.PAGERDUTY_EVENTS_URL, json_body(message), {})
    return _post_signed(channel, webhook_event(notice), message_id=message_id)


@dataclass(frozen=True)
class ChannelTestResult:
    ok: bool
    status_code: int | None
    duration_ms: float
    error: str


def channel_send_test(*, channel: Channel, now: datetime | None = None) -> ChannelTestResult:
    """
    A test notice, sent now and answered now, so a tenant sees the channel work before an alert
    needs it. PagerDuty gets a trigger and its resolve, so no incident stays open. Nothing is stored.
    """
    now = now or timezone.now()
    notice = AlertNotice(
        tenant_id=channel.tenant_id,
        alert_id=0,
        event=ChannelEvent.FIRED,
        at=now,
        rule_name="Test notification",
        rule_type="schedule",
        severity="info",
        status=AlertStatus.PENDING,
        reason=f"A test from Proactive Insights: the channel {channel.name!r} works.",
        triggered_at=now,
        url=f"{settings.PUBLIC_BASE_URL}/channels/{channel.pk}",
    )
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        for event in (
            (ChannelEvent.FIRED, ChannelEvent.RESOLVED)
            if channel.kind == ChannelKind.PAGERDUTY
            else (ChannelEvent.FIRED,)
        ):
            response = send_notice(
                channel,
                dataclasses.replace(notice, event=event),
                message_id=f"msg_test_{uuid.uuid4().hex}",
                dedup_key=f"test-{channel.pk}",
            )
            status_code, error = response.status_code, _refusal(response)
            if error:
                break
    except OutboundError as exc:
        error = str(exc)
    except Exception as exc:  # an SMTP server refusing, say: the tenant is told what went wrong
        error = f"{type(exc).__name__}: {exc}"
    return ChannelTestResult(
        ok=not error, status_code=status_code, duration_ms=(time.perf_counter() - started) * 1000, error=error
    )


def deliveries_retry(*, ids: Sequence[int], now: datetime | None = None) -> int:
    """Failed deliveries queued again now ("retry now"), with a fresh count of attempts."""
    now = now or timezone.now()
    retried = list(Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.FAILED).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=retried).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now)
    transaction.on_commit(lambda: deliveries_enqueue(retried))
    return len(retried)


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending deliveries whose attempt is due (their task was lost, or their retry is late)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - timedelta(seconds=30))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
