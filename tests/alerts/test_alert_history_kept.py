"""
An alert keeps its history as the API shows it (`history_json`): every service that writes an
AlertEvent rewrites it in the same transaction, so a page reads one column instead of a subquery
per alert. Each writer is checked against the events themselves, as AlertEventOutputSerializer
renders them.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import Alert, AlertStatus
from alerts.serializers import AlertEventOutputSerializer
from alerts.services import (
    alert_acknowledge,
    alert_resolve,
    alert_snooze,
    alerts_history_keep,
    alerts_resolve_for_rules,
    alerts_wake_due,
)
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from tests.factories import TriggerRuleFactory, metric_points, raise_alert

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 26, 13, 30, 0, 250000, tzinfo=UTC)


def assert_kept(alert: Alert) -> list[dict]:
    """`history_json` is exactly the events, in order, as the serializer renders them; returns them."""
    alert = Alert.objects.get(pk=alert.pk)
    rendered = json.loads(json.dumps(AlertEventOutputSerializer(alert.history.order_by("at", "id"), many=True).data))
    assert alert.history_json is not None
    assert json.loads(alert.history_json) == rendered
    return rendered


def test_a_raised_alert_keeps_its_first_entry(tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=NOW)

    assert assert_kept(alert) == [
        {"from": None, "to": "pending", "at": "2026-11-26T13:30:00.250000Z", "by": "engine", "reason": ""}
    ]


def test_each_status_change_rewrites_it(tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=NOW.replace(microsecond=0))
    alert_acknowledge(alert=alert, actor="user:dana", now=NOW + timedelta(minutes=1))
    assert [entry["to"] for entry in assert_kept(alert)] == ["pending", "acknowledged"]

    alert_snooze(alert=alert, until=NOW + timedelta(hours=1), actor="user:ünï", now=NOW + timedelta(minutes=2))
    alerts_wake_due(now=NOW + timedelta(hours=2))  # the snooze ends: back to pending, in bulk
    alert_resolve(alert=alert, actor="api-key:3f9a", now=NOW + timedelta(hours=3), reason='Fixed: "x" < 3')

    history = assert_kept(alert)
    assert [(entry["from"], entry["to"]) for entry in history] == [
        (None, "pending"),
        ("pending", "acknowledged"),
        ("acknowledged", "snoozed"),
        ("snoozed", "pending"),
        ("pending", "resolved"),
    ]
    assert history[0]["at"] == "2026-11-26T13:30:00Z" and history[-1]["reason"] == 'Fixed: "x" < 3'


def test_the_engine_keeps_it_when_it_raises_and_resolves(tenant):
    rule = TriggerRuleFactory(
        tenant=tenant, metric="load", threshold=5, auto_resolve=True, now=NOW - timedelta(hours=1)
    )
    metric_points(tenant, "load", 9, end=NOW - timedelta(minutes=1))
    evaluate_rules(rule_ids=tick_due_rule_ids(now=NOW), now=NOW)
    alert = Alert.objects.get(rule=rule)
    assert [entry["by"] for entry in assert_kept(alert)] == ["engine"]

    resolved = alerts_resolve_for_rules(rule_ids=[rule.pk], actor="engine", reasons={rule.pk: "Condition cleared."})

    assert [a.pk for a in resolved] == [alert.pk]
    history = assert_kept(alert)
    assert (history[-1]["to"], history[-1]["reason"]) == (AlertStatus.RESOLVED, "Condition cleared.")


def test_the_budgets_overflow_alert_keeps_it(tenant):
    tenant.alert_budget_per_hour = 1
    tenant.save()
    metric_points(tenant, "load", 9, end=NOW - timedelta(minutes=1))
    for n in range(3):
        TriggerRuleFactory(tenant=tenant, name=f"r{n}", metric="load", threshold=1, now=NOW - timedelta(hours=1))

    evaluate_rules(rule_ids=tick_due_rule_ids(now=NOW), now=NOW)

    overflow = Alert.objects.get(tenant=tenant, rule_type="alert_budget")
    assert [entry["to"] for entry in assert_kept(overflow)] == ["pending"]
    for alert in Alert.objects.filter(tenant=tenant, rule__isnull=False):
        assert_kept(alert)


def test_keeping_it_after_a_bulk_change_is_one_statement(tenant, django_assert_max_num_queries):
    alerts = [raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=NOW) for _ in range(3)]
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(history_json=None)

    with django_assert_max_num_queries(1) as queries:
        alerts_history_keep(alert_ids=[a.pk for a in alerts])

    assert queries.captured_queries[0]["sql"].startswith("UPDATE")
    for alert in alerts:
        assert_kept(alert)
