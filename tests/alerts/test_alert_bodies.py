"""
Alert bodies are made by the database from AlertOutputSerializer (core.outputs.SQLOutput): every
list page and single read must equal what the serializer renders for the same alerts.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, AlertEvent
from alerts.selectors import alert_list
from alerts.serializers import AlertOutputSerializer
from alerts.services import alert_acknowledge, alert_resolve, alert_snooze, alerts_history_keep
from tests.factories import TriggerRuleFactory, alert_payload, raise_alert

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


@pytest.fixture
def varied_alerts(tenant):
    """Every status and rule type, times with and without microseconds, a deleted rule, odd text."""
    alerts = []
    for n, (kind, extra) in enumerate(
        [
            ("metric_threshold", {}),
            ("anomaly", {"metric": "app.latency", "threshold": 2.5, "window_days": 30}),
            ("schedule", {"schedule": "0 9 * * 1-5", "metric": ""}),
            ("metric_threshold", {"name": 'Quotes " and \\ backslash, ünïcødé ✓'}),
            ("anomaly", {"metric": "app.errors", "threshold": 3.0, "window_days": 7}),
        ]
    ):
        rule = TriggerRuleFactory(tenant=tenant, type=kind, **extra)
        at = T0 + timedelta(minutes=n) + timedelta(microseconds=0 if n % 2 else 123456 * (n + 1) % 1_000_000)
        payload = alert_payload(rule, value=12.5 + n)
        if kind == "anomaly" and n == 4:
            payload.update(zScore=None, constantHistory=True, std=0.0)
        alerts.append(raise_alert(rule, payload=payload, triggered_at=at))
    alert_acknowledge(alert=alerts[1], actor="user:dana")
    alert_resolve(alert=alerts[2], actor="api-key:3f9a1c2e")
    alert_snooze(alert=alerts[3], until=T0 + timedelta(days=1, microseconds=7), actor="user:ünï", now=T0)
    alert_acknowledge(alert=alerts[4], actor="user:dana")
    alert_resolve(alert=alerts[4], actor="engine")
    AlertEvent.objects.filter(alert=alerts[4], to_status="resolved").update(reason='Cleared: "x" < 3\nnew line')
    alerts_history_keep(alert_ids=[alerts[4].pk])  # as every writer of events does
    alerts[0].rule.delete()  # its alert stays, with ruleId null
    return alerts


def serializer_bodies(tenant) -> dict[int, dict]:
    """What AlertOutputSerializer renders for each of the tenant's alerts, as JSON (DRF's renderer)."""
    rendered = json.dumps(AlertOutputSerializer(alert_list(tenant=tenant), many=True).data)
    return {body["id"]: body for body in json.loads(rendered)}


def test_a_page_equals_the_serializers_bodies(tenant_client, tenant, varied_alerts):
    expected = serializer_bodies(tenant)

    body = tenant_client.get("/alerts").json()

    assert [item["id"] for item in body["results"]] == [a.pk for a in reversed(varied_alerts)]
    assert body["results"] == [expected[item["id"]] for item in body["results"]]
    assert {item["ruleId"] for item in body["results"]} >= {None}
    assert any("." in item["triggeredAt"] for item in body["results"])
    assert any("." not in item["triggeredAt"] for item in body["results"])


def test_single_reads_and_transitions_equal_the_serializers_body(tenant_client, tenant, varied_alerts):
    expected = serializer_bodies(tenant)
    for alert in varied_alerts:
        assert tenant_client.get(f"/alerts/{alert.pk}").json() == expected[alert.pk]

    acknowledged = tenant_client.post(f"/alerts/{varied_alerts[0].pk}/acknowledge").json()

    assert acknowledged == serializer_bodies(tenant)[varied_alerts[0].pk]
    assert acknowledged["status"] == "acknowledged"
    assert [event["to"] for event in acknowledged["history"]] == ["pending", "acknowledged"]


def test_filtered_pages_and_cursors_equal_the_serializers_bodies(tenant_client, tenant, varied_alerts):
    expected = serializer_bodies(tenant)
    seen = []
    url = "/alerts?limit=2&status=pending,acknowledged,snoozed,resolved"
    while url:
        body = tenant_client.get(url).json()
        assert body["results"] == [expected[item["id"]] for item in body["results"]]
        seen += [item["id"] for item in body["results"]]
        url = body["next"]

    assert seen == [a.pk for a in reversed(varied_alerts)]
    resolved = tenant_client.get("/alerts?status=resolved&severity=warning").json()["results"]
    assert resolved == [
        expected[a.pk] for a in reversed(varied_alerts) if a.pk in {varied_alerts[2].pk, varied_alerts[4].pk}
    ]


def test_a_page_is_one_query_after_authentication(tenant_client, varied_alerts):
    tenant_client.get("/alerts")  # the key's last use is recorded once
    with CaptureQueriesContext(connection) as queries:
        assert len(tenant_client.get("/alerts").json()["results"]) == 5
    [page] = [q["sql"] for q in queries.captured_queries if "alerts_alert" in q["sql"]]
    assert "alerts_alertevent" in page  # the history comes with the page
    assert len(queries.captured_queries) == 2  # the API key, the page


def test_an_empty_page_and_a_missing_alert(tenant_client, varied_alerts):
    assert tenant_client.get("/alerts?ruleId=999999").json() == {"results": [], "next": None, "previous": None}
    missing = tenant_client.get(f"/alerts/{max(a.pk for a in varied_alerts) + 1}")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_the_browsable_api_renders_a_page_of_database_made_bodies(tenant_client, varied_alerts, monkeypatch):
    monkeypatch.undo()  # HTML is no part of the documented contract the suite checks answers against
    response = tenant_client.get("/alerts", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "ünïcødé ✓" in response.content.decode()


def test_an_alert_without_history_has_an_empty_list(tenant_client, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))
    AlertEvent.objects.filter(alert=alert).delete()
    alerts_history_keep(alert_ids=[alert.pk])

    assert tenant_client.get(f"/alerts/{alert.pk}").json()["history"] == []
    assert Alert.objects.get(pk=alert.pk).history.count() == 0


def test_an_alert_whose_history_is_not_kept_is_read_from_its_events(tenant_client, tenant, varied_alerts):
    """Alerts from before `history_json` (NULL) show the same history, read from their events."""
    kept = {item["id"]: item for item in tenant_client.get("/alerts").json()["results"]}
    Alert.objects.filter(tenant=tenant).update(history_json=None)

    read = {item["id"]: item for item in tenant_client.get("/alerts").json()["results"]}

    assert read == kept and read == serializer_bodies(tenant)
    assert len(read[varied_alerts[4].pk]["history"]) == 3
