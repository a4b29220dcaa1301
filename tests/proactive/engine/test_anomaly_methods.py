"""Anomaly methods and directions (pure): every expected number computed by hand in the comments."""

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.special import ndtri
from scipy.stats import median_abs_deviation

from proactive.engine.anomaly import MAD_NORMAL_SCALE, season_keys, sorted_median
from proactive.engine.conditions import evaluate_anomaly

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
MAD_TO_SIGMA = 1.482602218505602  # 1 / Φ⁻¹(0.75)


def series(*values, end=NOW, step=timedelta(days=1)):
    return [(end - step * (len(values) - 1 - i), float(v)) for i, v in enumerate(values)]


def strict_json(evidence):
    return json.loads(json.dumps(evidence, allow_nan=False))


@pytest.mark.parametrize("size", [1, 2, 3, 8, 31, 1000])
def test_the_sorted_median_is_numpys(size):
    rng = np.random.default_rng(size)
    values = rng.normal(1e6, 1e3, size) * rng.choice([1.0, 1e-3, 1e9], size)

    assert sorted_median(values) == float(np.median(values))
    assert math.isnan(sorted_median(np.append(values, np.nan)))


def test_the_normal_scale_and_the_mad_are_scipys():
    history = np.array([3.0, 7.5, 1.0, 9.25, 4.0, 4.0, 100.0, -2.5])
    found = evaluate_anomaly(metric="m", points=series(*history, 5.0), method="robust")

    assert 1 / MAD_NORMAL_SCALE == pytest.approx(MAD_TO_SIGMA, rel=1e-15)
    assert MAD_NORMAL_SCALE == ndtri(0.75)
    assert found.evidence["mad"] == median_abs_deviation(history)
    assert found.evidence["spread"] == median_abs_deviation(history, scale="normal")


class TestRobust:
    # The history holds one old outlier (100). Sorted: 9 10 10 10 11 12 100 → median 10;
    # deviations 1 0 0 0 1 2 90 → sorted 0 0 0 1 1 2 90 → MAD 1, σ ≈ 1.4826.
    HISTORY = (10, 11, 9, 10, 12, 10, 100)

    def test_an_old_outlier_does_not_mask_the_next(self):
        found = evaluate_anomaly(metric="m", points=series(*self.HISTORY, 30), method="robust")

        assert found.fired
        assert found.evidence["median"] == 10
        assert found.evidence["mad"] == 1
        assert found.evidence["spread"] == pytest.approx(MAD_TO_SIGMA)
        assert found.evidence["score"] == pytest.approx(20 / MAD_TO_SIGMA)  # 13.49
        assert found.evidence["method"] == "robust"
        assert "zScore" not in found.evidence and "mean" not in found.evidence
        assert "robust score 13.49 reaches ±2.5" in found.reason
        strict_json(found.evidence)

    def test_the_zscore_is_masked_by_it(self):
        # mean 162/7 ≈ 23.14, population std ≈ 31.39: z ≈ 0.22.
        found = evaluate_anomaly(metric="m", points=series(*self.HISTORY, 30))

        assert not found.fired
        assert found.evidence["zScore"] == pytest.approx(0.2185, abs=1e-3)
        assert "method" not in found.evidence and "direction" not in found.evidence  # the guide's keys only

    def test_a_value_near_the_median_is_quiet(self):
        found = evaluate_anomaly(metric="m", points=series(*self.HISTORY, 12), method="robust")

        assert not found.fired
        assert found.evidence["score"] == pytest.approx(2 / MAD_TO_SIGMA)  # 1.35

    def test_mostly_equal_points_use_the_mean_absolute_deviation(self):
        # 0 0 0 0 0 2 4: median 0, MAD 0 (five deviations are 0); mean deviation 6/7; σ ≈ 6/7·√(π/2) ≈ 1.0743.
        spread = 6 / 7 * math.sqrt(math.pi / 2)
        four = evaluate_anomaly(metric="errors", points=series(0, 0, 0, 0, 0, 2, 4, 4), method="robust")
        two = evaluate_anomaly(metric="errors", points=series(0, 0, 0, 0, 0, 2, 4, 2), method="robust")

        assert four.evidence["mad"] == 0
        assert four.evidence["spread"] == pytest.approx(spread)
        assert four.evidence["score"] == pytest.approx(4 / spread)  # 3.72: fires
        assert four.fired
        assert two.evidence["score"] == pytest.approx(2 / spread)  # 1.86: quiet
        assert not two.fired

    def test_a_constant_history_makes_any_other_value_unbounded(self):
        same = evaluate_anomaly(metric="m", points=series(5, 5, 5, 5, 5, 5), method="robust")
        other = evaluate_anomaly(metric="m", points=series(5, 5, 5, 5, 5, 6), method="robust")

        assert not same.fired and same.evidence["score"] == 0
        assert other.fired
        assert other.evidence["score"] is None and other.evidence["constantHistory"] is True
        assert "unbounded" in other.reason
        strict_json(other.evidence)

    def test_too_few_points_is_no_data(self):
        found = evaluate_anomaly(metric="m", points=series(1, 2, 3, 4), method="robust")

        assert not found.decided and found.no_data


class TestDirection:
    # 10 12 10 12 10 12: mean 11, std 1; the latest 8 is z = −3, 14 is z = +3.
    HISTORY = (10, 12, 10, 12, 10, 12)

    @pytest.mark.parametrize(
        ("latest", "direction", "fired"),
        [
            (8, "both", True),
            (8, "down", True),
            (8, "up", False),
            (14, "up", True),
            (14, "down", False),
            (14, "both", True),
            (13, "up", False),  # z = +2 < 2.5
        ],
    )
    def test_only_the_watched_direction_fires(self, latest, direction, fired):
        found = evaluate_anomaly(metric="m", points=series(*self.HISTORY, latest), direction=direction)

        assert found.fired is fired
        assert found.evidence["zScore"] == pytest.approx(latest - 11)
        assert found.evidence.get("direction") == (None if direction == "both" else direction)

    def test_an_unbounded_score_has_a_sign(self):
        drop = evaluate_anomaly(metric="m", points=series(5, 5, 5, 5, 5, 1), method="robust", direction="up")
        rise = evaluate_anomaly(metric="m", points=series(5, 5, 5, 5, 5, 9), method="robust", direction="up")

        assert not drop.fired
        assert rise.fired
        assert "does not reach +2.5" in drop.reason


def hourly(start, weeks, value_of, *, skip=()):
    """Hourly points over whole weeks from `start`, value_of(moment) each; `skip` drops some moments."""
    moments = [start + timedelta(hours=h) for h in range(weeks * 7 * 24)]
    return [(moment, float(value_of(moment))) for moment in moments if moment not in skip]


class TestSeasonal:
    # Four weeks of hourly points from Monday 2026-01-05 00:00 UTC: 10 at every hour but Mondays at
    # 09:00 UTC, which read 98, 100, 102 and 101 (median 100.5; deviations 2.5 0.5 1.5 0.5 → MAD 1).
    START = datetime(2026, 1, 5, tzinfo=UTC)

    def history(self, zone_hour=9):
        peaks = iter((98, 100, 102, 101))
        return hourly(
            self.START,
            4,
            lambda m: next(peaks) if m.weekday() == 0 and m.hour == zone_hour else 10 + (m.hour % 3) * 0.5,
        )

    def test_the_weekly_peak_is_expected(self):
        latest = (datetime(2026, 2, 2, 9, tzinfo=UTC), 100.0)  # a Monday, 09:00

        seasonal = evaluate_anomaly(metric="m", points=[*self.history(), latest], method="seasonal")
        robust = evaluate_anomaly(metric="m", points=[*self.history(), latest], method="robust")

        assert not seasonal.fired
        assert seasonal.evidence["median"] == 100.5
        assert seasonal.evidence["mad"] == 1
        assert seasonal.evidence["score"] == pytest.approx(-0.5 / MAD_TO_SIGMA)
        assert seasonal.evidence["seasonWeekday"] == "Monday"
        assert seasonal.evidence["seasonHour"] == 9
        assert seasonal.evidence["seasonPoints"] == 4
        assert seasonal.evidence["timezone"] == "UTC"
        assert "4 earlier point(s) of Mondays 09:00–10:00 UTC" in seasonal.reason
        assert robust.fired  # without the season, the weekly peak looks like an anomaly
        strict_json(seasonal.evidence)

    def test_a_missing_peak_is_an_anomaly(self):
        latest = (datetime(2026, 2, 2, 9, tzinfo=UTC), 10.0)

        found = evaluate_anomaly(metric="m", points=[*self.history(), latest], method="seasonal", direction="down")

        assert found.fired
        assert found.evidence["score"] == pytest.approx(-90.5 / MAD_TO_SIGMA)  # −61.04

    def test_seasons_are_read_in_the_tenants_zone_across_its_clock_change(self):
        # Berlin's Monday 09:00 is 08:00 UTC in winter and 07:00 UTC in summer (from 2026-03-29).
        mondays = [
            datetime(2026, 3, 9, 8),
            datetime(2026, 3, 16, 8),
            datetime(2026, 3, 23, 8),
            datetime(2026, 3, 30, 7),
        ]
        times = [int(m.replace(tzinfo=UTC).timestamp()) for m in mondays]
        weekly, hourly_keys = season_keys(np.array(times), timezone="Europe/Berlin", daily=False)

        assert set(weekly.tolist()) == {1 * 24 + 9}  # Monday (1) at 09:00
        assert set(hourly_keys.tolist()) == {9}

        points = [(m.replace(tzinfo=UTC), 100.0 + i) for i, m in enumerate(mondays[:3])]
        filler = [(datetime(2026, 3, 30, 6, tzinfo=UTC), 10.0)]  # 08:00 in Berlin: another season
        latest = (datetime(2026, 4, 6, 7, tzinfo=UTC), 101.0)  # Monday 09:00 CEST
        found = evaluate_anomaly(
            metric="m", points=[*points, *filler, latest], method="seasonal", timezone="Europe/Berlin"
        )
        assert found.evidence["seasonPoints"] == 3
        assert found.evidence["median"] == 101
        assert found.evidence["timezone"] == "Europe/Berlin"
        assert not found.fired

    def test_a_thin_season_falls_back_to_the_hour_of_any_day(self):
        # Only two earlier Mondays at 09:00, but five 09:00s on other days.
        days = [datetime(2026, 1, d, 9, tzinfo=UTC) for d in (5, 6, 7, 8, 9, 12, 13)]  # Mon..Fri, Mon, Tue
        points = [(d, 50.0 + i) for i, d in enumerate(days)]  # 50..56
        latest = (datetime(2026, 1, 19, 9, tzinfo=UTC), 53.0)  # a Monday

        found = evaluate_anomaly(metric="m", points=[*points, latest], method="seasonal")

        assert found.evidence["seasonWeekday"] is None
        assert found.evidence["seasonHour"] == 9
        assert found.evidence["seasonPoints"] == 7
        assert found.evidence["median"] == 53  # 50..56
        assert "of any day 09:00–10:00 UTC" in found.reason

    def test_no_season_at_all_is_no_data(self):
        points = series(1, 2, 3, 4, 5, 6, step=timedelta(hours=1))  # six different hours

        found = evaluate_anomaly(metric="m", points=points, method="seasonal")

        assert not found.decided and found.no_data
        assert "fewer than 3 earlier point(s) in the latest's hour of day" in found.reason

    def test_a_thin_season_is_no_data_even_beside_a_value_too_large_to_compare(self):
        points = series(1, 2, math.inf, 4, 5, 6, step=timedelta(hours=1))  # six different hours

        found = evaluate_anomaly(metric="m", points=points, method="seasonal")

        assert not found.decided and found.no_data  # was "too large to compare": no data went unnoticed

    def test_a_daily_metric_compares_weekdays(self):
        # Five weeks of days: Mondays ~1000, other days ~100; a Monday of 1000 is expected.
        start = datetime(2026, 1, 5, tzinfo=UTC)  # Monday
        points = [(start + timedelta(days=d), (1000.0 if d % 7 == 0 else 100.0) + d % 3) for d in range(35)]
        latest = (start + timedelta(days=35), 1001.0)

        found = evaluate_anomaly(metric="usage.x", points=[*points, latest], method="seasonal", daily=True)

        assert not found.fired
        assert found.evidence["seasonWeekday"] == "Monday"
        assert found.evidence["seasonHour"] is None
        assert found.evidence["seasonPoints"] == 5
        assert "timezone" not in found.evidence
        assert "of Mondays (median" in found.reason
