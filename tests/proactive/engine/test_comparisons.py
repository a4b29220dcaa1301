"""metric_threshold comparisons and aggregates: hand-computed verdicts, reasons and evidence (pure)."""

from datetime import UTC, datetime

import pytest

from proactive.engine.conditions import NO_READING, Reading, evaluate_reading, evaluate_threshold

AT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 19, 14, 0, tzinfo=UTC)


def read(value, points=1):
    return Reading(value=value, observed_at=AT, points=points)


@pytest.mark.parametrize(
    ("comparison", "value", "fired"),
    [
        ("above", 25.0, False),  # strictly greater, as the guide says
        ("above", 25.5, True),
        ("below", 25.0, False),
        ("below", 24.9, True),
    ],
)
def test_above_and_below_are_strict(comparison, value, fired):
    evaluation = evaluate_reading(metric="m", reading=read(value), threshold=25, comparison=comparison)

    assert evaluation.fired is fired and evaluation.decided


@pytest.mark.parametrize(
    ("comparison", "value", "fired", "reason"),
    [
        ("outside", 9.99, True, "m is 9.99, outside 10…20."),
        ("outside", 10.0, False, "m is 10, inside 10…20, not outside."),
        ("outside", 20.0, False, "m is 20, inside 10…20, not outside."),
        ("outside", 20.01, True, "m is 20.01, outside 10…20."),
        ("inside", 10.0, True, "m is 10, inside 10…20."),
        ("inside", 20.01, False, "m is 20.01, outside 10…20, not inside."),
    ],
)
def test_ranges_include_their_bounds_in_inside(comparison, value, fired, reason):
    evaluation = evaluate_reading(
        metric="m", reading=read(value), threshold=10, threshold_high=20, comparison=comparison
    )

    assert (evaluation.fired, evaluation.reason) == (fired, reason)
    assert evaluation.evidence["thresholdHigh"] == 20 and evaluation.evidence["comparison"] == comparison


def test_the_guides_rule_keeps_its_exact_evidence():
    evaluation = evaluate_threshold(metric="m", threshold=25, points=[(AT, 30.0)])

    assert evaluation.evidence == {"metric": "m", "value": 30.0, "threshold": 25, "observedAt": "2026-11-26T14:00:00Z"}
    assert evaluation.reason == "m is 30, above 25."


@pytest.mark.parametrize(
    ("comparison", "value", "baseline", "threshold", "fired", "change"),
    [
        ("changeAbove", 130.0, 100.0, 25, True, 30.0),  # +30% > +25%
        ("changeAbove", 125.0, 100.0, 25, False, 25.0),  # strictly more
        ("changeBelow", 70.0, 100.0, -20, True, -30.0),  # −30% < −20%
        ("changeBelow", 90.0, 100.0, -20, False, -10.0),
        ("changeAbove", -50.0, -100.0, 25, True, 50.0),  # against |baseline|: −100 → −50 is +50%
    ],
)
def test_percent_change_against_the_value_days_earlier(comparison, value, baseline, threshold, fired, change):
    evaluation = evaluate_reading(
        metric="signups",
        reading=read(value),
        threshold=threshold,
        comparison=comparison,
        baseline=Reading(value=baseline, observed_at=EARLIER),
        compare_days=7,
    )

    assert evaluation.fired is fired
    assert evaluation.evidence["changePercent"] == pytest.approx(change)
    assert (evaluation.evidence["baseline"], evaluation.evidence["baselineAt"], evaluation.evidence["compareDays"]) == (
        baseline,
        "2026-11-19T14:00:00Z",
        7,
    )


def test_a_change_against_zero_or_nothing_is_undecided():
    against_zero = evaluate_reading(
        metric="m", reading=read(5.0), threshold=10, comparison="changeAbove", baseline=read(0.0), compare_days=1
    )
    against_nothing = evaluate_reading(
        metric="m", reading=read(5.0), threshold=10, comparison="changeAbove", baseline=NO_READING, compare_days=1
    )

    assert (against_zero.decided, against_zero.no_data) == (False, False)
    assert "a percent change against 0 is undefined" in against_zero.reason
    assert (against_nothing.decided, against_nothing.no_data) == (False, True)
    assert against_nothing.reason == "No datapoints for 'm' 1 day earlier to compare with."


def test_an_aggregate_says_what_it_reduced():
    evaluation = evaluate_reading(
        metric="api.latency", reading=read(412.5, points=15), threshold=300, aggregate="avg", aggregate_minutes=15
    )

    assert evaluation.fired
    assert evaluation.reason == "The avg of api.latency over the last 15 minutes is 412.5, above 300."
    assert evaluation.evidence == {
        "metric": "api.latency",
        "value": 412.5,
        "threshold": 300,
        "observedAt": "2026-11-26T14:00:00Z",
        "aggregate": "avg",
        "aggregateMinutes": 15,
        "points": 15,
    }


def test_no_points_is_no_data_but_a_count_of_none_is_a_value():
    nothing = evaluate_reading(metric="m", reading=NO_READING, threshold=1, aggregate="sum", aggregate_minutes=5)
    zero_count = evaluate_reading(
        metric="m",
        reading=Reading(value=0.0, observed_at=AT, points=0),
        threshold=1,
        comparison="below",
        aggregate="count",
        aggregate_minutes=5,
    )

    assert (nothing.no_data, nothing.decided, nothing.reason) == (
        True,
        False,
        "No datapoints for 'm' in the last 5 minutes.",
    )
    assert zero_count.fired and zero_count.reason == "The count of m over the last 5 minutes is 0, below 1."
