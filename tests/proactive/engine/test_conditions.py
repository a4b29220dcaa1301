"""The pure conditions: no database, plain numbers and times."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from proactive.engine.conditions import evaluate_anomaly, evaluate_schedule, evaluate_threshold, latest_occurrence

NOW = datetime(2026, 11, 26, 13, 30, 20, tzinfo=UTC)


def series(*values, end=NOW, step=timedelta(days=1)):
    return [(end - step * (len(values) - 1 - i), float(v)) for i, v in enumerate(values)]


def as_json(evidence):
    return json.dumps(evidence, allow_nan=False)  # payloads must be strict JSON


class TestSchedule:
    def test_not_yet_due_does_not_fire(self):
        result = evaluate_schedule(schedule="0 14 * * *", due_at=NOW.replace(hour=14, minute=0, second=0), now=NOW)

        assert not result.fired
        assert result.reason == "Next occurrence is 2026-11-26T14:00:00Z."

    def test_due_fires_for_the_occurrence(self):
        due = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

        result = evaluate_schedule(schedule="0 13 * * *", due_at=due, now=NOW)

        assert result.fired
        assert result.evidence == {"schedule": "0 13 * * *", "scheduledFor": "2026-11-26T13:00:00Z"}
        as_json(result.evidence)

    def test_rules_sharing_a_schedule_get_their_own_evidence(self):
        """The firing's text is cached per schedule, occurrence and zone; each rule's evidence is its own dict."""
        due = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
        first = evaluate_schedule(schedule="0 * * * *", due_at=due, now=NOW, timezone="Asia/Kolkata")
        first.evidence["breachingEvaluations"] = 2  # what a caller may add to its own copy

        second = evaluate_schedule(schedule="0 * * * *", due_at=due, now=NOW, timezone="Asia/Kolkata")

        assert second.evidence == {
            "schedule": "0 * * * *",
            "scheduledFor": "2026-11-26T13:30:00Z",  # :00 in Kolkata is :30 in UTC
            "timezone": "Asia/Kolkata",
            "scheduledForLocal": "2026-11-26T19:00:00+05:30",
        }
        assert (
            second.reason
            == first.reason
            == ("The schedule '0 * * * *' occurred at 2026-11-26T13:30:00Z (19:00 Asia/Kolkata).")
        )
        assert evaluate_schedule(schedule="0 * * * *", due_at=due, now=NOW).evidence == {
            "schedule": "0 * * * *",
            "scheduledFor": "2026-11-26T13:00:00Z",
        }

    def test_a_long_gap_fires_the_latest_missed_occurrence_once(self):
        missed_since = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # 09:00..13:00: five hourly occurrences

        result = evaluate_schedule(schedule="0 * * * *", due_at=missed_since, now=NOW)

        assert result.fired
        assert result.evidence["scheduledFor"] == "2026-11-26T13:00:00Z"

    def test_exactly_at_the_occurrence(self):
        at = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # a Monday

        result = evaluate_schedule(schedule="0 13 * * 1", due_at=at, now=at)

        assert result.fired and result.evidence["scheduledFor"] == "2026-11-23T13:00:00Z"

    def test_latest_occurrence_never_lies_in_the_future(self):
        just_before = datetime(2026, 11, 26, 12, 59, 59, 900000, tzinfo=UTC)

        assert latest_occurrence("0 13 * * *", just_before) == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)

    def test_without_a_due_time_it_waits(self):
        assert not evaluate_schedule(schedule="* * * * *", due_at=None, now=NOW).fired


class TestThreshold:
    def test_greater_than_threshold_fires_with_evidence(self):
        result = evaluate_threshold(metric="m", threshold=10, points=series(3, 11.5))

        assert result.fired
        assert result.evidence == {"metric": "m", "value": 11.5, "threshold": 10, "observedAt": "2026-11-26T13:30:20Z"}
        assert result.reason == "m is 11.5, above 10."

    def test_exactly_at_threshold_does_not_fire(self):
        result = evaluate_threshold(metric="m", threshold=10, points=series(50, 10))

        assert not result.fired and result.decided
        assert result.reason == "m is 10, not above 10."

    def test_only_the_latest_value_counts(self):
        assert not evaluate_threshold(metric="m", threshold=10, points=series(99, 1)).fired

    def test_negative_thresholds(self):
        assert evaluate_threshold(metric="m", threshold=-5, points=series(-4)).fired
        assert not evaluate_threshold(metric="m", threshold=-5, points=series(-6)).fired

    def test_no_data_does_not_fire_and_decides_nothing(self):
        result = evaluate_threshold(metric="m", threshold=10, points=[])

        assert (result.fired, result.decided) == (False, False)
        assert result.reason == "No datapoints for 'm' in the window."


class TestAnomaly:
    def test_four_points_are_not_enough(self):
        result = evaluate_anomaly(metric="m", points=series(1, 2, 1, 100), window_days=14)

        assert (result.fired, result.decided) == (False, False)
        assert result.reason == "m has 4 point(s) in the last 14 days; anomaly detection needs at least 5."

    def test_five_points_with_a_spike_fire_with_full_evidence(self):
        result = evaluate_anomaly(metric="m", points=series(10, 12, 10, 12, 30), window_days=14)

        assert result.fired
        evidence = result.evidence
        assert (evidence["value"], evidence["mean"], evidence["std"]) == (30.0, 11.0, 1.0)
        assert evidence["zScore"] == pytest.approx(19.0)
        assert (evidence["threshold"], evidence["windowDays"], evidence["points"]) == (2.5, 14, 5)
        assert evidence["observedAt"] == "2026-11-26T13:30:20Z"
        as_json(evidence)

    def test_a_drop_is_an_anomaly_too(self):
        result = evaluate_anomaly(metric="m", points=series(10, 12, 10, 12, -8))

        assert result.fired and result.evidence["zScore"] == pytest.approx(-19.0)

    def test_normal_value_does_not_fire(self):
        result = evaluate_anomaly(metric="m", points=series(10, 12, 10, 12, 12))

        assert not result.fired and result.decided
        assert result.evidence["zScore"] == pytest.approx(1.0)

    def test_exactly_at_the_threshold_fires(self):
        # history mean 11, std 1: a latest value of 13.5 is z = 2.5 exactly.
        result = evaluate_anomaly(metric="m", points=series(10, 12, 10, 12, 13.5))

        assert result.evidence["zScore"] == 2.5 and result.fired

    def test_per_rule_threshold_override(self):
        points = series(10, 12, 10, 12, 14)  # z = 3

        assert evaluate_anomaly(metric="m", points=points, threshold=2.5).fired
        assert not evaluate_anomaly(metric="m", points=points, threshold=3.5).fired

    def test_constant_history_and_the_same_value_is_normal(self):
        result = evaluate_anomaly(metric="m", points=series(7, 7, 7, 7, 7))

        assert not result.fired
        assert (result.evidence["std"], result.evidence["zScore"]) == (0.0, 0.0)

    def test_constant_history_and_a_different_value_is_an_anomaly(self):
        result = evaluate_anomaly(metric="m", points=series(7, 7, 7, 7, 7.5))

        assert result.fired
        assert result.evidence["zScore"] is None and result.evidence["constantHistory"] is True
        assert "unbounded" in result.reason
        as_json(result.evidence)

    def test_default_window_is_reported(self):
        assert evaluate_anomaly(metric="m", points=series(1, 2, 3, 4, 5)).evidence["windowDays"] == 30

    def test_float_noise_in_a_constant_history_is_not_a_spread(self):
        points = series(0.1 + 0.2, 0.3, 0.1 + 0.2, 0.3, 0.3)

        result = evaluate_anomaly(metric="m", points=points)

        assert not result.fired and not math.isinf(result.evidence["zScore"] or 0)


def test_next_occurrence_is_the_utc_one_whatever_zone_now_is_in():
    from datetime import timezone as tz

    from proactive.engine.conditions import next_occurrence

    utc_moment = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    elsewhere = utc_moment.astimezone(tz(timedelta(hours=-5)))

    # Asked from another zone first: the cache must not hand that zone's reading to a UTC caller.
    assert next_occurrence("0 9 * * *", elsewhere) == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert next_occurrence("0 9 * * *", utc_moment) == datetime(2026, 11, 27, 9, tzinfo=UTC)
