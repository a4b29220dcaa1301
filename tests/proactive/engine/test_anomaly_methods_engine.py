"""Anomaly methods and directions through the engine on PostgreSQL, and their alerts through the API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from tests.factories import TenantFactory, TriggerRuleFactory, metric_points

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)  # a Thursday
HOUR = timedelta(hours=1)


def anomaly_rule(tenant, **fields):
    return TriggerRuleFactory(
        tenant=tenant, now=NOW - timedelta(hours=1), type="anomaly", metric="m", threshold=None, **fields
    )


def tick(now=NOW):
    return evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now)


def fired_by(report):
    return {result.rule.name for result in report.results if result.fired}


def test_robust_sees_a_spike_that_an_old_outlier_hides_from_the_zscore(tenant):
    anomaly_rule(tenant, name="zscore")
    anomaly_rule(tenant, name="robust", method="robust")
    # A day of values around 10, one old outlier of 1,000, and now 40.
    values = [10 + (h % 5) * 0.5 for h in range(24)]
    values[3] = 1000
    metric_points(tenant, "m", *values, 40, end=NOW - timedelta(minutes=1))

    report = tick()

    assert fired_by(report) == {"robust"}
    evidence = Alert.objects.get().payload
    assert evidence["method"] == "robust"
    assert evidence["median"] == 11.0  # 24 earlier points: eleven of 10 … 12; the outlier is one of them
    assert evidence["score"] > 2.5
    assert "robust score" in evidence["reason"]


def test_direction_up_ignores_a_drop_and_down_ignores_a_rise(tenant):
    anomaly_rule(tenant, name="up", direction="up")
    anomaly_rule(tenant, name="down", direction="down")
    anomaly_rule(tenant, name="both")
    metric_points(tenant, "m", 10, 12, 10, 12, 10, 12, 2, end=NOW - timedelta(minutes=1))  # z = −9

    report = tick()

    assert fired_by(report) == {"down", "both"}
    assert Alert.objects.get(rule__name="down").payload["direction"] == "down"
    assert "direction" not in Alert.objects.get(rule__name="both").payload


def test_seasonal_reads_the_tenants_hours_and_expects_the_weekly_peak(tenant):
    tenant.timezone = "Europe/Berlin"
    tenant.save(update_fields=["timezone"])
    anomaly_rule(tenant, name="seasonal", method="seasonal")
    anomaly_rule(tenant, name="robust", method="robust")
    # Four weeks of hourly points: 10 at every hour but Thursdays 14:00 in Berlin (13:00 UTC in
    # November), which peak at about 100; now is Thursday 14:30 in Berlin and the peak is here again.
    start = NOW.replace(minute=0) - timedelta(weeks=4)
    points = []
    for hour in range(4 * 7 * 24):
        moment = start + hour * HOUR
        peak = moment.weekday() == 3 and moment.hour == 13
        points.append((moment, 100.0 + hour // 168 if peak else 10.0 + hour % 4))  # peaks 100, 101, 102, 103
    metric_points(tenant, "m", *(value for _, value in points), end=points[-1][0])
    metric_points(tenant, "m", 101, end=NOW - timedelta(minutes=1))

    report = tick()

    assert fired_by(report) == {"robust"}
    result = next(r for r in report.results if r.rule.name == "seasonal")
    assert result.evaluation.evidence["seasonWeekday"] == "Thursday"
    assert result.evaluation.evidence["seasonHour"] == 14
    assert result.evaluation.evidence["timezone"] == "Europe/Berlin"
    assert result.evaluation.evidence["seasonPoints"] == 4  # the four earlier Thursdays' 14:00
    assert result.evaluation.evidence["median"] == 101.5


def test_a_seasonal_rule_without_its_season_has_no_data(tenant):
    rule = anomaly_rule(tenant, method="seasonal", no_data="alert")
    metric_points(tenant, "m", 1, 2, 3, 4, 5, 6, end=NOW - timedelta(minutes=1))  # six different hours

    tick()

    rule.refresh_from_db()
    assert rule.health == "noData"
    assert Alert.objects.get().payload["noData"] is True


def test_methods_add_no_queries_per_rule(tenant):
    def queries_for(count):
        tenant_ = TenantFactory()
        for n in range(count):
            for method in ("zscore", "robust", "seasonal"):
                TriggerRuleFactory(
                    tenant=tenant_,
                    now=NOW - HOUR,
                    type="anomaly",
                    metric=f"m{n % 3}",
                    threshold=None,
                    method=method,
                    direction="up",
                )
        for metric in ("m0", "m1", "m2"):
            metric_points(tenant_, metric, *range(1, 30), end=NOW - timedelta(minutes=1))
        ids = list(TriggerRule.objects.filter(tenant=tenant_).values_list("id", flat=True))
        with CaptureQueriesContext(connection) as captured:
            evaluate_rules(rule_ids=ids, now=NOW)
        return len(captured.captured_queries)

    assert queries_for(2) == queries_for(20)


def test_robust_and_seasonal_alerts_match_the_published_schema(tenant, client_for):
    anomaly_rule(tenant, name="robust", method="robust", direction="up")
    metric_points(tenant, "m", 10, 11, 10, 12, 10, 11, 10, 90, end=NOW - timedelta(minutes=1))
    tick()

    body = client_for(tenant).get("/alerts").json()  # the contract check validates it against the schema

    (alert,) = body["results"]
    assert alert["payload"]["method"] == "robust"
    assert alert["payload"]["direction"] == "up"
    assert alert["payload"]["median"] == 10  # 10 10 10 10 11 11 12
    assert alert["payload"]["mad"] == 0  # four of seven deviations are 0: the mean deviation (4/7) stands in
