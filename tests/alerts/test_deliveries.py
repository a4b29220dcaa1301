"""
Deliveries to the tenants' channels: routed in the alert's transaction, sent to real local
receivers (an HTTP server, an SMTP server), retried, recorded, never doubled.
"""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import IntegrityError, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts.channel_messages import new_webhook_secret
from alerts.deliveries import MAX_ATTEMPTS, delivery_send
from alerts.models import Channel, Delivery, DeliveryAttempt
from alerts.services import alert_acknowledge, alert_resolve
from tests.alerts.test_channel_messages import _Inbox, free_port
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db(transaction=True)

ALL_EVENTS = ["fired", "acknowledged", "resolved", "snoozeEnded"]


class Receiver:
    """A local HTTP server that answers each POST with the next of `answers` (then 200) and keeps what it got."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.requests = []
        self.received_at = []  # time.monotonic() of each request's arrival
        self.delay = 0.0  # seconds to wait before answering
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received_at.append(time.monotonic())
                receiver.requests.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*answers):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture(autouse=True)
def outbound_to_localhost(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    settings.PUBLIC_BASE_URL = "https://insights.example.com"


def channel(tenant, **fields):
    defaults = {"name": f"channel {Channel.objects.count()}", "kind": "webhook", "events": ALL_EVENTS}
    values = {**defaults, **fields}
    if values["kind"] == "webhook" and "secret" not in fields:
        values["secret"] = new_webhook_secret()
    return Channel.objects.create(tenant=tenant, **values)


def rule(tenant, severity="critical"):
    return TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=5, severity=severity)


def send_all(now=None):
    """What the workers would do: send every pending delivery that is due."""
    outcomes = []
    for delivery_id in Delivery.objects.filter(status="pending").values_list("pk", flat=True):
        outcomes.append(delivery_send(delivery_id=delivery_id, now=now))
    return outcomes


class TestRouting:
    def test_each_channel_that_wants_the_event_gets_one_delivery(self, tenant, other_tenant, receiver):
        wants_all = channel(tenant, target=receiver().url)
        only_critical = channel(tenant, target=receiver().url, min_severity="critical")
        only_resolves = channel(tenant, target=receiver().url, events=["resolved"])
        channel(tenant, target=receiver().url, enabled=False)
        channel(other_tenant, target=receiver().url)

        warning = raise_alert(rule(tenant, severity="warning"))
        critical = raise_alert(rule(tenant, severity="critical"))

        routed = set(Delivery.objects.values_list("alert_id", "channel_id", "event"))
        assert routed == {
            (warning.pk, wants_all.pk, "fired"),
            (critical.pk, wants_all.pk, "fired"),
            (critical.pk, only_critical.pk, "fired"),
        }
        assert only_resolves.deliveries.count() == 0

    def test_a_resolve_goes_to_every_channel_told_of_the_firing(self, tenant, receiver):
        fired_only = channel(tenant, target=receiver().url, events=["fired"])
        alert = raise_alert(rule(tenant))

        alert_acknowledge(alert=alert, actor="user:ann")
        alert_resolve(alert=alert, actor="user:ann")

        assert list(fired_only.deliveries.order_by("id").values_list("event", flat=True)) == ["fired", "resolved"]

    def test_the_database_refuses_a_second_delivery_of_one_event_to_one_channel(self, tenant, receiver):
        hook = channel(tenant, target=receiver().url)
        raise_alert(rule(tenant))
        first = Delivery.objects.get()

        with pytest.raises(IntegrityError), transaction.atomic():
            Delivery.objects.create(
                tenant=tenant,
                channel=hook,
                alert=first.alert,
                alert_event=first.alert_event,
                event="fired",
                created_at=timezone.now(),
            )


class TestSending:
    def test_a_receiver_failing_twice_gets_one_successful_delivery_after_three_attempts(self, tenant, receiver):
        server = receiver((500, {}), (503, {}))
        secret = new_webhook_secret()
        channel(tenant, target=server.url, secret=secret)
        alert = raise_alert(rule(tenant))
        now = timezone.now()

        first = send_all(now)
        second = send_all(now + timedelta(seconds=10))
        early = send_all(now + timedelta(seconds=11))  # the next retry is 20 s after the second
        third = send_all(now + timedelta(seconds=31))

        assert [o.status for o in first + second + third] == ["pending", "pending", "sent"]
        assert [o.retry_in for o in first + second] == [10, 20]
        assert early == [None]
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
        attempts = list(DeliveryAttempt.objects.order_by("id").values_list("status_code", "error"))
        assert [code for code, _ in attempts] == [500, 503, 200]
        assert attempts[0][1].startswith("HTTP 500")
        assert len(server.requests) == 3
        # Every attempt is signed and carries the same id, so a receiver can tell a redelivery.
        assert len({headers["webhook-id"] for headers, _ in server.requests}) == 1
        headers, body = server.requests[-1]
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "alert.fired" and event["data"]["alertId"] == alert.pk
        assert event["data"]["url"] == f"https://insights.example.com/alerts/{alert.pk}"

    @pytest.mark.parametrize(
        ("answer", "retry_in"),
        [
            ((429, {"Retry-After": "60"}), 60),  # later than the backoff: as the receiver asks
            ((503, {"Retry-After": "0"}), 10),  # never sooner than the backoff
            ((429, {"Retry-After": "999999"}), 3600),  # at most an hour
        ],
    )
    def test_retry_after_is_honoured_within_bounds(self, tenant, receiver, answer, retry_in):
        channel(tenant, target=receiver(answer).url)
        raise_alert(rule(tenant))
        now = timezone.now()

        [outcome] = send_all(now)

        assert (outcome.status, outcome.retry_in) == ("pending", retry_in)
        assert Delivery.objects.get().next_attempt_at == now + timedelta(seconds=retry_in)

    def test_a_404_is_final(self, tenant, receiver):
        channel(tenant, target=receiver((404, {})).url)
        raise_alert(rule(tenant))

        [outcome] = send_all()

        assert (outcome.status, outcome.retry_in) == ("failed", None)
        assert Delivery.objects.get().last_error.startswith("HTTP 404")

    def test_attempts_are_bounded(self, tenant, receiver):
        channel(tenant, target=receiver(*[(500, {})] * 10).url)
        raise_alert(rule(tenant))
        now = timezone.now()

        for attempt in range(MAX_ATTEMPTS + 2):
            send_all(now + timedelta(hours=attempt))

        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)

    def test_a_dead_endpoint_is_retried_not_lost(self, tenant):
        channel(tenant, target=f"http://127.0.0.1:{free_port()}/closed")
        raise_alert(rule(tenant))

        [outcome] = send_all()

        assert outcome.status == "pending" and outcome.retry_in == 10
        assert "connect" in Delivery.objects.get().last_error.lower()

    def test_pagerduty_follows_the_alert_from_trigger_to_resolve(self, tenant, receiver, settings):
        server = receiver()
        settings.PAGERDUTY_EVENTS_URL = server.url
        channel(tenant, kind="pagerduty", target="", secret="R0UT1NGKEY")
        alert = raise_alert(rule(tenant))
        send_all()
        alert_resolve(alert=alert, actor="user:ann")
        send_all()

        sent = [json.loads(body) for _, body in server.requests]
        assert [(e["event_action"], e["dedup_key"], e["routing_key"]) for e in sent] == [
            ("trigger", str(alert.pk), "R0UT1NGKEY"),
            ("resolve", str(alert.pk), "R0UT1NGKEY"),
        ]

    def test_slack_receives_its_message(self, tenant, receiver):
        server = receiver()
        channel(tenant, kind="slack", target=server.url, secret="")
        raise_alert(rule(tenant))

        send_all()

        [(headers, body)] = server.requests
        message = json.loads(body)
        assert headers["Content-Type"] == "application/json"
        assert message["text"].startswith("[critical]")
        assert [block["type"] for block in message["blocks"]] == ["header", "section", "section", "actions"]

    def test_email_through_a_real_smtp_server(self, tenant, settings):
        inbox = _Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.DEFAULT_FROM_EMAIL = "alerts@insights.example.com"
        try:
            channel(tenant, kind="email", target="oncall@acme.example, cto@acme.example", secret="")
            raise_alert(rule(tenant))
            [outcome] = send_all()
        finally:
            controller.stop()

        assert outcome.status == "sent"
        [envelope] = inbox.messages
        assert envelope.rcpt_tos == ["oncall@acme.example", "cto@acme.example"]
        assert b"Subject: [critical]" in envelope.content


class TestChannelValidation:
    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"kind": "email", "target": "not-an-address"}, "target", "'not-an-address' is not an email address."),
            ({"kind": "email", "target": ""}, "target", "An email channel needs at least one address"),
            ({"kind": "webhook", "target": "ftp://x"}, "target", "A webhook channel needs an http(s) URL."),
            ({"kind": "slack", "target": "https://hooks.slack.com/x", "secret": "s"}, "secret", "no secret"),
            ({"kind": "pagerduty", "target": ""}, "secret", "routing key"),
            ({"kind": "webhook", "target": "https://x.example", "secret": "plain"}, "secret", "whsec_"),
            ({"kind": "webhook", "target": "https://x.example", "events": ["fired", "x"]}, "events", "one or more"),
            ({"kind": "webhook", "target": "https://x.example", "events": []}, "events", "one or more"),
        ],
    )
    def test_bad_channels_name_the_field(self, tenant, fields, field, message):
        from django.core.exceptions import ValidationError

        candidate = Channel(tenant=tenant, name="c", **{"events": ALL_EVENTS, **fields})

        with pytest.raises(ValidationError) as raised:
            candidate.full_clean()

        assert message in " ".join(raised.value.message_dict[field])


@pytest.mark.slow
def test_an_engine_tick_through_a_real_worker_reaches_the_channels(tenant, receiver):
    """Beat's tick on a worker over Redis: the engine fires, its deliveries are sent by the same worker."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connection

    from config.celery import app
    from proactive.tasks import engine_tick
    from tests.factories import MetricPointFactory

    assert app.conf.broker_url.startswith("redis://") and not app.conf.task_always_eager
    first, second = receiver(), receiver((500, {}))
    secret = new_webhook_secret()
    channel(tenant, target=first.url, secret=secret)
    channel(tenant, target=second.url)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=timezone.now() - timedelta(minutes=1), value=9)
    rule(tenant)
    app.control.purge()
    started = timezone.now()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        engine_tick.delay()
        deadline = timezone.now() + timedelta(seconds=30)
        while timezone.now() < deadline and not (first.requests and second.requests):
            threading.Event().wait(0.1)
        connection.close()

    [(headers, body)] = first.requests
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "alert.fired" and event["data"]["severity"] == "critical"
    assert len(second.requests) == 1  # answered 500: retried in 10 s, after this test stops the worker
    sent = Delivery.objects.get(channel__target=first.url)
    assert sent.status == "sent" and sent.sent_at >= started
    assert Delivery.objects.get(channel__target=second.url).status == "pending"


class TestSendATestNotification:
    def test_a_webhook_receives_a_signed_test_and_the_api_says_it_worked(self, tenant, tenant_client, receiver):
        server = receiver()
        hook = tenant_client.post(
            "/channels", {"name": "Hook", "kind": "webhook", "target": server.url}, format="json"
        ).json()

        answer = tenant_client.post(f"/channels/{hook['id']}/test")

        assert answer.status_code == 200
        body = answer.json()
        assert (body["ok"], body["statusCode"], body["error"]) == (True, 200, "")
        assert body["durationMs"] > 0
        [(headers, sent)] = server.requests
        event = Webhook(hook["secret"]).verify(sent, headers)
        assert event["data"]["ruleName"] == "Test notification"
        assert "'Hook' works" in event["data"]["reason"]
        assert not Delivery.objects.exists()  # nothing stored

    def test_a_failing_receiver_is_reported_not_raised(self, tenant, tenant_client, receiver):
        server = receiver((410, {}))
        hook = tenant_client.post(
            "/channels", {"name": "Gone", "kind": "webhook", "target": server.url}, format="json"
        ).json()

        body = tenant_client.post(f"/channels/{hook['id']}/test").json()

        assert (body["ok"], body["statusCode"]) == (False, 410)
        assert body["error"].startswith("HTTP 410")

    def test_pagerduty_gets_a_trigger_and_its_resolve(self, tenant, tenant_client, receiver, settings):
        server = receiver()
        settings.PAGERDUTY_EVENTS_URL = server.url
        pd = tenant_client.post(
            "/channels", {"name": "PD", "kind": "pagerduty", "secret": "R0UT1NGKEY"}, format="json"
        ).json()

        body = tenant_client.post(f"/channels/{pd['id']}/test").json()

        assert body["ok"] is True
        sent = [json.loads(b) for _, b in server.requests]
        assert [(e["event_action"], e["dedup_key"]) for e in sent] == [
            ("trigger", f"test-{pd['id']}"),
            ("resolve", f"test-{pd['id']}"),
        ]

    def test_another_tenants_channel_is_a_404(self, tenant_client, other_tenant, receiver):
        server = receiver()
        theirs = channel(other_tenant, target=server.url)

        assert tenant_client.post(f"/channels/{theirs.pk}/test").status_code == 404
        assert server.requests == []


def test_the_sweeper_sends_overdue_deliveries_whose_task_was_lost(tenant, receiver):
    from alerts.tasks import sweep_deliveries
    from config.celery import app

    server = receiver()
    channel(tenant, target=server.url)
    raise_alert(rule(tenant))  # its task went to the broker; no worker ran it
    overdue = Delivery.objects.get()
    raise_alert(rule(tenant))
    not_yet = Delivery.objects.exclude(pk=overdue.pk).get()
    Delivery.objects.filter(pk=overdue.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    Delivery.objects.filter(pk=not_yet.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    app.conf.task_always_eager = True  # the sweep's tasks run here, as a worker would run them
    try:
        swept = sweep_deliveries()
    finally:
        app.conf.task_always_eager = False

    assert swept == 1
    overdue.refresh_from_db()
    not_yet.refresh_from_db()
    assert (overdue.status, overdue.attempts) == ("sent", 1)
    assert (not_yet.status, not_yet.attempts) == ("pending", 0)
    assert len(server.requests) == 1


@pytest.mark.slow
def test_a_slow_endpoint_does_not_hold_up_another_tenants_delivery(tenant, other_tenant, receiver):
    """Each delivery is its own task: while one receiver takes 3 s to answer, another's is sent at once."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connection

    from config.celery import app

    slow, fast = receiver(), receiver()
    slow.delay = 3.0
    channel(tenant, target=slow.url)
    channel(other_tenant, target=fast.url)
    app.control.purge()

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30):
        raise_alert(rule(tenant))
        time.sleep(0.3)  # the slow delivery is in flight first
        raised = time.monotonic()
        raise_alert(rule(other_tenant))
        while time.monotonic() < raised + 10 and not (fast.requests and slow.requests):
            time.sleep(0.02)
        fast_after = fast.received_at[0] - raised if fast.received_at else None
        while time.monotonic() < raised + 10 and Delivery.objects.filter(status="pending").exists():
            time.sleep(0.05)
        connection.close()

    assert fast_after is not None and fast_after < 1.5, fast_after
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.slow
def test_a_worker_killed_mid_send_leaves_the_delivery_to_be_retried(tenant, receiver, settings):
    """SIGKILL while the receiver has the request: not marked sent, nothing half-written; the sweeper sends it."""
    import os
    import signal
    import subprocess
    import sys

    from alerts.tasks import sweep_deliveries
    from config.celery import app

    server = receiver()
    server.delay = 30.0  # the first request hangs until the worker is gone
    channel(tenant, target=server.url)
    app.control.purge()
    database = settings.DATABASES["default"]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "CELERY_BROKER_URL": app.conf.broker_url,
        },
        start_new_session=True,
    )
    try:
        raise_alert(rule(tenant))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not server.requests:
            time.sleep(0.05)
        assert server.requests, "the worker never sent the delivery"
        os.killpg(worker.pid, signal.SIGKILL)  # mid-send: the receiver has the request, no answer yet
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("pending", 0, None)
    assert not DeliveryAttempt.objects.exists()  # the attempt's transaction died with the worker

    server.delay = 0.0
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=1))  # overdue, as a minute later
    app.conf.task_always_eager = True
    try:
        assert sweep_deliveries() == 1
    finally:
        app.conf.task_always_eager = False
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert len(server.requests) == 2 and server.requests[0][0]["webhook-id"] == server.requests[1][0]["webhook-id"]
