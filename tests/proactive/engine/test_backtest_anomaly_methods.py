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

from proactive.engine.backtest import BacktestRule
from tests.proactive.engine.test_backtest import assert_same_as_every_minute

# Europe/Berlin leaves summer time at 2026-10-25 01:00 UTC (03:00 CEST becomes 02:00 CET).
CLOCK_CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


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
