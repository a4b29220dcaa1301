"""Staff manage channels and deliveries in the admin: secrets write-only, failed deliveries retried."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from alerts.models import Channel, Delivery, DeliveryStatus
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db

CHANNELS = "/admin/alerts/channel/"
DELIVERIES = "/admin/alerts/delivery/"


def form(tenant, **fields):
    return {
        "tenant": tenant.pk,
        "name": "On-call hook",
        "kind": "webhook",
        "target": "https://hooks.acme.example/alerts",
        "secret": "",
        "min_severity": "warning",
        "events": ["fired", "resolved"],
        "enabled": "on",
        "quiet_hours_start": "",
        "quiet_hours_end": "",
        "digest": "off",
        "digest_hour": "9",
        **fields,
    }


def test_a_new_webhook_gets_a_secret_shown_once_and_masked_after(staff, tenant):
    response = staff.post(f"{CHANNELS}add/", form(tenant), follow=True)

    channel = Channel.objects.get()
    assert channel.secret.startswith("whsec_") and channel.events == ["fired", "resolved"]
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert any(channel.secret in message for message in shown)
    page = staff.get(f"{CHANNELS}{channel.pk}/change/").content.decode()
    assert channel.secret not in page
    assert channel.secret[:10] + "…" in staff.get(CHANNELS).content.decode()


def test_an_edit_that_leaves_the_secret_empty_keeps_it(staff, tenant):
    staff.post(f"{CHANNELS}add/", form(tenant))
    channel = Channel.objects.get()
    secret = channel.secret

    staff.post(f"{CHANNELS}{channel.pk}/change/", form(tenant, name="Renamed"))

    channel.refresh_from_db()
    assert (channel.name, channel.secret) == ("Renamed", secret)


def test_a_bad_channel_is_refused_and_names_the_field(staff, tenant):
    response = staff.post(f"{CHANNELS}add/", form(tenant, kind="email", target="oncall@acme, nope"))

    assert response.status_code == 200
    assert "is not an email address" in response.content.decode()
    assert not Channel.objects.exists()


def test_retry_now_queues_failed_deliveries_again(staff, tenant, django_capture_on_commit_callbacks):
    channel = Channel.objects.create(
        tenant=tenant,
        name="hook",
        kind="webhook",
        target="https://x.example",
        secret="whsec_" + "A" * 44,
        events=["fired"],
    )
    raise_alert(TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=1))
    Delivery.objects.update(status=DeliveryStatus.FAILED, attempts=6, last_error="HTTP 500: down", next_attempt_at=None)
    delivery = channel.deliveries.get()

    with django_capture_on_commit_callbacks() as queued:
        response = staff.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at <= timezone.now()
    assert "1 failed delivery(ies) queued again." in response.content.decode()
    assert len(queued) == 1  # the re-enqueue waits for the commit


def test_send_a_test_notification_from_the_admin(staff, tenant, mailoutbox):
    email = Channel.objects.create(
        tenant=tenant, name="mail", kind="email", target="oncall@acme.example", events=["fired"]
    )

    response = staff.post(CHANNELS, {"action": "send_test", "_selected_action": [email.pk]}, follow=True)

    shown = [str(message) for message in get_messages(response.wsgi_request)]
    [sent] = mailoutbox
    assert len(shown) == 1 and shown[0].startswith("mail (email): accepted (250, "), shown
    assert sent.to == ["oncall@acme.example"] and sent.subject == "[info] Test notification fired"


def test_quiet_hours_and_a_daily_digest_are_set_and_checked_in_the_admin(staff, tenant):
    refused = staff.post(f"{CHANNELS}add/", form(tenant, quiet_hours_start="22:00"))
    staff.post(f"{CHANNELS}add/", form(tenant, quiet_hours_start="22:00", quiet_hours_end="07:00"))
    staff.post(f"{CHANNELS}add/", form(tenant, name="Daily", digest="daily", digest_hour="8"))

    assert "Quiet hours need both a start and an end" in str(refused.context["adminform"].form.errors)
    quiet, daily = Channel.objects.get(name="On-call hook"), Channel.objects.get(name="Daily")
    assert (f"{quiet.quiet_hours_start:%H:%M}", f"{quiet.quiet_hours_end:%H:%M}") == ("22:00", "07:00")
    assert daily.next_digest_at is not None and daily.next_digest_at.minute == 0
    listing = staff.get(CHANNELS).content.decode()
    assert "at once; quiet 22:00–07:00 (UTC)" in listing and "daily digest at 08:00 (UTC)" in listing
