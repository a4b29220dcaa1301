"""
An alert keeps its history as the API shows it (`history_json`): every service that writes an
AlertEvent rewrites it in the same transaction, so a page reads one column instead of a subquery
per alert. Each writer is checked against the events themselves, as AlertEventOutputSerializer
renders them.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from alerts.models import Alert, AlertStatus
from alerts.serializers import AlertEventOutputSerializer
from alerts.services import (
    alert_acknowledge,
    alert_raise,
    alert_resolve,
    alert_snooze,
    alerts_history_keep,
    alerts_resolve_for_rules,
    alerts_wake_due,
)
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from tenants.models import Tenant
from tests.concurrency import rows_locked_by_another_transaction
from tests.factories import TenantFactory, TriggerRuleFactory, metric_points, raise_alert

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


def test_rewriting_it_from_the_events_is_one_statement(tenant, django_assert_max_num_queries):
    alerts = [raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=NOW) for _ in range(3)]
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(history_json=None)

    with django_assert_max_num_queries(1) as queries:
        alerts_history_keep(alert_ids=[a.pk for a in alerts])

    assert queries.captured_queries[0]["sql"].startswith("UPDATE")
    for alert in alerts:
        assert_kept(alert)


def recomputed(alert: Alert) -> str:
    """`history_json` as `alerts_history_keep` writes it from the events, the alert left as it was."""
    with transaction.atomic():
        alerts_history_keep(alert_ids=[alert.pk])
        text = Alert.objects.values_list("history_json", flat=True).get(pk=alert.pk)
        transaction.set_rollback(True)
    return text


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the resolve statement is PostgreSQL's")
def test_the_kept_text_is_the_databases_own_byte_for_byte(tenant):
    """The first entry (rendered in Python) and an entry appended in SQL read as the events would."""
    rule = TriggerRuleFactory(tenant=tenant)
    alert = raise_alert(rule, triggered_at=NOW)
    first = Alert.objects.values_list("history_json", flat=True).get(pk=alert.pk)
    assert first == recomputed(alert)

    reason = 'Cleared: "x" < 3, ünï ✓\nnew line\t\\'
    alerts_resolve_for_rules(rule_ids=[rule.pk], actor='user:ünï "q"', reasons={rule.pk: reason}, now=NOW)

    appended = Alert.objects.values_list("history_json", flat=True).get(pk=alert.pk)
    assert appended == recomputed(alert) and appended.startswith(first[:-1] + ",")
    assert json.loads(appended)[-1]["reason"] == reason

    # The first entry of an alert raised by an actor whose name needs escaping, rendered in Python.
    odd = alert_raise(
        rule=TriggerRuleFactory(tenant=tenant), payload={}, triggered_at=NOW, actor='api-key:ünï "q" \\ \t ✓'
    ).alert
    odd_first = Alert.objects.values_list("history_json", flat=True).get(pk=odd.pk)
    assert odd_first == recomputed(odd) and json.loads(odd_first)[0]["by"] == 'api-key:ünï "q" \\ \t ✓'


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the resolve statement is PostgreSQL's")
def test_an_entry_that_would_be_out_of_order_drops_the_kept_text(tenant_client, tenant):
    """A resolve dated before the last event: the kept text is dropped and the API reads the events."""
    rule = TriggerRuleFactory(tenant=tenant)
    alert = raise_alert(rule, triggered_at=NOW)
    alert_acknowledge(alert=alert, actor="user:dana", now=NOW + timedelta(hours=1))

    alerts_resolve_for_rules(rule_ids=[rule.pk], actor="engine", reasons={}, now=NOW + timedelta(minutes=30))

    assert Alert.objects.get(pk=alert.pk).history_json is None
    history = tenant_client.get(f"/alerts/{alert.pk}").json()["history"]
    assert [entry["to"] for entry in history] == ["pending", "resolved", "acknowledged"]  # by time


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
@pytest.mark.django_db(transaction=True)
def test_the_engines_resolve_does_not_wait_for_its_tenant():
    """
    Keeping the history in the resolve's own UPDATE: a second UPDATE of the same rows made
    PostgreSQL check their foreign keys, waiting for a tenant that a tenant update holds (while
    that update waits for the rules the chunk holds: a deadlock).
    """
    tenant = TenantFactory(id="acme")
    rule = TriggerRuleFactory(tenant=tenant)
    alert = raise_alert(rule)

    with rows_locked_by_another_transaction(Tenant.objects.filter(pk=tenant.pk)):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            resolved = alerts_resolve_for_rules(rule_ids=[rule.pk], actor="engine", reasons={})

    assert [a.pk for a in resolved] == [alert.pk]
    assert [entry["to"] for entry in assert_kept(alert)] == ["pending", "resolved"]
