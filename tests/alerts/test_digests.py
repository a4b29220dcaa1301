"""
Quiet hours and daily digests: held notices go out once, as one digest per channel, to real
receivers (an HTTP server verified with the standardwebhooks package, an SMTP server).
"""

import email
import json
import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts.channel_messages import new_webhook_secret
from alerts.deliveries import delivery_send, digests_release
from alerts.models import Channel, Delivery
from alerts.quiet_hours import next_daily_at
from alerts.services import alert_resolve, channel_create, channel_update
from tenants.services import tenant_update
from tests.alerts.test_deliveries import ALL_EVENTS, Receiver, rule, send_all
from tests.factories import raise_alert

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def outbound_to_localhost(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    settings.PUBLIC_BASE_URL = "https://insights.example.com"


@pytest.fixture
def server():
    receiver = Receiver()
    yield receiver
    receiver.close()


def channel(tenant, **fields):
    """Through the service, as the API and the admin save them: a daily digest gets its schedule."""
    return channel_create(tenant=tenant, **{"name": f"channel {Channel.objects.count()}", "kind": "webhook", **fields})


def quiet_now(zone="UTC"):
    """Quiet hours that hold right now: from an hour ago to two hours ahead, on the zone's clock."""
    from zoneinfo import ZoneInfo

    local = timezone.now().astimezone(ZoneInfo(zone))
    start = (local - timedelta(hours=1)).replace(second=0, microsecond=0)
    end = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    return {"quiet_hours_start": start.time(), "quiet_hours_end": end.time()}


def quiet_channel(tenant, url, secret, **fields):
    made = channel(tenant, target=url, secret=secret, **{**quiet_now(tenant.timezone), **fields})
    return made


class TestQuietHours:
    def test_notices_below_critical_wait_and_go_as_one_digest_when_quiet_hours_end(self, tenant, server):
        secret = new_webhook_secret()
        hook = quiet_channel(tenant, server.url, secret)
        warning, info = raise_alert(rule(tenant, severity="warning")), raise_alert(rule(tenant, severity="info"))
        critical = raise_alert(rule(tenant, severity="critical"))

        held = list(Delivery.objects.filter(status="held").order_by("alert_id"))
        [pending] = Delivery.objects.filter(status="pending")
        ends = held[0].next_attempt_at
        assert [d.alert_id for d in held] == [warning.pk, info.pk] and pending.alert_id == critical.pk
        assert {d.next_attempt_at for d in held} == {ends} and ends > timezone.now() + timedelta(minutes=100)
        send_all()  # the critical one goes at once; the held ones are not sent
        assert len(server.requests) == 1

        assert digests_release(now=ends - timedelta(minutes=1)) == []
        [digest_id] = digests_release(now=ends)
        assert digests_release(now=ends + timedelta(minutes=1)) == []  # released once

        digest = Delivery.objects.get(pk=digest_id)
        assert (digest.event, digest.status, digest.alert_id, digest.channel_id) == ("digest", "pending", None, hook.pk)
        assert set(digest.items.values_list("alert_id", "status")) == {(warning.pk, "digested"), (info.pk, "digested")}
        assert delivery_send(delivery_id=digest_id, now=ends).status == "sent"
        headers, body = server.requests[-1]
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "alerts.digest" and event["data"]["kind"] == "quietHours"
        assert [(n["type"], n["alertId"]) for n in event["data"]["notices"]] == [
            ("alert.fired", warning.pk),
            ("alert.fired", info.pk),
        ]
        assert event["data"]["stillOpen"] is None and event["data"]["moreNotices"] == 0

    def test_a_resolve_during_quiet_hours_waits_with_its_firing(self, tenant, server):
        quiet_channel(tenant, server.url, new_webhook_secret())
        alert = raise_alert(rule(tenant, severity="warning"))
        alert_resolve(alert=alert, actor="user:ann")

        assert sorted(Delivery.objects.values_list("event", "status")) == [("fired", "held"), ("resolved", "held")]
        [digest_id] = digests_release(now=timezone.now() + timedelta(hours=3))
        assert Delivery.objects.get(pk=digest_id).items.count() == 2

    def test_the_digest_is_retried_like_any_delivery(self, tenant):
        server = Receiver([(500, {})])
        try:
            quiet_channel(tenant, server.url, new_webhook_secret())
            raise_alert(rule(tenant, severity="warning"))
            at = timezone.now() + timedelta(hours=3)
            [digest_id] = digests_release(now=at)

            first = delivery_send(delivery_id=digest_id, now=at)
            second = delivery_send(delivery_id=digest_id, now=at + timedelta(seconds=10))
        finally:
            server.close()

        assert (first.status, first.retry_in, second.status) == ("pending", 10, "sent")
        assert len(server.requests) == 2
        assert len({headers["webhook-id"] for headers, _ in server.requests}) == 1

    def test_two_sweepers_at_once_make_one_digest(self, tenant, server):
        quiet_channel(tenant, server.url, new_webhook_secret())
        for _ in range(20):
            raise_alert(rule(tenant, severity="warning"))
        at = timezone.now() + timedelta(hours=3)
        results, barrier = [], threading.Barrier(2)

        def sweep():
            barrier.wait()
            try:
                results.append(digests_release(now=at))
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(len(released) for released in results) == [0, 1]
        [digest] = Delivery.objects.filter(event="digest")
        assert digest.items.count() == 20 and not Delivery.objects.filter(status="held").exists()

    def test_changing_the_quiet_hours_lets_what_waits_go_at_the_next_sweep(self, tenant, server):
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))

        channel_update(channel=hook, quiet_hours_start=None, quiet_hours_end=None)

        held = Delivery.objects.get()
        assert held.status == "held" and held.next_attempt_at <= timezone.now()
        [digest_id] = digests_release()
        assert Delivery.objects.get(pk=digest_id).items.get() == held

    def test_quiet_hours_are_read_on_the_tenants_clock(self, tenant, server):
        tenant_update(tenant=tenant, timezone="Asia/Kolkata")  # UTC+5:30
        tenant.refresh_from_db()
        quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))

        held = Delivery.objects.get()
        from zoneinfo import ZoneInfo

        ends = held.next_attempt_at.astimezone(ZoneInfo("Asia/Kolkata")).time().replace(second=0, microsecond=0)
        assert ends == Channel.objects.get().quiet_hours_end


class TestDailyDigest:
    def test_one_email_a_day_lists_what_happened_and_what_is_still_open(self, tenant, smtp_server, settings):
        controller, inbox = smtp_server
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        tenant_update(tenant=tenant, timezone="Europe/Berlin")
        tenant.refresh_from_db()
        daily = channel(tenant, kind="email", target="team@acme.example", secret="", digest="daily", digest_hour=8)
        assert daily.next_digest_at == next_daily_at(timezone.now(), hour=8, zone="Europe/Berlin")
        still_open = raise_alert(rule(tenant, severity="critical"))  # critical too: a digest channel holds all
        gone = raise_alert(rule(tenant, severity="warning"))
        alert_resolve(alert=gone, actor="user:ann")
        assert set(Delivery.objects.values_list("status", flat=True)) == {"held"}
        due = daily.next_digest_at

        [digest_id] = digests_release(now=due)
        outcome = delivery_send(delivery_id=digest_id, now=due)

        assert outcome.status == "sent"
        [envelope] = inbox.messages
        message = email.message_from_bytes(envelope.content)
        assert message["Subject"] == "Daily digest: 3 notices, 1 still open"
        body = message.get_payload()
        assert "Times are Europe/Berlin." in body
        assert body.count(f"https://insights.example.com/alerts/{gone.pk}") == 2  # fired, resolved
        still_open_section = body.split("Still open:")[1]
        assert f"/alerts/{still_open.pk}" in still_open_section and f"/alerts/{gone.pk}" not in still_open_section
        daily.refresh_from_db()
        assert daily.next_digest_at == next_daily_at(due, hour=8, zone="Europe/Berlin")
        assert daily.next_digest_at - due in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))

    def test_a_quiet_day_with_open_alerts_still_lists_them_and_an_empty_one_sends_nothing(self, tenant, server):
        secret = new_webhook_secret()
        daily = channel(tenant, target=server.url, secret=secret, digest="daily", digest_hour=9)
        alert = raise_alert(rule(tenant, severity="warning"))
        first = daily.next_digest_at
        [first_digest] = digests_release(now=first)
        delivery_send(delivery_id=first_digest, now=first)
        daily.refresh_from_db()
        second = daily.next_digest_at

        [second_digest] = digests_release(now=second)  # nothing new happened; the alert is still open
        delivery_send(delivery_id=second_digest, now=second)
        alert_resolve(alert=alert, actor="user:ann")  # held for the third day's digest
        daily.refresh_from_db()
        [third_digest] = digests_release(now=daily.next_digest_at)
        delivery_send(delivery_id=third_digest, now=daily.next_digest_at)
        daily.refresh_from_db()
        assert digests_release(now=daily.next_digest_at) == []  # nothing happened, nothing open: no message

        events = [Webhook(secret).verify(body, headers)["data"] for headers, body in server.requests]
        assert [(len(e["notices"]), [a["alertId"] for a in e["stillOpen"]]) for e in events] == [
            (1, [alert.pk]),
            (0, [alert.pk]),
            (1, []),
        ]
        daily.refresh_from_db()
        assert daily.next_digest_at > second + timedelta(days=1)

    def test_slack_gets_a_digest_in_its_shape(self, tenant, server):
        channel(tenant, kind="slack", target=server.url, secret="", digest="daily", digest_hour=9)
        alert = raise_alert(rule(tenant, severity="warning"))
        at = Channel.objects.get().next_digest_at

        [digest_id] = digests_release(now=at)
        delivery_send(delivery_id=digest_id, now=at)

        message = json.loads(server.requests[0][1])
        assert message["text"] == "Daily digest: 1 notice, 1 still open"
        assert [block["type"] for block in message["blocks"]] == ["header", "section", "section", "context"]
        assert f"<https://insights.example.com/alerts/{alert.pk}|" in message["blocks"][1]["text"]["text"]

    def test_a_time_zone_change_moves_the_digest_to_the_hour_on_the_new_clock(self, tenant, server):
        daily = channel(tenant, target=server.url, secret=new_webhook_secret(), digest="daily", digest_hour=9)
        raise_alert(rule(tenant, severity="warning"))
        now = datetime(2026, 11, 27, 12, tzinfo=UTC)

        tenant_update(tenant=tenant, timezone="America/New_York", now=now)

        daily.refresh_from_db()
        assert daily.next_digest_at == datetime(2026, 11, 27, 14, tzinfo=UTC)  # 09:00 in New York
        assert Delivery.objects.get().next_attempt_at == daily.next_digest_at


class TestTheApi:
    def test_quiet_hours_and_digests_through_the_api(self, tenant, tenant_client, server):
        created = tenant_client.post(
            "/channels",
            {
                "name": "night",
                "kind": "webhook",
                "target": server.url,
                "quietHoursStart": "22:00",
                "quietHoursEnd": "07:00",
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        body = created.json()
        assert (body["quietHoursStart"], body["quietHoursEnd"], body["digest"], body["nextDigestAt"]) == (
            "22:00",
            "07:00",
            "off",
            None,
        )
        changed = tenant_client.patch(
            f"/channels/{body['id']}",
            {"quietHoursStart": None, "quietHoursEnd": None, "digest": "daily", "digestHour": 6},
            format="json",
        ).json()
        assert (changed["quietHoursStart"], changed["digest"], changed["digestHour"]) == (None, "daily", 6)
        assert changed["nextDigestAt"] == Channel.objects.get().next_digest_at.isoformat().replace("+00:00", "Z")

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"quietHoursStart": "22:00"}, "quietHoursEnd", "Quiet hours need both a start and an end"),
            ({"quietHoursStart": "22:00", "quietHoursEnd": "22:00"}, "quietHoursEnd", "another time"),
            ({"quietHoursStart": "25:00", "quietHoursEnd": "07:00"}, "quietHoursStart", "Time has wrong format"),
            ({"digest": "weekly"}, "digest", '"weekly" is not a valid digest; allowed: off, daily.'),
            ({"digest": "daily", "digestHour": 24}, "digestHour", "less than or equal to 23"),
            (
                {"digest": "daily", "quietHoursStart": "22:00", "quietHoursEnd": "07:00"},
                "quietHoursStart",
                "A daily digest channel sends once a day",
            ),
            ({"kind": "pagerduty", "target": "", "secret": "KEY", "digest": "daily"}, "digest", "sends at once"),
            (
                {
                    "kind": "pagerduty",
                    "target": "",
                    "secret": "KEY",
                    "quietHoursStart": "1:00",
                    "quietHoursEnd": "2:00",
                },
                "quietHoursStart",
                "sends at once",
            ),
        ],
    )
    def test_bad_quiet_hours_and_digests_are_400s_that_name_the_field(self, tenant_client, fields, field, message):
        payload = {"name": "c", "kind": "webhook", "target": "https://hooks.example.com/x", **fields}

        response = tenant_client.post("/channels", payload, format="json")

        assert response.status_code == 400
        assert any(message in text for text in response.json()["detail"][field]), response.json()
        assert not Channel.objects.exists()

    def test_deliveries_show_what_is_held_and_what_a_digest_carried(self, tenant, tenant_client, server):
        quiet_channel(tenant, server.url, new_webhook_secret())
        first, second = raise_alert(rule(tenant, severity="warning")), raise_alert(rule(tenant, severity="info"))

        held = tenant_client.get("/deliveries?status=held").json()["results"]
        assert sorted(d["alertId"] for d in held) == [first.pk, second.pk]
        assert all(d["nextAttemptAt"] and d["digestId"] is None for d in held)
        [digest_id] = digests_release(now=timezone.now() + timedelta(hours=3))

        [digest] = [d for d in tenant_client.get("/deliveries").json()["results"] if d["event"] == "digest"]
        items = tenant_client.get(f"/deliveries?digest={digest_id}").json()["results"]
        assert (digest["id"], digest["alertId"], digest["status"]) == (digest_id, None, "pending")
        assert sorted((d["alertId"], d["status"], d["digestId"]) for d in items) == [
            (first.pk, "digested", digest_id),
            (second.pk, "digested", digest_id),
        ]


def test_the_sweeper_task_releases_digests(tenant, server):
    from alerts.tasks import sweep_deliveries

    hook = channel(tenant, target=server.url, secret=new_webhook_secret(), events=ALL_EVENTS, digest="daily")
    raise_alert(rule(tenant, severity="warning"))
    Channel.objects.filter(pk=hook.pk).update(next_digest_at=timezone.now() - timedelta(seconds=1))

    sweep_deliveries()

    digest = Delivery.objects.get(event="digest")
    assert digest.items.count() == 1 and Channel.objects.get().next_digest_at > timezone.now()


def test_quiet_hours_past_midnight_are_a_valid_pair_and_equal_ends_are_not(tenant):
    from django.core.exceptions import ValidationError

    night = Channel(
        tenant=tenant,
        name="n",
        kind="email",
        target="a@example.com",
        events=ALL_EVENTS,
        quiet_hours_start=time(22),
        quiet_hours_end=time(7),
    )
    night.full_clean()  # past midnight: accepted
    assert night.has_quiet_hours

    night.quiet_hours_end = time(22)
    with pytest.raises(ValidationError) as raised:
        night.full_clean()
    assert raised.value.message_dict["quiet_hours_end"] == ["Quiet hours end at another time than they start."]


@pytest.mark.slow
def test_a_digest_through_a_real_worker_reaches_the_receiver(tenant, server):
    """Beat's sweep on a worker over Redis: the held notice is bundled, and the digest is sent by the worker."""
    from celery.contrib.testing.worker import start_worker

    from alerts.tasks import sweep_deliveries
    from config.celery import app

    assert app.conf.broker_url.startswith("redis://") and not app.conf.task_always_eager
    secret = new_webhook_secret()
    hook = channel(tenant, target=server.url, secret=secret, digest="daily", digest_hour=9)
    alert = raise_alert(rule(tenant, severity="critical"))
    Channel.objects.filter(pk=hook.pk).update(next_digest_at=timezone.now() - timedelta(seconds=1))
    app.control.purge()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        sweep_deliveries.delay()
        deadline = timezone.now() + timedelta(seconds=30)
        while timezone.now() < deadline and not server.requests:
            threading.Event().wait(0.1)
        connection.close()

    [(headers, body)] = server.requests
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "alerts.digest" and [n["alertId"] for n in event["data"]["notices"]] == [alert.pk]
    assert Delivery.objects.get(event="digest").status == "sent"
    assert Delivery.objects.get(event="fired").status == "digested"


class TestWhatAChannelHoldsIsNeverLostNorSentTwice:
    def test_a_channel_turned_pagerduty_sends_each_held_notice_on_its_own(self, tenant, server, settings):
        settings.PAGERDUTY_EVENTS_URL = server.url
        hook = quiet_channel(tenant, "https://hooks.example.com/x", new_webhook_secret())
        alert = raise_alert(rule(tenant, severity="warning"))

        channel_update(
            channel=hook, kind="pagerduty", target="", secret="R0UT1NG", quiet_hours_start=None, quiet_hours_end=None
        )
        send_all()

        [delivery] = Delivery.objects.all()
        assert (delivery.status, delivery.event) == ("sent", "fired")
        [(_, body)] = server.requests
        assert json.loads(body)["dedup_key"] == str(alert.pk)
        assert digests_release(now=timezone.now() + timedelta(days=1)) == []

    def test_a_disabled_channel_keeps_what_it_holds_until_it_is_enabled(self, tenant, server):
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        channel_update(channel=hook, enabled=False)
        later = timezone.now() + timedelta(hours=3)

        assert digests_release(now=later) == []
        assert Delivery.objects.get().status == "held"
        channel_update(channel=Channel.objects.get(), enabled=True)
        [digest_id] = digests_release(now=later)
        assert Delivery.objects.get(pk=digest_id).items.count() == 1

    def test_a_notice_held_as_the_daily_digest_goes_waits_for_the_next_one(self, tenant, server):
        daily = channel(tenant, target=server.url, secret=new_webhook_secret(), digest="daily", digest_hour=9)
        raise_alert(rule(tenant, severity="warning"))
        due = daily.next_digest_at
        [first] = digests_release(now=due)
        # An engine transaction that read the channel before the sweep held a notice against `due`.
        late = raise_alert(rule(tenant, severity="warning"))
        Delivery.objects.filter(alert=late).update(next_attempt_at=due)

        assert digests_release(now=due + timedelta(minutes=1)) == []  # no second "daily" digest

        daily.refresh_from_db()
        assert Delivery.objects.get(alert=late).next_attempt_at == daily.next_digest_at > due
        [second] = digests_release(now=daily.next_digest_at)
        assert list(Delivery.objects.get(pk=second).items.values_list("alert_id", flat=True)) == [late.pk]

    def test_a_resolve_never_overtakes_its_held_firing(self, tenant, server):
        """A warning held by quiet hours and resolved by a person: the critical-less resolve waits too."""
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        alert = raise_alert(rule(tenant, severity="warning"))
        channel_update(channel=hook, quiet_hours_start=None, quiet_hours_end=None)  # held one goes at the sweep
        fired = Delivery.objects.get()

        alert_resolve(alert=alert, actor="user:ann")

        resolved = Delivery.objects.get(event="resolved")
        assert resolved.status == "held" and resolved.next_attempt_at >= fired.next_attempt_at
        [digest_id] = digests_release()
        assert Delivery.objects.get(pk=digest_id).items.count() == 2

    def test_new_quiet_hours_that_still_cover_now_keep_holding_until_their_end(self, tenant, server):
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        start = (timezone.now() - timedelta(hours=2)).replace(second=0, microsecond=0)
        end = (timezone.now() + timedelta(hours=5)).replace(second=0, microsecond=0)

        channel_update(channel=hook, quiet_hours_start=start.time(), quiet_hours_end=end.time())

        assert Delivery.objects.get().next_attempt_at == end

    def test_deleting_a_channel_takes_its_digests_and_their_items(self, tenant, server, tenant_client):
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        digests_release(now=timezone.now() + timedelta(hours=3))

        assert tenant_client.delete(f"/channels/{hook.pk}").status_code == 204
        assert not Delivery.objects.exists()

    def test_the_database_keeps_a_digested_notice_tied_to_its_digest(self, tenant, server):
        from django.db import IntegrityError, transaction
        from django.db.models.deletion import RestrictedError

        quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        [digest_id] = digests_release(now=timezone.now() + timedelta(hours=3))

        with pytest.raises(RestrictedError):
            Delivery.objects.get(pk=digest_id).delete()
        with pytest.raises(IntegrityError), transaction.atomic():
            Delivery.objects.filter(event="fired").update(digest=None)
        with pytest.raises(IntegrityError), transaction.atomic():
            Delivery.objects.filter(pk=digest_id).update(status="held")

    def test_one_broken_channel_does_not_stop_the_others_digests(self, tenant, other_tenant, server):
        from tenants.models import Tenant

        channel(tenant, target=server.url, secret=new_webhook_secret(), digest="daily")
        quiet_channel(other_tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        raise_alert(rule(other_tenant, severity="warning"))
        Channel.objects.filter(tenant=tenant).update(next_digest_at=timezone.now())
        Tenant.objects.filter(pk=tenant.pk).update(timezone="Nowhere/Atlantis")  # a zone tzdata no longer has

        released = digests_release(now=timezone.now() + timedelta(hours=3))

        assert [Delivery.objects.get(pk=pk).tenant_id for pk in released] == [other_tenant.pk]
        assert Delivery.objects.get(tenant=tenant).status == "held"  # rolled back, tried again next sweep

    def test_a_webhook_digest_carries_every_notice(self, tenant, server):
        secret = new_webhook_secret()
        quiet_channel(tenant, server.url, secret)
        alerts = [raise_alert(rule(tenant, severity="warning")) for _ in range(60)]
        at = timezone.now() + timedelta(hours=3)
        [digest_id] = digests_release(now=at)

        delivery_send(delivery_id=digest_id, now=at)

        data = Webhook(secret).verify(server.requests[0][1], server.requests[0][0])["data"]
        assert [n["alertId"] for n in data["notices"]] == [alert.pk for alert in alerts]
        assert data["moreNotices"] == 0


def test_a_daily_channel_enabled_again_sends_at_its_next_hour_not_at_once(tenant, server):
    daily = channel(tenant, target=server.url, secret=new_webhook_secret(), digest="daily", digest_hour=9)
    raise_alert(rule(tenant, severity="warning"))
    channel_update(channel=daily, enabled=False)
    Channel.objects.filter(pk=daily.pk).update(next_digest_at=timezone.now() - timedelta(days=2))

    enabled = channel_update(channel=Channel.objects.get(), enabled=True)

    assert enabled.next_digest_at == next_daily_at(timezone.now(), hour=9, zone="UTC")
    assert digests_release() == [] and Delivery.objects.get().status == "held"
    [digest_id] = digests_release(now=enabled.next_digest_at)
    assert Delivery.objects.get(pk=digest_id).items.count() == 1


class TestNoticesOfOneAlertArriveInOrder:
    def test_a_resolve_waits_for_the_digest_that_carries_its_firing(self, tenant, server):
        secret = new_webhook_secret()
        hook = quiet_channel(tenant, server.url, secret)
        alert = raise_alert(rule(tenant, severity="warning"))
        channel_update(channel=hook, quiet_hours_start=None, quiet_hours_end=None)
        [digest_id] = digests_release()  # the digest is pending: its receiver has not taken it yet
        alert_resolve(alert=alert, actor="user:ann")
        resolve = Delivery.objects.get(event="resolved")
        assert resolve.status == "pending"

        waiting = delivery_send(delivery_id=resolve.pk, now=timezone.now() + timedelta(seconds=1))
        assert (waiting.status, waiting.retry_in) == ("pending", 10)
        assert Delivery.objects.get(pk=resolve.pk).attempts == 0 and server.requests == []
        delivery_send(delivery_id=digest_id, now=timezone.now() + timedelta(seconds=1))
        sent = delivery_send(delivery_id=resolve.pk, now=timezone.now() + timedelta(seconds=20))

        assert sent.status == "sent"
        types = [Webhook(secret).verify(body, headers)["type"] for headers, body in server.requests]
        assert types == ["alerts.digest", "alert.resolved"]

    def test_a_channel_turned_pagerduty_sends_an_unsent_digests_notices_one_by_one_in_order(
        self, tenant, server, settings
    ):
        settings.PAGERDUTY_EVENTS_URL = server.url
        hook = quiet_channel(tenant, "https://hooks.example.com/x", new_webhook_secret())
        alert = raise_alert(rule(tenant, severity="warning"))
        alert_resolve(alert=alert, actor="user:ann")
        [digest_id] = digests_release(now=timezone.now() + timedelta(hours=3))

        channel_update(
            channel=hook, kind="pagerduty", target="", secret="R0UT1NG", quiet_hours_start=None, quiet_hours_end=None
        )
        for minute in range(1, 4):  # a worker's pass, then the retry of the one that waited
            send_all(now=timezone.now() + timedelta(minutes=minute))

        digest = Delivery.objects.get(pk=digest_id)
        assert digest.status == "failed" and "became PagerDuty" in digest.last_error
        assert sorted(Delivery.objects.exclude(pk=digest_id).values_list("event", "status", "digest_id")) == [
            ("fired", "sent", None),
            ("resolved", "sent", None),
        ]
        actions = [json.loads(body)["event_action"] for _, body in server.requests]
        assert actions == ["trigger", "resolve"]

    def test_a_quiet_hours_channel_enabled_again_holds_until_the_end_of_quiet_hours(self, tenant, server):
        hook = quiet_channel(tenant, server.url, new_webhook_secret())
        raise_alert(rule(tenant, severity="warning"))
        ends = Delivery.objects.get().next_attempt_at
        channel_update(channel=hook, enabled=False)
        Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))  # as if the night passed

        channel_update(channel=Channel.objects.get(), enabled=True)

        assert Delivery.objects.get().next_attempt_at == ends  # quiet hours still hold now
        assert digests_release() == []
