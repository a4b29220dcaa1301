"""The rule options through the engine on PostgreSQL: comparisons, aggregates, pending periods, hysteresis, no data."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from tests.factories import TenantFactory, TriggerRuleFactory, metric_points

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rule(tenant, **fields):
    return TriggerRuleFactory(tenant=tenant, now=NOW - timedelta(hours=1), metric="m", **fields)


def tick(now=NOW):
    return evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now)


def payload():
    return Alert.objects.get().payload


def test_below_fires_under_the_threshold(tenant):
    rule(tenant, comparison="below", threshold=5)
    metric_points(tenant, "m", 9, 3, end=NOW)

    tick()

    assert payload()["reason"] == "m is 3, below 5."
    assert payload()["comparison"] == "below"


def test_outside_a_range(tenant):
    inside = rule(tenant, comparison="outside", threshold=0, threshold_high=10)
    metric_points(tenant, "m", 12, end=NOW)

    report = tick()

    assert [r.fired for r in report.results] == [True]
    assert payload()["thresholdHigh"] == 10 and payload()["reason"] == "m is 12, outside 0…10."
    assert Alert.objects.get().rule_id == inside.pk


def test_change_against_the_value_a_week_earlier(tenant):
    rule(tenant, comparison="changeBelow", threshold=-20, compare_days=7)
    metric_points(tenant, "m", 200, end=NOW - timedelta(days=7, minutes=5))
    metric_points(tenant, "m", 150, end=NOW - timedelta(minutes=1))

    tick()

    assert payload()["changePercent"] == -25.0
    assert (payload()["baseline"], payload()["baselineAt"]) == (200.0, "2026-11-19T13:25:00Z")
    assert payload()["reason"] == "m is 150, -25% against 200 7 days earlier: less than -20%."


@pytest.mark.parametrize(
    ("aggregate", "threshold", "fired", "value"),
    [
        ("avg", 19.9, True, 20.0),  # (10 + 20 + 30) / 3: the 90 is older than 15 minutes
        ("sum", 60, False, 60.0),
        ("min", 9, True, 10.0),
        ("max", 30, False, 30.0),
        ("count", 2, True, 3.0),
    ],
)
def test_aggregates_are_computed_by_the_database_over_the_last_minutes(tenant, aggregate, threshold, fired, value):
    rule(tenant, aggregate=aggregate, aggregate_minutes=15, threshold=threshold)
    metric_points(tenant, "m", 90, end=NOW - timedelta(minutes=16))
    metric_points(tenant, "m", 10, 20, 30, end=NOW, every=5 * MINUTE)

    report = tick()

    [result] = report.results
    assert (result.fired, result.evaluation.evidence["value"]) == (fired, value)
    assert result.evaluation.evidence["points"] == 3 and result.evaluation.evidence["aggregateMinutes"] == 15


def test_a_count_of_an_empty_window_is_zero_not_no_data(tenant):
    rule(tenant, aggregate="count", aggregate_minutes=10, comparison="below", threshold=1)
    metric_points(tenant, "m", 5, end=NOW - timedelta(hours=1))

    tick()

    assert payload()["value"] == 0.0 and payload()["reason"] == "The count of m over the last 10 minutes is 0, below 1."
    assert TriggerRule.objects.get().health == "ok"


def test_a_pending_period_fires_on_the_third_breaching_minute_and_keeps_the_streak(tenant):
    watched = rule(tenant, threshold=10, for_evaluations=3)
    metric_points(tenant, "m", 50, end=NOW)

    fired = [tick(NOW + MINUTE * n).fired for n in range(3)]
    watched.refresh_from_db()

    assert fired == [0, 0, 1]
    assert payload()["reason"] == "m is 50, above 10. Breaching for 3 of 3 evaluations."
    assert (payload()["breachingEvaluations"], payload()["forEvaluations"]) == (3, 3)
    assert (watched.breaching_streak, watched.clear_streak) == (3, 0)


def test_a_clear_minute_restarts_the_pending_period(tenant):
    rule(tenant, threshold=10, for_evaluations=2)
    metric_points(tenant, "m", 50, end=NOW)
    tick(NOW)
    metric_points(tenant, "m", 1, end=NOW + MINUTE)
    tick(NOW + MINUTE)
    metric_points(tenant, "m", 50, end=NOW + 2 * MINUTE)
    tick(NOW + 2 * MINUTE)

    assert not Alert.objects.exists()
    tick(NOW + 3 * MINUTE)
    assert Alert.objects.count() == 1


def test_hysteresis_resolves_after_two_clear_minutes(tenant):
    rule(tenant, threshold=10, auto_resolve=True, clear_evaluations=2)
    metric_points(tenant, "m", 50, end=NOW)
    tick(NOW)
    metric_points(tenant, "m", 1, end=NOW + MINUTE)

    first = tick(NOW + MINUTE)
    second = tick(NOW + 2 * MINUTE)

    assert (first.resolved, second.resolved) == (0, 1)
    assert Alert.objects.get().status == "resolved"


def test_no_data_alert_raises_an_alert_that_says_so(tenant):
    rule(tenant, threshold=10, no_data="alert", window_days=1)

    tick()

    alert = Alert.objects.get()
    assert alert.payload == {
        "metric": "m",
        "noData": True,
        "windowDays": 1,
        "reason": "No datapoints for 'm' in the window. The rule raises a no-data alert (noData: alert).",
    }
    assert TriggerRule.objects.get().health == "noData"


def test_options_do_not_add_queries_per_rule(tenant):
    def queries_for(count):
        tenant_ = TenantFactory()
        for n in range(count):
            make = dict(tenant=tenant_, now=NOW - timedelta(hours=1), metric=f"m{n % 3}", threshold=1)
            TriggerRuleFactory(**make, aggregate="avg", aggregate_minutes=15)
            TriggerRuleFactory(**make, comparison="changeAbove", compare_days=7)
            TriggerRuleFactory(**make, for_evaluations=3, no_data="alert")
        for metric in ("m0", "m1", "m2"):
            metric_points(tenant_, metric, 1, 2, end=NOW - timedelta(days=7))
            metric_points(tenant_, metric, 5, 9, end=NOW)
        ids = list(TriggerRule.objects.filter(tenant=tenant_).values_list("id", flat=True))
        with CaptureQueriesContext(connection) as captured:
            report = evaluate_rules(rule_ids=ids, now=NOW)
        assert report.evaluated == 3 * count and report.errors == 0
        return len(captured.captured_queries)

    small, large = queries_for(5), queries_for(60)

    assert small == large <= 20


def test_the_sql_and_the_portable_aggregates_agree(tenant, other_tenant):
    from proactive.metrics import AggregateRequest, CustomMetricProvider, _aggregate_with_orm

    metric_points(tenant, "m", 1.5, -2.0, 7.25, 4.0, end=NOW, every=MINUTE)
    metric_points(other_tenant, "m", 100, end=NOW)
    requests = [
        AggregateRequest(tenant_id=tenant.pk, metric="m", since=NOW - 2 * MINUTE, until=NOW, aggregate=aggregate)
        for aggregate in ("avg", "sum", "min", "max", "count")
    ] + [AggregateRequest(tenant_id=tenant.pk, metric="none", since=NOW - MINUTE, until=NOW, aggregate="avg")]

    in_sql = CustomMetricProvider().aggregate_many(requests)

    assert [in_sql[r].value for r in requests] == [3.0833333333333335, 9.25, -2.0, 7.25, 3.0, None]
    assert all(
        in_sql[r] == pytest.approx(_aggregate_with_orm(r)) or in_sql[r] == _aggregate_with_orm(r) for r in requests
    )


def test_a_builtin_daily_metric_is_aggregated_from_its_series(tenant):
    from billing.services.usage import usage_insert_if_missing

    for days_ago, tokens in ((0, 300), (1, 200), (2, 100)):
        usage_insert_if_missing(
            tenant_id=tenant.pk,
            day=(NOW - timedelta(days=days_ago)).date(),
            values={"tokens_used": tokens, "tasks_executed": 0, "alerts_triggered": 0, "active_widgets": 0},
        )
    TriggerRuleFactory(
        tenant=tenant,
        now=NOW - timedelta(hours=1),
        metric="usage.tokensUsed",
        aggregate="sum",
        aggregate_minutes=2 * 1440,
        threshold=450,
    )

    [result] = tick().results

    # The points at midnight of the last two days, today's included: 200 + 300.
    assert (result.fired, result.evaluation.evidence["value"], result.evaluation.evidence["points"]) == (True, 500.0, 2)
