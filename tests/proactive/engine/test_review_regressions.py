"""Engine, billing and marketplace edge cases found in review, each once a real defect."""

import threading
import time
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts import channels
from alerts.models import Alert, Notification
from alerts.services import alert_resolve
from billing.models import BillingUsage
from billing.services.usage import UsageDelta, usage_apply, usage_rollup
from marketplace.services import widget_install, widget_register
from proactive.engine import runner
from proactive.engine.runner import due_rule_ids, evaluate_rules
from proactive.models import MetricPoint, TriggerRule
from proactive.services import trigger_rule_delete
from tests.factories import TenantFactory, TriggerRuleFactory, raise_alert


def add_points(tenant, metric, values):
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(tenant=tenant, metric=metric, timestamp=now - timedelta(hours=len(values) - i), value=v)
            for i, v in enumerate(values)
        ]
    )


def tick():
    now = timezone.now()
    return evaluate_rules(rule_ids=due_rule_ids(now=now), now=now)


@pytest.mark.django_db
def test_a_constant_history_anomaly_raises_its_alert_and_notification(tenant, tenant_client):
    add_points(tenant, "m.const", [5, 5, 5, 5, 5, 50])
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", metric="m.const", threshold=None)

    evaluated = tenant_client.post(f"/triggers/{rule.pk}/evaluate")

    assert evaluated.status_code == 200
    assert evaluated.json()["evidence"]["zScore"] is None and evaluated.json()["alertCreated"] is True
    assert "unbounded" in Notification.objects.get().body


@pytest.mark.django_db
def test_one_alert_that_cannot_be_raised_does_not_stop_the_others(tenant, other_tenant, monkeypatch):
    add_points(tenant, "load", [9])
    add_points(other_tenant, "load", [9])
    broken = TriggerRuleFactory(tenant=tenant, name="Broken", metric="load", threshold=1)
    healthy = TriggerRuleFactory(tenant=other_tenant, name="Healthy", metric="load", threshold=1)
    original = channels.notification_title

    def title(alert):
        if alert.rule_name == "Broken":
            raise RuntimeError("template exploded")
        return original(alert)

    monkeypatch.setattr(channels, "notification_title", title)

    report = tick()

    assert (report.evaluated, report.alerts_created, report.errors) == (2, 1, 1)
    assert list(Alert.objects.values_list("rule_id", flat=True)) == [healthy.pk]
    broken.refresh_from_db()
    assert broken.last_error == "Raising the alert failed: RuntimeError: template exploded"
    assert sum(BillingUsage.objects.values_list("alerts_triggered", flat=True)) == 1


@pytest.mark.django_db
def test_an_alert_resolved_after_the_claim_does_not_swallow_the_firing(tenant, monkeypatch):
    rule = TriggerRuleFactory(
        tenant=tenant, type="schedule", schedule="* * * * *", now=timezone.now() - timedelta(minutes=2)
    )
    old = raise_alert(rule)
    original = runner.evaluate_conditions

    def resolve_meanwhile(*, rules, now):
        results = original(rules=rules, now=now)
        alert_resolve(alert=old, actor="user:ann")  # between the claim and the raise
        return results

    monkeypatch.setattr(runner, "evaluate_conditions", resolve_meanwhile)
    report = tick()

    assert report.alerts_created == 1
    assert Alert.objects.filter(rule=rule).exclude(status="resolved").count() == 1


@pytest.mark.django_db
def test_values_whose_spread_overflows_are_undecided_not_an_error(tenant, tenant_client):
    add_points(tenant, "huge", [1e300, -1e300, 1e300, -1e300, 1e300, 0])
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", metric="huge", threshold=None)

    response = tenant_client.post(f"/triggers/{rule.pk}/evaluate", {"dryRun": True}, format="json")

    assert response.status_code == 200
    assert response.json()["fired"] is False
    assert "too large to compare" in response.json()["reason"]


@pytest.mark.django_db(transaction=True)
def test_deleting_a_rule_while_the_engine_resolves_its_alert_does_not_deadlock(monkeypatch):
    tenant = TenantFactory(id="acme")
    rule = TriggerRuleFactory(tenant=tenant, metric="load", threshold=10, auto_resolve=True)
    raise_alert(rule)
    add_points(tenant, "load", [1])
    TriggerRule.objects.filter(pk=rule.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    errors, original = {}, runner.evaluate_conditions

    def delete():
        try:
            trigger_rule_delete(rule=rule)
        except Exception as exc:  # pragma: no cover - surfaced by the assertion
            errors["delete"] = exc
        finally:
            connection.close()

    def evaluate_while_deleting(*, rules, now):
        deleter = threading.Thread(target=delete)
        deleter.start()
        evaluate_while_deleting.deleter = deleter
        _wait_until_someone_waits_for_a_lock()
        return original(rules=rules, now=now)

    monkeypatch.setattr(runner, "evaluate_conditions", evaluate_while_deleting)
    try:
        report = evaluate_rules(rule_ids=[rule.pk])
    except Exception as exc:  # pragma: no cover - surfaced by the assertion
        errors["engine"] = exc
    evaluate_while_deleting.deleter.join(timeout=30)

    assert errors == {}
    assert report.resolved == 1
    assert not TriggerRule.objects.filter(pk=rule.pk).exists()
    assert Alert.objects.get().rule_id is None and Alert.objects.get().status == "resolved"


def _wait_until_someone_waits_for_a_lock(timeout=10.0):
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is cached per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the other transaction never waited for a lock")


@pytest.mark.django_db
def test_a_usage_row_dated_in_the_future_does_not_stop_the_rollup(tenant):
    today = timezone.now().date()
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=today - timedelta(days=2), active_widgets=2)])
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=date(2099, 1, 1), tokens_used=1)])

    usage_rollup(today=today)

    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 2


@pytest.mark.django_db
def test_a_deactivated_widget_stops_being_billed_and_can_be_uninstalled(tenant, tenant_client):
    widget = widget_register(slug="radar", name="Radar", version="1.0.0").widget
    widget_install(tenant=tenant, widget=widget)
    today = timezone.now().date()
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 1

    widget_register(slug="radar", active=False)
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 0

    assert tenant_client.delete("/marketplace/widgets/radar/install").status_code == 204
    widget_register(slug="radar", active=True)
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 0
