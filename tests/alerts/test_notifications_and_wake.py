from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts import notifications
from alerts.channels import NotificationChannel
from alerts.models import Alert, Notification
from alerts.services import (
    alert_acknowledge,
    alert_raise,
    alert_resolve,
    alert_snooze,
    alerts_resolve_for_rules,
    alerts_wake_due,
)
from alerts.tasks import deliver_alert_notification
from tests.factories import StaffUserFactory, TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db


def test_notification_follows_the_alert(tenant_client, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant, name="Spike"))

    created = tenant_client.get("/notifications").json()["results"]
    alert_acknowledge(alert=alert, actor="user:ann")
    acknowledged = tenant_client.get("/notifications").json()["results"]
    alert_resolve(alert=alert, actor="user:ann")
    resolved = tenant_client.get("/notifications").json()["results"]

    assert [(n["alertId"], n["title"], n["alertStatus"], n["read"]) for n in created] == [
        (alert.pk, "[warning] Spike", "pending", False)
    ]
    assert (acknowledged[0]["alertStatus"], acknowledged[0]["read"]) == ("acknowledged", True)
    assert resolved[0]["alertStatus"] == "resolved"
    assert resolved[0]["readAt"] == acknowledged[0]["readAt"]


def test_snooze_and_wake_keep_the_notification_in_step(tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    alert_snooze(alert=alert, until=timezone.now() + timedelta(minutes=5), actor="user:ann")
    assert Notification.objects.get().alert_status == "snoozed"
    alerts_wake_due(now=timezone.now() + timedelta(minutes=6))
    assert Notification.objects.get().alert_status == "pending"
    assert Notification.objects.get().read_at is None


def test_read_is_idempotent_and_unread_filter(tenant_client, tenant):
    first, second = (raise_alert(TriggerRuleFactory(tenant=tenant)) for _ in range(2))
    notification = Notification.objects.get(alert=first)

    once = tenant_client.post(f"/notifications/{notification.pk}/read").json()
    twice = tenant_client.post(f"/notifications/{notification.pk}/read").json()
    unread = tenant_client.get("/notifications?unread=true").json()["results"]

    assert once["read"] is True and once["readAt"] == twice["readAt"]
    assert [n["alertId"] for n in unread] == [second.pk]


def test_another_tenants_notification_is_404_and_unlisted(tenant_client, other_tenant):
    raise_alert(TriggerRuleFactory(tenant=other_tenant))
    theirs = Notification.objects.get()

    assert tenant_client.post(f"/notifications/{theirs.pk}/read").status_code == 404
    assert tenant_client.get("/notifications").json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_wake_returns_due_snoozed_alerts_to_pending(tenant):
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    due = raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=now - timedelta(hours=1))
    later = raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=now - timedelta(hours=1))
    alert_snooze(alert=due, until=now + timedelta(minutes=5), actor="user:ann", now=now)
    alert_snooze(alert=later, until=now + timedelta(hours=5), actor="user:ann", now=now)

    woken = alerts_wake_due(now=now + timedelta(minutes=5))

    assert woken == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, due.snoozed_until, later.status) == ("pending", None, "snoozed")
    last = due.history.last()
    assert (last.from_status, last.to_status, last.actor, last.reason) == (
        "snoozed",
        "pending",
        "system",
        "snooze ended",
    )
    assert alerts_wake_due(now=now + timedelta(minutes=5)) == 0


class RecordingChannel(NotificationChannel):
    name = "recording"
    delivered: list = []

    def alerts_raised(self, alerts):
        RecordingChannel.delivered.append(("raised", [alert.pk for alert in alerts]))

    def alert_changed(self, alert, event):
        RecordingChannel.delivered.append(("changed", alert.pk, event.to_status))


class BrokenChannel(NotificationChannel):
    name = "broken"

    def alerts_raised(self, alerts):
        raise ConnectionError("smtp is down")

    def alert_changed(self, alert, event):
        raise ConnectionError("smtp is down")


@pytest.fixture
def external_channels(settings, celery_eager):
    RecordingChannel.delivered = []
    settings.ALERT_NOTIFICATION_CHANNELS = [
        "alerts.channels.InAppChannel",
        "tests.alerts.test_notifications_and_wake.BrokenChannel",
        "tests.alerts.test_notifications_and_wake.RecordingChannel",
    ]
    notifications._channels.cache_clear()
    yield
    notifications._channels.cache_clear()


def test_external_channels_run_after_commit_and_a_broken_one_breaks_nothing(
    tenant, external_channels, django_capture_on_commit_callbacks
):
    rule = TriggerRuleFactory(tenant=tenant)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = alert_raise(rule=rule, payload={})
    assert RecordingChannel.delivered == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        alert_acknowledge(alert=result.alert, actor="user:ann")

    assert RecordingChannel.delivered == [("raised", [result.alert.pk]), ("changed", result.alert.pk, "acknowledged")]
    assert Alert.objects.get().status == "acknowledged"
    assert Notification.objects.get().alert_status == "acknowledged"


def test_alert_pages_render_in_admin(client, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant, name="Admin visible"))
    client.force_login(StaffUserFactory())

    listing = client.get("/admin/alerts/alert/?status__exact=pending")
    detail = client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    notes = client.get("/admin/alerts/notification/")

    assert "Admin visible" in listing.content.decode()
    assert detail.status_code == 200 and "engine" in detail.content.decode()
    assert "[warning] Admin visible" in notes.content.decode()


def test_a_batch_of_changes_is_one_delivery_per_channel(tenant, external_channels, django_capture_on_commit_callbacks):
    rules = [TriggerRuleFactory(tenant=tenant) for _ in range(3)]
    alerts = [raise_alert(rule) for rule in rules]
    RecordingChannel.delivered = []

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alerts_resolve_for_rules(rule_ids=[rule.pk for rule in rules], actor="engine", reasons={})
    for callback in callbacks:
        callback()

    assert len(callbacks) == 2  # the broken channel and the recording one: one task each
    assert sorted(RecordingChannel.delivered) == sorted(("changed", alert.pk, "resolved") for alert in alerts)


def test_a_notice_queued_in_the_old_one_event_format_is_still_delivered(tenant, external_channels):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))
    acknowledged = alert_acknowledge(alert=alert, actor="user:ann")
    event = acknowledged.history.order_by("-id").first()
    RecordingChannel.delivered = []

    deliver_alert_notification.apply(args=("recording", "changed", [alert.pk], event.pk))
    deliver_alert_notification.apply(args=("recording", "changed", [alert.pk], None))  # no event: dropped

    assert RecordingChannel.delivered == [("changed", alert.pk, "acknowledged")]
