from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, Notification
from billing.models import BillingUsage
from proactive.models import TriggerRule
from tests.factories import MetricPointFactory, TriggerRuleFactory, metric_points

pytestmark = pytest.mark.django_db


@pytest.fixture
def spike(tenant):
    MetricPointFactory(
        tenant=tenant, metric="analytics.mql.delta", timestamp=timezone.now() - timedelta(minutes=1), value=31
    )
    return TriggerRuleFactory(tenant=tenant, name="Spike", threshold=25)


def test_dry_run_explains_and_writes_nothing(tenant_client, spike):
    before = TriggerRule.objects.filter(pk=spike.pk).values().get()

    body = tenant_client.post(f"/triggers/{spike.pk}/evaluate", {"dryRun": True}, format="json").json()

    assert (body["dryRun"], body["fired"], body["alertId"], body["alertCreated"]) == (True, True, None, False)
    assert body["reason"] == "analytics.mql.delta is 31, above 25."
    assert (body["evidence"]["value"], body["evidence"]["threshold"]) == (31.0, 25.0)
    assert not Alert.objects.exists() and not BillingUsage.objects.exists()
    assert TriggerRule.objects.filter(pk=spike.pk).values().get() == before
    assert tenant_client.post(f"/triggers/{spike.pk}/evaluate?dryRun=true").json()["dryRun"] is True


def test_evaluate_now_raises_the_alert_with_the_same_explanation(tenant_client, spike):
    body = tenant_client.post(f"/triggers/{spike.pk}/evaluate").json()

    alert = Alert.objects.get()
    assert (body["fired"], body["alertCreated"], body["alertId"]) == (True, True, alert.pk)
    assert alert.payload == {**body["evidence"], "reason": body["reason"]}
    assert body["rule"]["lastFiredAt"] is not None
    again = tenant_client.post(f"/triggers/{spike.pk}/evaluate").json()
    assert (again["alertCreated"], again["alertId"]) == (False, alert.pk)


def test_a_rule_that_does_not_fire_says_why(tenant_client, tenant):
    quiet = TriggerRuleFactory(tenant=tenant, type="anomaly", threshold=None)

    body = tenant_client.post(f"/triggers/{quiet.pk}/evaluate").json()

    assert body["fired"] is False
    assert (
        body["reason"] == "analytics.mql.delta has 0 point(s) in the last 30 days; anomaly detection needs at least 5."
    )


def test_a_disabled_rule_can_only_be_dry_run(tenant_client, tenant, spike):
    tenant_client.patch(f"/triggers/{spike.pk}", {"enabled": False}, format="json")

    real = tenant_client.post(f"/triggers/{spike.pk}/evaluate")
    dry = tenant_client.post(f"/triggers/{spike.pk}/evaluate", {"dryRun": True}, format="json")

    assert real.status_code == 409
    assert real.json() == {"error": "conflict", "detail": "The rule is disabled: enable it, or evaluate with dryRun."}
    assert dry.json()["fired"] is True
    assert not Alert.objects.exists()


def test_bad_body_and_another_tenants_rule(tenant_client, other_tenant, spike):
    theirs = TriggerRuleFactory(tenant=other_tenant)

    bad = tenant_client.post(f"/triggers/{spike.pk}/evaluate", {"dryRun": "perhaps"}, format="json")
    foreign = tenant_client.post(f"/triggers/{theirs.pk}/evaluate")

    assert (bad.status_code, list(bad.json()["detail"])) == (400, ["dryRun"])
    assert (foreign.status_code, foreign.json()) == (404, {"error": "not_found", "detail": "Not found."})
    assert not Alert.objects.exists()


def test_an_evaluation_by_hand_is_recorded_as_the_caller(tenant_client, spike):
    tenant_client.post(f"/triggers/{spike.pk}/evaluate")

    assert Alert.objects.get().history.get().actor.startswith("api-key:")


def test_a_bad_dry_run_query_parameter_is_named(tenant_client, spike):
    response = tenant_client.post(f"/triggers/{spike.pk}/evaluate?dryRun=maybe")

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["dryRun"]


def test_a_constant_history_anomaly_raises_its_alert_and_notification(tenant, tenant_client):
    metric_points(tenant, "m.const", 5, 5, 5, 5, 5, 50, end=timezone.now() - timedelta(hours=1))
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", metric="m.const", threshold=None)

    evaluated = tenant_client.post(f"/triggers/{rule.pk}/evaluate")

    assert evaluated.status_code == 200
    assert evaluated.json()["evidence"]["zScore"] is None and evaluated.json()["alertCreated"] is True
    assert "unbounded" in Notification.objects.get().body


def test_values_whose_spread_overflows_are_undecided_not_an_error(tenant, tenant_client):
    metric_points(tenant, "huge", 1e300, -1e300, 1e300, -1e300, 1e300, 0, end=timezone.now() - timedelta(hours=1))
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", metric="huge", threshold=None)

    response = tenant_client.post(f"/triggers/{rule.pk}/evaluate", {"dryRun": True}, format="json")

    assert response.status_code == 200
    assert response.json()["fired"] is False
    assert "too large to compare" in response.json()["reason"]
