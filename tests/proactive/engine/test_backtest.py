"""
The backtest replays the engine: hand-computed series (a spike day, a flapping series, a quiet
series, a schedule over a month), the same decisions as evaluating every minute one by one, and
the API that serves it (validated like creating a rule, scoped to the tenant, writing nothing).
"""

import bisect
import functools
import random
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from django.utils import timezone

from alerts.models import Alert
from proactive.engine.backtest import BacktestRule, backtest_metric_rule, backtest_schedule_rule
from proactive.engine.conditions import Reading, evaluate_anomaly, evaluate_reading, reading_of_points
from proactive.engine.policy import Streaks, apply_policy
from proactive.metrics import reduce_points
from proactive.models import MetricPoint, TriggerRule
from tests.factories import TriggerRuleFactory, metric_points

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hourly(*values, end=NOW):
    return [(end - HOUR * (len(values) - 1 - i), float(v)) for i, v in enumerate(values)]


def threshold_rule(threshold=25.0, window_days=30, auto_resolve=True):
    return BacktestRule(
        type="metric_threshold", metric="m", threshold=threshold, window_days=window_days, auto_resolve=auto_resolve
    )


def test_a_spike_day_opens_one_alert_that_resolves_when_the_day_is_over():
    # 10 days of hourly 10s, with one day of 50s ending 24 hours ago.
    values = [10] * 24 * 8 + [50] * 24 + [10] * 24
    points = hourly(*values, end=NOW - HOUR)
    spike_start = NOW - HOUR * 48

    result = backtest_metric_rule(rule=threshold_rule(), points=points, since=NOW - timedelta(days=9), until=NOW)

    [alert] = result.alerts
    assert (alert.opened_at, alert.resolved_at) == (spike_start, spike_start + timedelta(days=1))
    assert alert.evidence == {"metric": "m", "value": 50.0, "threshold": 25.0, "observedAt": "2026-11-24T12:00:00Z"}
    assert result.firing_count == 24 * 60  # every minute of the spike day
    assert [firing.minutes for firing in result.firings] == [60] * 24
    assert result.flaps == 0 and result.minutes == 9 * 24 * 60


def test_a_flapping_series_counts_its_flaps():
    # Every 20 minutes the value crosses 25 one way or the other: 6 crossings up in 4 hours.
    points = [(NOW - timedelta(minutes=20 * (11 - i)), 30.0 if i % 2 == 0 else 10.0) for i in range(12)]

    result = backtest_metric_rule(rule=threshold_rule(), points=points, since=NOW - timedelta(hours=5), until=NOW)

    assert len(result.alerts) == 6
    assert all(a.resolved_at - a.opened_at == timedelta(minutes=20) for a in result.alerts)
    assert result.flaps == 5  # each re-opened 20 minutes after the previous one resolved
    assert result.firing_count == 6 * 20


def test_without_auto_resolve_the_first_alert_stays_open():
    points = [(NOW - timedelta(minutes=20 * (11 - i)), 30.0 if i % 2 == 0 else 10.0) for i in range(12)]

    result = backtest_metric_rule(
        rule=threshold_rule(auto_resolve=False), points=points, since=NOW - timedelta(hours=5), until=NOW
    )

    [alert] = result.alerts
    assert alert.resolved_at is None and result.flaps == 0


def test_a_quiet_series_fires_nothing():
    result = backtest_metric_rule(
        rule=threshold_rule(), points=hourly(*[10] * 24 * 40), since=NOW - timedelta(days=30), until=NOW
    )

    assert (result.firing_count, result.alerts, result.firings, result.flaps) == (0, [], [], 0)
    assert result.points_read == 24 * 40 and len(result.series) == 24 * 30


def test_an_anomaly_rule_on_a_spike_with_its_band():
    values = [100 + (i % 7) for i in range(24 * 10)] + [400] + [100 + (i % 7) for i in range(5)]
    rule = BacktestRule(type="anomaly", metric="m", threshold=3.0, window_days=7, auto_resolve=True)

    result = backtest_metric_rule(rule=rule, points=hourly(*values), since=NOW - timedelta(days=3), until=NOW)

    [alert] = result.alerts
    assert alert.opened_at == NOW - HOUR * 5 and alert.resolved_at == NOW - HOUR * 4
    assert alert.evidence["value"] == 400.0 and alert.evidence["zScore"] > 3
    assert result.band and all(b.low < 100 < b.high for b in result.band)


def test_a_schedule_over_a_month():
    rule = BacktestRule(type="schedule", schedule="0 13 * * 1")
    since = datetime(2026, 10, 27, 12, 0, tzinfo=UTC)

    result = backtest_schedule_rule(rule=rule, since=since, until=since + timedelta(days=30))

    mondays = [datetime(2026, 11, d, 13, tzinfo=UTC) for d in (2, 9, 16, 23)]
    assert [f.at for f in result.firings] == mondays and result.firing_count == 4
    [alert] = result.alerts  # schedules do not resolve themselves: one alert, open
    assert (alert.opened_at, alert.resolved_at) == (mondays[0], None)


@pytest.mark.parametrize("seed", range(8))
def test_the_same_decisions_as_evaluating_every_minute(seed):
    """Random series, replayed both ways: the backtest agrees with the engine's conditions minute by minute."""
    rng = random.Random(seed)
    since, points, t = NOW - timedelta(hours=12), [], NOW - timedelta(days=1, hours=12)
    while t < NOW:
        t += timedelta(seconds=rng.choice([30, 90, 600, 1800, 3600]))
        value = 10.0 if rng.random() < 0.1 else rng.gauss(10, 2) if rng.random() > 0.05 else rng.gauss(30, 5)
        if t <= NOW:
            points.append((t, value))
    for rule in (
        threshold_rule(threshold=14.0, window_days=1),
        BacktestRule(type="anomaly", metric="m", threshold=2.0, window_days=1, auto_resolve=True),
    ):
        assert_same_as_every_minute(rule, points, since)


@pytest.mark.parametrize("resumes", [False, True])
def test_a_metric_that_stops_reporting_is_no_data_then_picks_up_again(resumes):
    """Every point ages out of the window (the anomaly's sums must not read past the end), then maybe returns."""
    rng = random.Random(3)
    before = [(NOW - timedelta(days=3) + timedelta(minutes=10 * i), rng.gauss(10, 2)) for i in range(6 * 32)]
    after = [(NOW - timedelta(hours=4) + timedelta(minutes=10 * i), rng.gauss(10, 2)) for i in range(24)]
    points = before + (after if resumes else [])
    points[-3] = (points[-3][0], 60.0)  # a spike shortly before the end of what is there
    since = NOW - timedelta(days=2)

    for rule in (
        threshold_rule(threshold=40.0, window_days=1),
        BacktestRule(type="anomaly", metric="m", threshold=3.0, window_days=1, auto_resolve=True),
    ):
        assert assert_same_as_every_minute(rule, points, since).alert_count >= 1


def test_only_the_first_thousand_alerts_are_listed_but_all_are_counted():
    # Crossing the threshold every minute for two days: 1,440 alerts, each re-opened a minute after resolving.
    points = [(NOW - timedelta(minutes=2880 - i), 30.0 if i % 2 == 0 else 10.0) for i in range(2881)]

    result = backtest_metric_rule(rule=threshold_rule(), points=points, since=NOW - timedelta(days=2), until=NOW)

    assert len(result.alerts) == 1000 and result.alerts_truncated
    assert result.alert_count == 1440 and result.flaps == 1439


def assert_same_as_every_minute(rule, points, since, *, until=NOW, timezone="UTC", daily=False):
    """`daily`: a daily built-in series (its running day left out, its seasons weekdays)."""
    result = backtest_metric_rule(
        rule=rule, points=points, since=since, until=until, timezone=timezone, completed_periods_only=daily
    )

    expected_minutes, expected_alerts = _every_minute(rule, points, since, until, timezone=timezone, daily=daily)
    assert result.firing_count == expected_minutes
    assert [(a.opened_at, a.resolved_at) for a in result.alerts] == expected_alerts
    assert result.alert_count == len(expected_alerts)
    return result


def _every_minute(rule, points, since, until, *, timezone="UTC", daily=False):
    """The reference: the engine's condition and policy, evaluated at every minute one by one."""
    window, minute, open_at = timedelta(days=rule.window_days), since + timedelta(minutes=1), None
    streaks, fired_minutes, alerts = Streaks(), 0, []
    moments = [ts for ts, _ in points]
    seasonal = rule.method == "seasonal"

    @functools.cache
    def anomaly(first, last):
        """The engine's verdict on points[first:last] (the same points decide the same, whatever the minute)."""
        return evaluate_anomaly(
            metric="m",
            points=points[first:last],
            threshold=rule.threshold,
            window_days=rule.window_days,
            method=rule.method,
            direction=rule.direction,
            timezone=timezone if seasonal else "UTC",
            daily=seasonal and daily,
        )

    def read(at):
        if rule.aggregate == "last":
            return reading_of_points([(ts, v) for ts, v in points if at - window <= ts <= at][-1:])
        seen = [(ts, v) for ts, v in points if at - timedelta(minutes=rule.aggregate_minutes) <= ts <= at]
        aggregated = reduce_points(rule.aggregate, seen)
        return Reading(value=aggregated.value, observed_at=at, points=aggregated.points)

    while minute <= until:
        if rule.type == "anomaly":
            # A daily series is read without its running day.
            last = minute if not daily else minute.replace(hour=0, minute=0) - timedelta(microseconds=1)
            verdict = anomaly(bisect.bisect_left(moments, minute - window), bisect.bisect_right(moments, last))
        else:
            verdict = evaluate_reading(
                metric="m",
                reading=read(minute),
                threshold=rule.threshold,
                comparison=rule.comparison,
                threshold_high=rule.threshold_high,
                aggregate=rule.aggregate,
                aggregate_minutes=rule.aggregate_minutes,
                baseline=read(minute - timedelta(days=rule.compare_days)) if rule.compares_change else None,
                compare_days=rule.compare_days,
            )
        outcome = apply_policy(
            verdict,
            streaks=streaks,
            metric="m",
            window={},
            for_evaluations=rule.for_evaluations,
            clear_evaluations=rule.clear_evaluations,
            no_data=rule.no_data,
        )
        streaks = outcome.streaks
        if outcome.fires:
            fired_minutes += 1
            open_at = open_at or minute
        elif open_at and rule.auto_resolve and outcome.clears:
            alerts.append((open_at, minute))
            open_at = None
        minute += timedelta(minutes=1)
    return fired_minutes, alerts + ([(open_at, None)] if open_at else [])


OPTION_RULES = [
    dict(comparison="below", threshold=8.0),
    dict(comparison="outside", threshold=7.0, threshold_high=13.0),
    dict(comparison="inside", threshold=9.0, threshold_high=11.0, for_evaluations=3),
    dict(comparison="changeAbove", threshold=40.0, compare_days=1),
    dict(comparison="changeBelow", threshold=-30.0, compare_days=1, aggregate="avg", aggregate_minutes=30),
    dict(aggregate="avg", aggregate_minutes=20, threshold=12.0, clear_evaluations=4),
    dict(aggregate="sum", aggregate_minutes=60, threshold=70.0, for_evaluations=5, clear_evaluations=3),
    dict(aggregate="max", aggregate_minutes=15, threshold=20.0, no_data="alert", for_evaluations=2),
    dict(aggregate="min", aggregate_minutes=45, threshold=7.0, comparison="below", no_data="keep"),
    dict(aggregate="count", aggregate_minutes=30, threshold=3.0, comparison="below"),
]


@pytest.mark.parametrize("options", OPTION_RULES, ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()))
@pytest.mark.parametrize("seed", range(3))
def test_every_option_makes_the_same_decisions_as_evaluating_every_minute(options, seed):
    """Random series with gaps longer than the windows, each option replayed both ways."""
    rng = random.Random(seed)
    since, points, t = NOW - timedelta(hours=10), [], NOW - timedelta(days=1, hours=11)
    while t < NOW:
        t += timedelta(seconds=rng.choice([30, 90, 300, 600, 3600, 7200]))
        value = rng.gauss(10, 2) if rng.random() > 0.1 else rng.gauss(25, 5)
        if t <= NOW:
            points.append((t, value))
    rule = BacktestRule(type="metric_threshold", metric="m", window_days=1, auto_resolve=True, **options)

    assert_same_as_every_minute(rule, points, since)


# --- The API -----------------------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_backtesting_an_unsaved_rule_over_the_tenants_history(tenant, tenant_client):
    end = timezone.now().replace(second=0, microsecond=0) - HOUR
    metric_points(tenant, "analytics.mql.delta", *([10] * 48 + [50] * 3 + [10] * 5), end=end)
    body = {
        "name": "MQL spike",
        "type": "metric_threshold",
        "metric": "analytics.mql.delta",
        "threshold": 25,
        "autoResolve": True,
        "days": 2,
    }

    response = tenant_client.post("/triggers/backtest", body, format="json")

    assert response.status_code == 200
    result = response.json()
    [alert] = result["alerts"]
    assert alert["evidence"]["value"] == 50.0 and alert["resolvedAt"] is not None
    assert result["firingCount"] == 3 * 60 and result["flaps"] == 0
    # The 47 points of the two days, and of the window before them only the latest (all a threshold reads).
    assert result["pointsRead"] == 48 and result["band"] is None
    assert not TriggerRule.objects.exists() and not Alert.objects.exists()


@pytestmark_db
def test_an_unsaved_rule_is_validated_as_creating_it_would_be(tenant_client):
    rule = {"name": "x", "type": "schedule", "schedule": "61 * * * *", "metric": "m"}

    backtest = tenant_client.post("/triggers/backtest", {**rule, "days": 91}, format="json")
    created = tenant_client.post("/triggers", rule, format="json")

    assert backtest.status_code == created.status_code == 400
    assert backtest.json()["detail"] == {"days": ["Ensure this value is less than or equal to 90."]}
    fixed = tenant_client.post("/triggers/backtest", {**rule, "days": 30}, format="json")
    assert fixed.json() == created.json()  # the same errors, word for word


@pytestmark_db
def test_backtesting_a_saved_schedule_rule(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 13 * * 1")
    now = timezone.now()

    result = tenant_client.post(f"/triggers/{rule.pk}/backtest", {"days": 30}, format="json").json()

    occurrences = croniter("0 13 * * 1", now - timedelta(days=30))
    expected = [occurrences.get_next(datetime) for _ in range(6)]
    expected = [moment for moment in expected if moment <= now]
    assert [f["at"] for f in result["firings"]] == [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in expected]
    assert result["firingCount"] == len(expected) and len(result["alerts"]) == 1


@pytestmark_db
def test_another_tenants_rule_cannot_be_backtested(other_tenant, tenant_client):
    theirs = TriggerRuleFactory(tenant=other_tenant)

    response = tenant_client.post(f"/triggers/{theirs.pk}/backtest", {}, format="json")

    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytestmark_db
def test_backtesting_a_daily_usage_anomaly_compares_whole_days(tenant, tenant_client):
    from billing.services.usage import UsageDelta, usage_apply

    today = timezone.now().date()
    usage_apply(
        deltas=[
            UsageDelta(tenant_id=tenant.id, day=today - timedelta(days=d), tokens_used=1000 + d % 3)
            for d in range(2, 20)
        ]
    )
    usage_apply(
        deltas=[
            UsageDelta(tenant_id=tenant.id, day=today - timedelta(days=1), tokens_used=9000),
            UsageDelta(tenant_id=tenant.id, day=today, tokens_used=1),
        ]
    )  # today: a running total
    body = {"name": "Tokens", "type": "anomaly", "metric": "usage.tokensUsed", "windowDays": 14, "days": 3}

    result = tenant_client.post("/triggers/backtest", body, format="json").json()

    [alert] = result["alerts"]
    assert alert["evidence"]["value"] == 9000.0  # yesterday, seen from today's midnight on
    assert alert["openedAt"] == f"{today:%Y-%m-%d}T00:00:00Z" and alert["resolvedAt"] is None


@pytestmark_db
def test_the_api_counts_a_flapping_series_flaps(tenant, tenant_client):
    # Every 20 minutes the value crosses 25 one way or the other: six alerts, each re-opened 20 minutes
    # after the previous one resolved.
    end = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    values = [30.0 if i % 2 == 0 else 10.0 for i in range(12)]
    metric_points(tenant, "checkout.errors", *values, end=end, every=timedelta(minutes=20))
    body = {"name": "Flappy", "type": "metric_threshold", "metric": "checkout.errors", "threshold": 25}

    result = tenant_client.post("/triggers/backtest", {**body, "autoResolve": True, "days": 1}, format="json").json()
    held = tenant_client.post("/triggers/backtest", {**body, "days": 1}, format="json").json()

    assert len(result["alerts"]) == 6 and result["flaps"] == 5 and result["firingCount"] == 6 * 20
    assert all(a["resolvedAt"] is not None for a in result["alerts"])  # the series ends low
    assert len(held["alerts"]) == 1 and held["flaps"] == 0  # without auto-resolve the first alert stays open


@pytestmark_db
def test_the_api_finds_nothing_in_a_quiet_series(tenant, tenant_client):
    end = timezone.now().replace(second=0, microsecond=0) - HOUR
    metric_points(tenant, "checkout.errors", *([3.0] * 24 * 7), end=end)
    body = {"name": "Quiet", "type": "anomaly", "metric": "checkout.errors", "threshold": 2.5, "days": 7}

    result = tenant_client.post("/triggers/backtest", body, format="json").json()

    assert (result["firingCount"], result["alerts"], result["firings"], result["flaps"]) == (0, [], [], 0)
    assert result["pointsRead"] == 24 * 7 and len(result["band"]) > 0


@pytestmark_db
def test_a_threshold_backtest_reads_only_the_latest_point_before_its_span(tenant):
    from proactive.engine.backtest import trigger_rule_backtest

    now = timezone.now().replace(second=0, microsecond=0)
    # One high point 20 days ago (inside the 30-day window), then quiet points from 2 days ago.
    metric_points(tenant, "m", 99.0, end=now - timedelta(days=20))
    metric_points(tenant, "m", 50.0, 1.0, 2.0, 3.0, end=now - timedelta(days=1), every=timedelta(hours=6))
    rule = TriggerRuleFactory.build(tenant=tenant, metric="m", threshold=10.0, window_days=30, auto_resolve=True)

    result = trigger_rule_backtest(rule=rule, days=3, now=now)

    expected_minutes, expected_alerts = _every_minute(
        threshold_rule(threshold=10.0, window_days=30),
        [(p.timestamp, p.value) for p in MetricPoint.objects.filter(tenant=tenant).order_by("timestamp")],
        now - timedelta(days=3),
        now,
    )
    assert result.points_read == 5
    assert result.firing_count == expected_minutes
    assert [(a.opened_at, a.resolved_at) for a in result.alerts] == expected_alerts
    assert result.alerts[0].opened_at == now - timedelta(days=3) + timedelta(minutes=1)  # the old 99 still counts
