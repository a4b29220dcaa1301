"""alert.triggered through the real posthog client, sent to an HTTP server the test runs."""

import gzip
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from alerts.models import Alert
from core.telemetry import telemetry_flush
from proactive.engine.runner import due_rule_ids, evaluate_rules
from tests.factories import MetricPointFactory, TriggerRuleFactory

pytestmark = pytest.mark.django_db


class FakePostHog:
    """Records what the posthog client posts; can be told to hang until released."""

    def __init__(self, hang=False):
        self.events, self.arrived, self.release = [], threading.Event(), threading.Event()
        if not hang:
            self.release.set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sink.arrived.set()
                sink.release.wait(timeout=30)
                sink.events.extend(json.loads(body).get("batch", []))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": 1}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def posthog_sink(settings):
    sink = FakePostHog()
    settings.POSTHOG_API_KEY = "phc_test_key"
    settings.POSTHOG_HOST = sink.url
    yield sink
    sink.close()


@pytest.fixture
def firing_rule(tenant):
    MetricPointFactory(tenant=tenant, metric="load", timestamp=timezone.now() - timedelta(minutes=1), value=9)
    return TriggerRuleFactory(tenant=tenant, name="Load", metric="load", threshold=5, severity="critical")


def run_tick(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return evaluate_rules(rule_ids=due_rule_ids(now=timezone.now()))


def test_alert_triggered_is_sent_after_commit(posthog_sink, firing_rule, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        evaluate_rules(rule_ids=due_rule_ids(now=timezone.now()))
    telemetry_flush()
    assert posthog_sink.events == []  # nothing leaves before the transaction commits

    for callback in callbacks:
        callback()
    telemetry_flush()

    alert = Alert.objects.get()
    [event] = posthog_sink.events
    assert (event["event"], event["distinct_id"]) == ("alert.triggered", "acme")
    properties = event["properties"]
    assert properties["$groups"] == {"tenant": "acme"}
    assert (properties["ruleId"], properties["ruleName"], properties["alertId"]) == (firing_rule.pk, "Load", alert.pk)
    assert (properties["type"], properties["severity"]) == ("metric_threshold", "critical")
    assert properties["evidence"] == alert.payload


def test_nothing_is_sent_for_a_tenant_with_telemetry_disabled(
    posthog_sink, firing_rule, settings, django_capture_on_commit_callbacks
):
    settings.TELEMETRY_DISABLED_TENANTS = frozenset({"acme"})

    run_tick(django_capture_on_commit_callbacks)
    telemetry_flush()

    assert Alert.objects.count() == 1
    assert posthog_sink.events == [] and not posthog_sink.arrived.is_set()


def test_nothing_is_sent_without_an_api_key(posthog_sink, firing_rule, settings, django_capture_on_commit_callbacks):
    settings.POSTHOG_API_KEY = ""

    run_tick(django_capture_on_commit_callbacks)
    telemetry_flush()

    assert Alert.objects.count() == 1 and not posthog_sink.arrived.is_set()


def test_a_dead_posthog_breaks_nothing(firing_rule, settings, django_capture_on_commit_callbacks):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings.POSTHOG_API_KEY = "phc_test_key"
    settings.POSTHOG_HOST = f"http://127.0.0.1:{dead_port}"

    report = run_tick(django_capture_on_commit_callbacks)
    telemetry_flush(timeout_seconds=15)  # let the client give up while the test still watches

    assert report.alerts_created == 1 and Alert.objects.get().status == "pending"


def test_a_hanging_posthog_does_not_hold_up_evaluation(firing_rule, settings, django_capture_on_commit_callbacks):
    sink = FakePostHog(hang=True)
    settings.POSTHOG_API_KEY = "phc_test_key"
    settings.POSTHOG_HOST = sink.url
    try:
        report = run_tick(django_capture_on_commit_callbacks)
        # Evaluation has returned; now make the client send, and see PostHog still holding the request.
        threading.Thread(target=telemetry_flush, daemon=True).start()
        assert sink.arrived.wait(timeout=10)
        assert report.alerts_created == 1 and sink.events == []
    finally:
        sink.close()
