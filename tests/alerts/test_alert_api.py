from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent
from alerts.services import alert_resolve, alert_snooze
from tests.factories import TriggerRuleFactory, alert_payload, raise_alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="MQL spike")
    return raise_alert(rule, payload=alert_payload(rule, value=12))


def history(body):
    return [(h["from"], h["to"], h["by"]) for h in body["history"]]


def test_list_shows_the_spec_fields_and_history(tenant_client, alert):
    body = tenant_client.get("/alerts").json()

    assert body["next"] is None
    [item] = body["results"]
    assert {
        k: item[k]
        for k in (
            "id",
            "ruleId",
            "ruleName",
            "severity",
            "status",
            "payload",
            "acknowledgedAt",
            "resolvedAt",
            "snoozedUntil",
        )
    } == {
        "id": alert.pk,
        "ruleId": alert.rule_id,
        "ruleName": "MQL spike",
        "severity": "warning",
        "status": "pending",
        "payload": {
            "metric": "analytics.mql.delta",
            "value": 12,
            "threshold": 10.0,
            "observedAt": "2026-11-26T14:00:00Z",
            "reason": "MQL spike fired.",
        },
        "acknowledgedAt": None,
        "resolvedAt": None,
        "snoozedUntil": None,
    }
    assert item["triggeredAt"].endswith("Z")
    assert history(item) == [(None, "pending", "engine")]


def test_acknowledge_twice_is_harmless(tenant_client, alert):
    first = tenant_client.post(f"/alerts/{alert.pk}/acknowledge")
    second = tenant_client.post(f"/alerts/{alert.pk}/acknowledge/")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "acknowledged"
    assert first.json()["acknowledgedAt"] == second.json()["acknowledgedAt"] is not None
    assert history(second.json())[-1][:2] == ("pending", "acknowledged")
    assert history(second.json())[-1][2].startswith("api-key:")
    assert AlertEvent.objects.filter(alert=alert).count() == 2


def test_acknowledging_a_resolved_alert_is_409_and_changes_nothing(tenant_client, alert):
    tenant_client.post(f"/alerts/{alert.pk}/resolve")

    response = tenant_client.post(f"/alerts/{alert.pk}/acknowledge")

    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "detail": "A resolved alert cannot be acknowledged."}
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_at) == ("resolved", None)


def test_resolve_from_each_open_state(tenant_client, tenant):
    rules = [TriggerRuleFactory(tenant=tenant) for _ in range(3)]
    pending, acknowledged, snoozed = (raise_alert(rule) for rule in rules)
    tenant_client.post(f"/alerts/{acknowledged.pk}/acknowledge")
    tenant_client.post(f"/alerts/{snoozed.pk}/snooze", {"minutes": 30}, format="json")

    for alert, before in ((pending, "pending"), (acknowledged, "acknowledged"), (snoozed, "snoozed")):
        body = tenant_client.post(f"/alerts/{alert.pk}/resolve").json()
        assert (body["status"], body["snoozedUntil"], history(body)[-1][:2]) == ("resolved", None, (before, "resolved"))
        assert body["resolvedAt"] is not None

    again = tenant_client.post(f"/alerts/{pending.pk}/resolve")
    assert again.status_code == 200 and AlertEvent.objects.filter(alert=pending).count() == 2


def test_snooze_by_minutes_or_until(tenant_client, alert):
    before = timezone.now()
    by_minutes = tenant_client.post(f"/alerts/{alert.pk}/snooze", {"minutes": 90}, format="json").json()
    until = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    by_until = tenant_client.post(
        f"/alerts/{alert.pk}/snooze", {"until": until.isoformat().replace("+00:00", "Z")}, format="json"
    ).json()

    snoozed_until = datetime.fromisoformat(by_minutes["snoozedUntil"])
    assert by_minutes["status"] == "snoozed"
    assert before + timedelta(minutes=89) < snoozed_until < timezone.now() + timedelta(minutes=91)
    assert datetime.fromisoformat(by_until["snoozedUntil"]) == until
    assert [h[:2] for h in history(by_until)] == [(None, "pending"), ("pending", "snoozed"), ("snoozed", "snoozed")]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "until", "Give either 'until' (a time) or 'minutes'"),
        ({"minutes": 5, "until": "2030-01-01T00:00:00Z"}, "until", "not both"),
        ({"minutes": 0}, "minutes", "greater than or equal to 1"),
        ({"minutes": 60 * 24 * 31}, "minutes", "less than or equal to 43200"),
        ({"until": "2020-01-01T00:00:00Z"}, "until", "Must be in the future."),
        ({"until": "2020-01-01"}, "until", "Include a time zone offset"),
        ({"until": "next tuesday"}, "until", "Use ISO 8601"),
        ({"until": (datetime.now(UTC) + timedelta(days=40)).isoformat()}, "until", "at most 30 days"),
    ],
)
def test_bad_snooze_is_400_naming_the_field(tenant_client, alert, body, field, message):
    response = tenant_client.post(f"/alerts/{alert.pk}/snooze", body, format="json")

    assert response.status_code == 400
    assert any(message in text for text in response.json()["detail"][field]), response.json()
    alert.refresh_from_db()
    assert alert.status == "pending"


def test_snoozing_a_resolved_alert_is_409(tenant_client, alert):
    alert_resolve(alert=alert, actor="test")

    response = tenant_client.post(f"/alerts/{alert.pk}/snooze", {"minutes": 5}, format="json")

    assert response.status_code == 409


def test_acknowledging_a_snoozed_alert_ends_the_snooze(tenant_client, alert):
    alert_snooze(alert=alert, until=timezone.now() + timedelta(hours=1), actor="test")

    body = tenant_client.post(f"/alerts/{alert.pk}/acknowledge").json()

    assert (body["status"], body["snoozedUntil"]) == ("acknowledged", None)


def test_filters_and_newest_first_pagination(tenant_client, tenant):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rules = [TriggerRuleFactory(tenant=tenant, severity=s) for s in ("info", "warning", "critical", "critical")]
    alerts = [raise_alert(rule, triggered_at=base + timedelta(hours=i)) for i, rule in enumerate(rules)]
    alert_resolve(alert=alerts[3], actor="test")

    page = tenant_client.get("/alerts?limit=3").json()
    rest = tenant_client.get(page["next"]).json()
    critical_open = tenant_client.get("/alerts?severity=critical&status=pending,acknowledged").json()
    by_rule = tenant_client.get(f"/alerts?ruleId={rules[1].pk}").json()

    assert [a["id"] for a in page["results"]] == [alerts[3].pk, alerts[2].pk, alerts[1].pk]
    assert [a["id"] for a in rest["results"]] == [alerts[0].pk]
    assert [a["id"] for a in critical_open["results"]] == [alerts[2].pk]
    assert [a["id"] for a in by_rule["results"]] == [alerts[1].pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=open", "status"), ("severity=loud", "severity"), ("ruleId=abc", "ruleId"), ("ruleId=0", "ruleId")],
)
def test_bad_filters_are_400(tenant_client, query, field):
    response = tenant_client.get(f"/alerts?{query}")

    assert response.status_code == 400
    assert list(response.json()["detail"]) == [field]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/alerts/{id}", None),
        ("post", "/alerts/{id}/acknowledge", None),
        ("post", "/alerts/{id}/resolve", None),
        ("post", "/alerts/{id}/snooze", {"minutes": 5}),
    ],
)
def test_another_tenants_alert_is_404_on_every_endpoint(other_tenant, tenant_client, method, path, body):
    theirs = raise_alert(TriggerRuleFactory(tenant=other_tenant))

    response = getattr(tenant_client, method)(path.format(id=theirs.pk), body, format="json")
    missing = getattr(tenant_client, method)(path.format(id=999999), body, format="json")

    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == {"error": "not_found", "detail": "Not found."}
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_another_tenants_alerts_are_not_listed(other_tenant, tenant_client, alert):
    raise_alert(TriggerRuleFactory(tenant=other_tenant))

    assert [a["id"] for a in tenant_client.get("/alerts").json()["results"]] == [alert.pk]
    assert Alert.objects.count() == 2
