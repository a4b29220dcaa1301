"""
The backtest replays the robust and seasonal anomaly methods, and each direction, as the engine
decides them: the same firings and alerts as evaluating the engine's function minute by minute on
realistic random series (daily and weekly rhythms in the tenant's zone, spikes, a level shift, gaps,
a mostly-zero count), across a clock change and for a daily metric; and what each method is for.
"""

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from proactive.engine.anomaly import MAD_NORMAL_SCALE
from proactive.engine.backtest import BacktestRule, backtest_metric_rule
from proactive.engine.conditions import evaluate_anomaly
from tests.factories import metric_points
from tests.proactive.engine.test_backtest import assert_same_as_every_minute

# Europe/Berlin leaves summer time at 2026-10-25 01:00 UTC (03:00 CEST becomes 02:00 CET).
CLOCK_CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def anomaly_rule(method, direction="both", threshold=3.0, window_days=3, **options):
    return BacktestRule(
        type="anomaly",
        metric="m",
        threshold=threshold,
        window_days=window_days,
        auto_resolve=True,
        method=method,
        direction=direction,
        **options,
    )


def rhythmic(rng, start, end, *, timezone="UTC", steps=(20, 30, 45), shift_at=None, gaps=2):
    """
    A busy metric: an afternoon peak on weekdays in the tenant's zone (half as high at weekends),
    noise rounded to 0.1 (so values repeat), a spike now and then, +25 from `shift_at` on, and
    `gaps` silent stretches of 3–10 hours.
    """
    zone = ZoneInfo(timezone)
    span = (end - start).total_seconds()
    silent = []
    for _ in range(gaps):
        begins = start + timedelta(seconds=rng.uniform(0, span))
        silent.append((begins, begins + timedelta(hours=rng.uniform(3, 10))))
    points, moment = [], start
    while moment <= end:
        local = moment.astimezone(zone)
        hour = local.hour + local.minute / 60
        peak = 40 * math.sin((hour - 7) / 12 * math.pi) if 7 <= hour <= 19 else 0.0
        value = 20 + peak * (0.5 if local.weekday() >= 5 else 1.0) + rng.gauss(0, 3)
        if rng.random() < 0.01:
            value += rng.choice([-1, 1]) * rng.uniform(30, 80)
        if shift_at is not None and moment >= shift_at:
            value += 25
        if not any(begins <= moment < ends for begins, ends in silent):
            points.append((moment, round(value, 1)))
        moment += timedelta(minutes=rng.choice(steps), seconds=rng.choice([0, 0, 17]))
    return points


def counts(rng, start, end, *, steps=(10, 20, 30)):
    """A count that is mostly 0 (its MAD is 0): now and then 1–3, rarely a burst of 10–20."""
    points, moment = [], start
    while moment <= end:
        roll = rng.random()
        value = 0 if roll < 0.8 else rng.randint(1, 3) if roll < 0.99 else rng.randint(10, 20)
        points.append((moment, float(value)))
        moment += timedelta(minutes=rng.choice(steps))
    return points


DIRECTIONS = ["both", "up", "down"]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("seed", range(2))
def test_robust_on_a_rhythmic_series_with_a_level_shift(seed, direction):
    rng = random.Random(seed)
    since = END - timedelta(days=1)
    points = rhythmic(rng, END - timedelta(days=4), END, shift_at=END - timedelta(hours=14))
    rule = anomaly_rule("robust", direction, threshold=2.5)

    result = assert_same_as_every_minute(rule, points, since, until=END)

    assert result.evaluations > 20
    assert_the_engines_scores_and_band(rule, points, result)


@pytest.mark.parametrize("direction", ["both", "up"])
@pytest.mark.parametrize("seed", range(2))
def test_robust_on_a_mostly_zero_count(seed, direction):
    rng = random.Random(seed)
    since = END - timedelta(days=1)
    points = counts(rng, END - timedelta(days=3), END)
    rule = anomaly_rule("robust", direction, window_days=2)

    result = assert_same_as_every_minute(rule, points, since, until=END)

    assert result.alert_count >= 1  # every burst, and many a 3, stand out from a history of 0s


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("seed", range(2))
def test_seasonal_in_utc(seed, direction):
    rng = random.Random(seed)
    since = END - timedelta(days=1)
    points = rhythmic(rng, END - timedelta(days=23), END, steps=(30, 45, 60), shift_at=END - timedelta(hours=10))
    rule = anomaly_rule("seasonal", direction, threshold=2.5, window_days=21)

    result = assert_same_as_every_minute(rule, points, since, until=END)

    assert result.evaluations > 20


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_seasonal_in_berlin_across_its_clock_change(direction):
    rng = random.Random(7)
    since, until = CLOCK_CHANGE - timedelta(hours=20), CLOCK_CHANGE + timedelta(hours=20)
    points = rhythmic(rng, until - timedelta(days=24), until, timezone="Europe/Berlin", steps=(30, 45, 60))
    rule = anomaly_rule("seasonal", direction, threshold=2.5, window_days=21)

    result = assert_same_as_every_minute(rule, points, since, until=until, timezone="Europe/Berlin")

    assert result.evaluations > 20
    assert_the_engines_scores_and_band(rule, points, result, timezone="Europe/Berlin")


@pytest.mark.parametrize("seed", range(2))
def test_seasonal_with_a_short_window_falls_back_to_the_hour_or_has_no_data(seed):
    # Two days of window: never three earlier points in a weekday's hour, often three in the hour of
    # any day, and after a gap sometimes not even that (no data).
    rng = random.Random(seed)
    since = END - timedelta(days=1)
    points = rhythmic(rng, END - timedelta(days=3), END, steps=(20, 40, 60), gaps=3)
    rule = anomaly_rule("seasonal", "both", threshold=2.5, window_days=2, no_data="alert")

    assert_same_as_every_minute(rule, points, since, until=END, timezone="Europe/Berlin")


@pytest.mark.parametrize("direction", ["both", "up"])
def test_seasonal_on_a_mostly_zero_count(direction):
    rng = random.Random(11)
    since = END - timedelta(days=1)
    points = counts(rng, END - timedelta(days=8), END, steps=(30, 60))
    rule = anomaly_rule("seasonal", direction, window_days=7)

    assert_same_as_every_minute(rule, points, since, until=END)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_seasonal_on_a_daily_metric_compares_weekdays(direction):
    # One point per UTC day (at midnight), Mondays busier; the running day is left out.
    rng = random.Random(5)
    first = datetime(2026, 8, 3, tzinfo=UTC)  # a Monday
    points = [
        (first + timedelta(days=d), float(round((300 if d % 7 == 0 else 100) + rng.gauss(0, 8))))
        for d in range((END - first).days + 1)
    ]
    points[-5] = (points[-5][0], 400.0)  # a Sunday like no other
    points[-3] = (points[-3][0], 20.0)  # and a Tuesday
    rule = anomaly_rule("seasonal", direction, window_days=42)

    result = assert_same_as_every_minute(rule, points, END - timedelta(days=10), until=END, daily=True)

    assert result.evaluations >= 10


def test_values_the_engine_cannot_compare_are_left_to_it():
    # An infinity, a NaN and two values whose median overflows: the engine's own function decides
    # every window that holds one.
    rng = random.Random(3)
    points = rhythmic(rng, END - timedelta(days=3), END, steps=(20, 30), gaps=0)
    for index, value in ((40, math.inf), (80, math.nan), (120, 1e308), (121, 1e308)):
        points[index] = (points[index][0], value)
    since = END - timedelta(days=2)

    for method in ("robust", "seasonal"):
        assert_same_as_every_minute(anomaly_rule(method, window_days=1), points, since, until=END)


def test_a_bogus_huge_reading_long_ago_does_not_swallow_later_deviations():
    # A count whose median is 0 (MAD 0, so the mean absolute deviation): after a reading of 1e20,
    # running sums of |x − 0| no longer change by 1, 2 or 3. The windows after it are told from a
    # constant history (by counting, not by those sums) and left to the engine's function.
    rng = random.Random(2)
    points = counts(rng, END - timedelta(days=3), END)
    points[3] = (points[3][0], 1e20)
    rule = anomaly_rule("robust", window_days=1)

    result = assert_same_as_every_minute(rule, points, END - timedelta(days=1), until=END)

    assert result.alert_count >= 1


def assert_the_engines_scores_and_band(rule, points, result, timezone="UTC"):
    """Each firing's score, and each band point (median ± threshold·spread), are the engine's at that minute."""

    def engine_at(moment):
        seen = [(ts, v) for ts, v in points if moment - timedelta(days=rule.window_days) <= ts <= moment]
        return evaluate_anomaly(
            metric="m",
            points=seen,
            threshold=rule.threshold,
            window_days=rule.window_days,
            method=rule.method,
            direction=rule.direction,
            timezone=timezone,
        )

    for firing in result.firings:
        assert firing.z_score == engine_at(firing.at).evidence["score"]
    assert len(result.band) > 300
    for band in result.band[::40]:
        evidence = engine_at(band.timestamp).evidence
        spread = evidence["spread"]
        assert (band.low, band.high) == (
            evidence["median"] - rule.threshold * spread,
            evidence["median"] + rule.threshold * spread,
        )


# --- What each method is for -------------------------------------------------------------------


def weekday_peaks(*, missing=None):
    """
    Five weeks of hourly points from Monday 2026-10-19: 100 + the week's number (100…104) at 09:00 UTC
    on weekdays, otherwise 10, 10.5 or 11 by the hour (the same every day). `missing`: a peak
    that reads 10.
    """
    first = datetime(2026, 10, 19, tzinfo=UTC)
    points = []
    for hour in range(35 * 24):
        moment = first + HOUR * hour
        peak = moment.weekday() < 5 and moment.hour == 9 and moment != missing
        points.append((moment, 100.0 + hour // (7 * 24) if peak else 10 + (moment.hour % 3) * 0.5))
    return points


@pytest.mark.parametrize(
    ("method", "direction", "alerts"),
    [
        ("zscore", "both", 4),
        ("robust", "both", 4),
        ("seasonal", "both", 1),
        ("seasonal", "down", 1),
        ("seasonal", "up", 0),
    ],
)
def test_a_weekday_rhythm_alerts_only_the_seasonal_method_to_a_missing_peak(method, direction, alerts):
    # The last week, with a 28-day window: its Monday, Tuesday, Thursday and Friday peaks (104), and
    # Wednesday's missing.
    # - zscore: the window's 20 earlier peaks among 672 hours give mean ≈ 12.7, std ≈ 15.3: each peak
    #   is z ≈ 5.9 (4 alerts, an hour each); the missing one reads 10, z ≈ −0.2.
    # - robust: median 10.5, MAD 0.5 (spread 0.74): each peak scores 126 (4 alerts); 10 scores −0.67.
    # - seasonal: a peak's season (the same weekday at 09:00) holds 100…103: median 101.5, MAD 1, so
    #   104 scores 1.69 and is expected; the missing Wednesday scores (10 − 101.5)/1.48 = −61.7 (one
    #   alert, down or both); every other hour equals its season's constant history (score 0).
    points = weekday_peaks(missing=datetime(2026, 11, 18, 9, tzinfo=UTC))
    since, until = datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)

    result = backtest_metric_rule(
        rule=anomaly_rule(method, direction, window_days=28), points=points, since=since, until=until
    )

    assert result.alert_count == alerts
    assert result.firing_count == 60 * alerts  # each fires for the hour its point is the latest
    if method == "seasonal" and alerts:
        [alert] = result.alerts
        assert alert.opened_at == datetime(2026, 11, 18, 9, tzinfo=UTC)
        assert alert.evidence["seasonWeekday"] == "Wednesday" and alert.evidence["seasonPoints"] == 4
        assert alert.evidence["score"] == pytest.approx(-91.5 * MAD_NORMAL_SCALE)


def test_one_huge_old_spike_hides_the_next_from_the_zscore_but_not_from_robust():
    # Eight days of hourly 10, 10.5, 11, …; a 1000 on the second day and a 20 ten hours before the end.
    # The 7-day window holds the 1000 throughout the last two days: mean ≈ 16.4, std ≈ 76, so the 20
    # is z ≈ 0.05 (no alert); robust: median 10.5, MAD 0.5, so it scores 9.5/0.74 = 12.8 (one alert).
    values = [10 + (i % 3) * 0.5 for i in range(8 * 24)]
    values[24], values[-10] = 1000.0, 20.0
    points = [(END - HOUR * (len(values) - 1 - i), v) for i, v in enumerate(values)]

    zscore, robust = (
        backtest_metric_rule(
            rule=anomaly_rule(method, window_days=7), points=points, since=END - timedelta(days=2), until=END
        )
        for method in ("zscore", "robust")
    )

    assert zscore.alert_count == 0
    [alert] = robust.alerts
    assert alert.opened_at == END - HOUR * 9 and alert.evidence["value"] == 20.0
    assert alert.evidence["score"] == pytest.approx(9.5 * MAD_NORMAL_SCALE / 0.5)
    assert robust.firings[0].z_score == alert.evidence["score"]


@pytest.mark.parametrize(("direction", "alerts"), [("both", 2), ("up", 1), ("down", 1)])
def test_upward_only_ignores_drops(direction, alerts):
    # Four days of hourly 10, 10.5, 11, …; a 20 (robust score +12.8) and later a 0 (−14.2).
    values = [10 + (i % 3) * 0.5 for i in range(4 * 24)]
    values[-30], values[-10] = 20.0, 0.0
    points = [(END - HOUR * (len(values) - 1 - i), v) for i, v in enumerate(values)]

    result = backtest_metric_rule(
        rule=anomaly_rule("robust", direction), points=points, since=END - timedelta(hours=36), until=END
    )

    assert result.alert_count == alerts
    kept = {"both": [20.0, 0.0], "up": [20.0], "down": [0.0]}[direction]
    assert [alert.evidence["value"] for alert in result.alerts] == kept


@pytest.mark.django_db
def test_the_api_backtests_a_seasonal_rule_in_the_tenants_zone(tenant, tenant_client):
    # 29 days of hourly 10s but a 0 three hours before the last point: against its season (the same
    # weekday and hour in Berlin, a constant 10) the 0 is an unbounded drop.
    tenant.timezone = "Europe/Berlin"
    tenant.save(update_fields=["timezone"])
    end = timezone.now().replace(minute=0, second=0, microsecond=0) - HOUR
    values = [10.0] * (29 * 24)
    values[-4] = 0.0
    metric_points(tenant, "checkout.orders", *values, end=end)
    body = {"name": "Orders", "type": "anomaly", "metric": "checkout.orders", "method": "seasonal", "windowDays": 28}

    down = tenant_client.post("/triggers/backtest", {**body, "direction": "down", "days": 1}, format="json").json()
    up = tenant_client.post("/triggers/backtest", {**body, "direction": "up", "days": 1}, format="json").json()

    [alert] = down["alerts"]
    assert alert["openedAt"] == f"{end - HOUR * 3:%Y-%m-%dT%H:%M:%SZ}"
    assert alert["evidence"]["timezone"] == "Europe/Berlin" and alert["evidence"]["constantHistory"] is True
    assert (alert["evidence"]["method"], alert["evidence"]["direction"]) == ("seasonal", "down")
    assert up["alerts"] == [] and up["firingCount"] == 0
