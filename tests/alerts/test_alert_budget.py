"""A tenant's alert budget per hour: the flood kept back, summed up in one overflow alert, the others untouched."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from alerts.budget import OVERFLOW_RULES_SHOWN
from alerts.models import Alert, AlertBudget, AlertEvent, Notification
from alerts.services import Firing, alerts_raise
from billing.models import BillingUsage
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from tests.concurrency import run_concurrently
from tests.factories import TenantFactory, TriggerRuleFactory, metric_points

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0)
CREATED = NOW - timedelta(hours=1)


def breaching_rules(tenant, count, *, severity="warning", prefix="r"):
    metric_points(tenant, "load", 9, end=NOW - timedelta(minutes=1))
    return [
        TriggerRuleFactory(
            tenant=tenant, now=CREATED, name=f"{prefix}{n}", metric="load", threshold=1, severity=severity
        )
        for n in range(count)
    ]


def tick(now):
    return evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now)


def overflow_of(tenant):
    return Alert.objects.get(tenant=tenant, rule_type="alert_budget")


@pytest.mark.django_db
def test_a_flooding_tenant_gets_its_budget_and_one_overflow_alert_and_the_others_are_untouched(
    tenant, other_tenant, client_for
):
    tenant.alert_budget_per_hour = 3
    tenant.save()
    flood = breaching_rules(tenant, 5)
    critical = TriggerRuleFactory(
        tenant=tenant, now=CREATED, name="last but critical", metric="load", threshold=1, severity="critical"
    )
    breaching_rules(other_tenant, 4, prefix="g")

    report = tick(NOW)

    assert report.evaluated == 10 and report.fired == 10 and report.errors == 0
    raised = Alert.objects.filter(tenant=tenant, rule__isnull=False)
    assert raised.count() == 3 and critical.pk in set(raised.values_list("rule_id", flat=True))  # critical first
    assert Alert.objects.filter(tenant=other_tenant).count() == 4  # the default budget (1,000): untouched
    kept_back = [rule for rule in flood if not raised.filter(rule=rule).exists()]
    overflow = overflow_of(tenant)
    assert (overflow.rule_id, overflow.rule_name, overflow.severity, overflow.status, overflow.triggered_at) == (
        None,
        "Alert budget exceeded",
        "warning",
        "pending",
        NOW,
    )
    assert overflow.payload == {
        "reason": "The alert budget of 3 an hour is spent: 3 more firing(s) since 2026-11-26T13:00:00Z "
        "raised no alert.",
        "budget": 3,
        "hour": "2026-11-26T13:00:00Z",
        "suppressed": 3,
        "rules": [{"ruleId": rule.pk, "ruleName": rule.name} for rule in kept_back],
        "moreRules": False,
    }
    hour = AlertBudget.objects.get(tenant=tenant)
    assert (hour.hour, hour.budget, hour.admitted, hour.suppressed, hour.overflow_alert_id) == (
        HOUR,
        3,
        3,
        3,
        overflow.pk,
    )
    assert AlertBudget.objects.get(tenant=other_tenant).suppressed == 0
    # Notified once like an alert; billed never: usage counts the 3 alerts raised.
    assert Notification.objects.filter(tenant=tenant).count() == 4
    assert Notification.objects.filter(alert=overflow).exists()
    assert BillingUsage.objects.get(tenant=tenant).alerts_triggered == 3
    assert BillingUsage.objects.get(tenant=other_tenant).alerts_triggered == 4
    # The suppressed rules are not in error: they still breach, and alert when the budget allows.
    assert {rule.health for rule in type(flood[0]).objects.filter(pk__in=[r.pk for r in kept_back])} == {"ok"}
    # GET /alerts shows it, in the documented shape (the contract check validates the body).
    body = client_for(tenant).get("/alerts").json()
    shown = next(alert for alert in body["results"] if alert["ruleType"] == "alert_budget")
    assert (shown["ruleId"], shown["ruleName"], shown["payload"]["suppressed"]) == (None, "Alert budget exceeded", 3)
    assert [alert["ruleType"] for alert in body["results"]].count("alert_budget") == 1
    assert other_tenant.pk not in {alert["ruleName"] for alert in body["results"]}


@pytest.mark.django_db
def test_more_firings_in_the_hour_update_the_one_overflow_alert_without_notifying_again(tenant):
    tenant.alert_budget_per_hour = 1
    tenant.save()
    first = breaching_rules(tenant, 2)
    tick(NOW)
    overflow = overflow_of(tenant)
    notifications = Notification.objects.count()

    later = [
        TriggerRuleFactory(tenant=tenant, now=NOW, name=f"later{n}", metric="load", threshold=1, severity="critical")
        for n in range(2)
    ]
    alerts_raise(
        firings=[Firing(rule=rule, payload={"reason": "x"}, triggered_at=NOW + timedelta(minutes=5)) for rule in later]
    )

    assert Alert.objects.filter(tenant=tenant, rule_type="alert_budget").count() == 1
    overflow.refresh_from_db()
    assert overflow.payload["suppressed"] == 3
    assert [rule["ruleName"] for rule in overflow.payload["rules"]] == [first[1].name, "later0", "later1"]
    assert overflow.severity == "critical"  # raised to the highest kept back, silently
    assert Notification.objects.count() == notifications
    assert AlertEvent.objects.filter(alert=overflow).count() == 1
    assert AlertBudget.objects.values_list("admitted", "suppressed").get() == (1, 3)


@pytest.mark.django_db
def test_the_overflow_names_at_most_twenty_rules(tenant):
    tenant.alert_budget_per_hour = 0
    tenant.save()
    rules = breaching_rules(tenant, OVERFLOW_RULES_SHOWN + 5)

    tick(NOW)

    assert not Alert.objects.filter(rule__isnull=False).exists()
    payload = overflow_of(tenant).payload
    assert payload["suppressed"] == 25 and payload["moreRules"] is True
    assert [rule["ruleId"] for rule in payload["rules"]] == [rule.pk for rule in rules[:OVERFLOW_RULES_SHOWN]]


@pytest.mark.django_db
def test_kept_back_rules_alert_normally_when_the_next_hour_frees_the_budget(tenant):
    tenant.alert_budget_per_hour = 3
    tenant.save()
    rules = breaching_rules(tenant, 5)
    tick(NOW)
    assert Alert.objects.filter(rule__isnull=False).count() == 3
    first_overflow = overflow_of(tenant)

    # Nothing changes in their data: the kept-back rules sleep at most ENGINE_MAX_STALENESS_MINUTES (60).
    assert tick(NOW + timedelta(minutes=1)).evaluated == 0
    report = tick(NOW + timedelta(minutes=60))

    assert report.alerts_created == 2
    assert set(Alert.objects.filter(rule__isnull=False).values_list("rule_id", flat=True)) == {r.pk for r in rules}
    assert Alert.objects.filter(rule_type="alert_budget").get() == first_overflow  # none in the new hour
    assert list(AlertBudget.objects.order_by("hour").values_list("hour", "admitted", "suppressed")) == [
        (HOUR, 3, 2),
        (HOUR + timedelta(hours=1), 2, 0),
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_engines_raising_for_one_tenant_at_once_cannot_both_spend_the_budget():
    tenant = TenantFactory(id="acme", alert_budget_per_hour=5)
    rules = [TriggerRuleFactory(tenant=tenant, name=f"r{n}", metric="load", threshold=1) for n in range(20)]

    def raise_half(half):
        return alerts_raise(firings=[Firing(rule=rule, payload={"reason": "x"}, triggered_at=NOW) for rule in half])

    results, errors = run_concurrently([lambda: raise_half(rules[:10]), lambda: raise_half(rules[10:])])
    connection.close()

    assert errors == []
    assert sum(len(result) for result in results) == 5
    assert Alert.objects.filter(rule__isnull=False).count() == 5
    assert AlertBudget.objects.values_list("admitted", "suppressed").get() == (5, 15)
    overflow = Alert.objects.get(rule_type="alert_budget")
    assert overflow.payload["suppressed"] == 15 and len(overflow.payload["rules"]) == 15
    assert AlertEvent.objects.filter(alert=overflow).count() == 1


@pytest.mark.django_db
def test_the_console_shows_each_hour_and_filters_the_overflow_alerts(tenant, staff):
    tenant.alert_budget_per_hour = 1
    tenant.save()
    breaching_rules(tenant, 3)
    tick(NOW)
    overflow = overflow_of(tenant)

    hours = staff.get("/admin/alerts/alertbudget/?ran_over=yes").content.decode()
    assert f'href="/admin/alerts/alert/{overflow.pk}/change/"' in hours and f">#{overflow.pk}<" in hours
    assert '<td class="field-suppressed">2</td>' in hours
    assert "0 alert budgets" in staff.get("/admin/alerts/alertbudget/?ran_over=no").content.decode()
    listed = staff.get("/admin/alerts/alert/?rule_type__exact=alert_budget").content.decode()
    assert "Alert budget exceeded" in listed and listed.count("field-rule_name") == 1
    page = staff.get(f"/admin/alerts/alert/{overflow.pk}/change/")
    assert page.status_code == 200 and "The alert budget of 1 an hour is spent" in page.content.decode()
    form = staff.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert 'name="alert_budget_per_hour"' in form
