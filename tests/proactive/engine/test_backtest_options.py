"""
What each option does to the number of alerts, on the series it is for (hand-computed): a flapping
series for pending periods, hysteresis and aggregates; a series with gaps for no data; a weekly
series for changes; a range for outside.
"""

from datetime import UTC, datetime, timedelta

from proactive.engine.backtest import BacktestRule, backtest_metric_rule

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rule(**options):
    return BacktestRule(type="metric_threshold", metric="m", window_days=1, auto_resolve=True, **options)


def replay(points, **options):
    return backtest_metric_rule(rule=rule(**options), points=points, since=NOW - timedelta(hours=6), until=NOW)


def flapping():
    """Seven hours (the replay's six, and one before), a point a minute: 30 for 2 minutes, then 10 for 3."""
    return [(NOW - MINUTE * (419 - i), 30.0 if i % 5 < 2 else 10.0) for i in range(420)]


def test_a_flapping_series_opens_an_alert_every_five_minutes_by_default():
    result = replay(flapping(), threshold=25)

    assert (result.alert_count, result.flaps, result.firing_count) == (72, 71, 144)


def test_a_pending_period_longer_than_the_bursts_opens_none():
    two = replay(flapping(), threshold=25, for_evaluations=2)
    three = replay(flapping(), threshold=25, for_evaluations=3)

    assert (two.alert_count, two.firing_count) == (72, 72)  # the second minute of each burst fires
    assert (three.alert_count, three.firing_count) == (0, 0)


def test_hysteresis_keeps_one_alert_open_through_the_dips():
    result = replay(flapping(), threshold=25, clear_evaluations=4)  # dips last 3 minutes

    assert (result.alert_count, result.flaps) == (1, 0)
    assert result.alerts[0].resolved_at is None


def test_an_average_over_ten_minutes_smooths_the_flapping_away():
    result = replay(flapping(), threshold=25, aggregate="avg", aggregate_minutes=10)

    # Every 10-minute window holds 4 breaching and 6-7 quiet points: the average stays near 18.
    assert (result.alert_count, result.firing_count) == (0, 0)


def test_no_data_alert_turns_gaps_into_alerts_and_keep_holds_the_open_one():
    # A point a minute, quiet, with two silent hours; the rule reads the max of the last 30 minutes.
    points = [(NOW - MINUTE * (359 - i), 10.0) for i in range(360) if not (60 <= i < 120 or 200 <= i < 260)]
    points[0] = (points[0][0], 99.0)  # one breach, at the very start

    ok = replay(points, threshold=25, aggregate="max", aggregate_minutes=30)
    alert = replay(points, threshold=25, aggregate="max", aggregate_minutes=30, no_data="alert")
    keep = replay(points, threshold=25, aggregate="max", aggregate_minutes=30, no_data="keep")

    assert ok.alert_count == 1 and ok.alerts[0].resolved_at is not None  # the 99 ages out after 30 minutes
    assert alert.alert_count == 3  # the 99, then each silence once its last point is 30 minutes old
    assert [a.evidence.get("noData") for a in alert.alerts] == [None, True, True]
    assert keep.alert_count == 1


def test_a_change_against_the_day_before_fires_only_on_the_jump():
    day_before = [(NOW - timedelta(days=1, minutes=i), 100.0) for i in range(24 * 60, -1, -10)]
    today = [(NOW - MINUTE * i, 100.0 if i > 60 else 180.0) for i in range(6 * 60, -1, -10)]

    result = replay(sorted(day_before + today), comparison="changeAbove", threshold=50, compare_days=1)

    assert result.alert_count == 1 and result.alerts[0].resolved_at is None
    assert result.alerts[0].opened_at == NOW - timedelta(minutes=60)
    assert result.alerts[0].evidence["changePercent"] == 80.0


def test_outside_a_range_fires_on_both_sides():
    points = [
        (NOW - MINUTE * (359 - i), value)
        for i, value in enumerate([50.0] * 100 + [5.0] * 30 + [50.0] * 100 + [95.0] * 30 + [50.0] * 100)
    ]

    above = replay(points, threshold=90)
    outside = replay(points, threshold=10, threshold_high=90, comparison="outside")

    assert (above.alert_count, outside.alert_count) == (1, 2)
