from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from alerts.models import Alert, AlertBudget, AlertEvent, AlertStatus, Notification
from alerts.services import Firing, alert_raise, alert_resolve, alerts_raise
from tests.concurrency import run_concurrently
from tests.factories import TriggerRuleFactory

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@pytest.mark.django_db
def test_raise_creates_the_alert_its_history_and_notification(tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="MQL spike", severity="critical", threshold=10)

    result = alert_raise(
        rule=rule,
        payload={"metric": "analytics.mql.delta", "value": 12.0, "threshold": 10.0, "reason": "12 > 10"},
        triggered_at=NOW,
    )

    alert = Alert.objects.get()
    assert result.created and result.alert.pk == alert.pk
    assert (alert.tenant_id, alert.rule_id, alert.rule_name, alert.rule_type, alert.severity, alert.status) == (
        "acme",
        rule.pk,
        "MQL spike",
        "metric_threshold",
        "critical",
        "pending",
    )
    assert alert.payload == {"metric": "analytics.mql.delta", "value": 12.0, "threshold": 10.0, "reason": "12 > 10"}
    assert alert.triggered_at == NOW
    assert list(AlertEvent.objects.values_list("from_status", "to_status", "actor")) == [("", "pending", "engine")]
    notification = Notification.objects.get()
    assert (notification.alert_id, notification.tenant_id, notification.title, notification.alert_status) == (
        alert.pk,
        "acme",
        "[critical] MQL spike",
        "pending",
    )
    assert notification.body == "12 > 10"  # the engine's explanation


@pytest.mark.django_db
def test_the_alert_returned_is_the_stored_row_whole_and_saved(tenant, django_assert_num_queries):
    rule = TriggerRuleFactory(tenant=tenant, name="Nightly", type="schedule", schedule="0 2 * * *")

    returned = alert_raise(rule=rule, payload={"reason": "It is 02:00."}, triggered_at=NOW).alert

    stored = Alert.objects.get()
    with django_assert_num_queries(0):  # every column is there: none left to load on first read
        values = {field.attname: getattr(returned, field.attname) for field in Alert._meta.concrete_fields}
    assert values == {field.attname: getattr(stored, field.attname) for field in Alert._meta.concrete_fields}
    assert returned._state.adding is False and returned._state.db == "default"


@pytest.mark.django_db
def test_a_payload_without_an_explanation_still_gets_a_notification_body(tenant):
    rule = TriggerRuleFactory(tenant=tenant)

    alert_raise(rule=rule, payload={"zScore": None, "value": 3})

    assert Notification.objects.get().body == "zScore: None, value: 3"


@pytest.mark.django_db
def test_an_open_alert_is_returned_instead_of_a_duplicate(tenant):
    rule = TriggerRuleFactory(tenant=tenant)
    first = alert_raise(rule=rule, payload={"n": 1})

    second = alert_raise(rule=rule, payload={"n": 2})

    assert (second.created, second.alert.pk, second.alert.payload) == (False, first.alert.pk, {"n": 1})
    assert Alert.objects.count() == 1 and Notification.objects.count() == 1


@pytest.mark.django_db
def test_after_resolving_the_rule_can_raise_again(tenant):
    rule = TriggerRuleFactory(tenant=tenant)
    first = alert_raise(rule=rule, payload={})
    alert_resolve(alert=first.alert, actor="user:ann")

    second = alert_raise(rule=rule, payload={})

    assert second.created and second.alert.pk != first.alert.pk
    assert Alert.objects.filter(rule=rule).exclude(status="resolved").count() == 1


@pytest.mark.django_db
def test_batch_raise_keeps_order_and_skips_rules_with_open_alerts(tenant, django_assert_max_num_queries):
    rules = [TriggerRuleFactory(tenant=tenant) for _ in range(5)]
    already_open = alert_raise(rule=rules[2], payload={}).alert

    # The budget: its rows locked and read, counted, and (a rule already had an alert) corrected.
    with django_assert_max_num_queries(8):
        results = alerts_raise(
            firings=[Firing(rule=r, payload={"i": i}, triggered_at=NOW) for i, r in enumerate(rules)]
        )

    assert [r.created for r in results] == [True, True, False, True, True]
    assert results[2].alert.pk == already_open.pk
    assert Alert.objects.count() == 5 and Notification.objects.count() == 5
    assert AlertEvent.objects.count() == 5
    hour = AlertBudget.objects.get(tenant=tenant, hour=NOW.replace(minute=0, second=0, microsecond=0))
    assert (hour.admitted, hour.suppressed, hour.budget) == (4, 0, 1000)  # the open one's firing was given back


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_alert_for_a_rule(tenant):
    rule = TriggerRuleFactory(tenant=tenant)
    alert_raise(rule=rule, payload={})

    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            tenant=tenant,
            rule=rule,
            rule_name="x",
            rule_type="anomaly",
            severity="info",
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_at=NOW,
            triggered_at=NOW,
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_for_one_rule_create_one_alert(tenant):
    assert connection.vendor == "postgresql"
    rule = TriggerRuleFactory(tenant=tenant)

    results, errors = run_concurrently([lambda n=n: alert_raise(rule=rule, payload={"worker": n}) for n in range(8)])

    assert errors == []
    assert sum(result.created for result in results) == 1
    assert len({result.alert.pk for result in results}) == 1
    assert Alert.objects.filter(rule=rule).count() == 1
    assert Notification.objects.count() == 1 and AlertEvent.objects.count() == 1


def test_resolving_for_rules_locks_resolves_and_records_history_in_one_statement(tenant, django_assert_num_queries):
    from datetime import UTC, datetime, timedelta

    from alerts.models import AlertEvent, AlertStatus
    from alerts.services import alert_acknowledge, alert_snooze, alerts_resolve_for_rules
    from tests.factories import TriggerRuleFactory, raise_alert

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    acked, snoozed, untouched = (TriggerRuleFactory(tenant=tenant, name=name) for name in ("acked", "snoozed", "other"))
    alert_acknowledge(alert=raise_alert(acked), actor="user:ann", now=now)
    alert_snooze(alert=raise_alert(snoozed), until=now + timedelta(hours=2), actor="user:ann", now=now)
    other = raise_alert(untouched)

    # The statement (with the alerts' kept history); then the in-app notifications follow the
    # status, and the delivery channels are read.
    with django_assert_num_queries(3):
        resolved = alerts_resolve_for_rules(
            rule_ids=[acked.pk, snoozed.pk], actor="engine", reasons={acked.pk: "Condition cleared: 3 < 5"}, now=now
        )

    assert sorted(alert.rule_id for alert in resolved) == sorted([acked.pk, snoozed.pk])
    assert {(a.rule_id, a.status, a.resolved_at, a.snoozed_until) for a in resolved} == {
        (acked.pk, AlertStatus.RESOLVED, now, None),
        (snoozed.pk, AlertStatus.RESOLVED, now, None),
    }
    history = set(
        AlertEvent.objects.filter(to_status=AlertStatus.RESOLVED).values_list(
            "alert__rule_id", "from_status", "actor", "reason", "at"
        )
    )
    assert history == {
        (acked.pk, AlertStatus.ACKNOWLEDGED, "engine", "Condition cleared: 3 < 5", now),
        (snoozed.pk, AlertStatus.SNOOZED, "engine", "", now),
    }
    other.refresh_from_db()
    assert other.status == AlertStatus.PENDING
    assert alerts_resolve_for_rules(rule_ids=[acked.pk], actor="engine", reasons={}, now=now) == []
