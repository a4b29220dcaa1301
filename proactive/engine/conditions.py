"""
Pure evaluation of trigger conditions: numbers and times in, a decision and its evidence out.
Nothing here touches the database, so every edge is tested with plain values.

Evidence is what goes into an alert's payload (JSON: no NaN or infinity).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
from croniter import croniter

from core.timeutils import iso_utc
from proactive.engine import anomaly
from proactive.engine.cron import latest_occurrence_in_zone, next_occurrence_in_zone

DEFAULT_Z_THRESHOLD = 2.5
MIN_ANOMALY_POINTS = 5
DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Evaluation:
    fired: bool
    reason: str
    evidence: dict = field(default_factory=dict)
    # False when there was not enough data to decide: a cleared alert is not auto-resolved then.
    decided: bool = True
    # True when the metric had no datapoints in the window (or fewer than the rule needs).
    no_data: bool = False


@lru_cache(maxsize=4096)
def latest_occurrence(schedule: str, now: datetime, timezone: str = "UTC") -> datetime:
    """The most recent cron occurrence at or before `now` (cron has minute resolution), read in `timezone`."""
    if timezone != "UTC":
        return latest_occurrence_in_zone(schedule, now, timezone)
    next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return croniter(schedule, next_minute).get_prev(datetime)


def next_occurrence(schedule: str, now: datetime, timezone: str = "UTC") -> datetime:
    """
    The first cron occurrence strictly after `now`, in UTC whatever zone `now` is in. The cron is read
    in `timezone` (an IANA name; `cron.py` says what happens where its clocks change).
    """
    if timezone != "UTC":
        return next_occurrence_in_zone(schedule, now.astimezone(UTC), timezone)
    return _next_occurrence_utc(schedule, now.astimezone(UTC))


@lru_cache(maxsize=4096)
def _next_occurrence_utc(schedule: str, now: datetime) -> datetime:
    # Cached by instant: a tick asks for the same few often. Only UTC instants come in, so the cache
    # never answers a UTC question with an occurrence croniter computed in another zone.
    return croniter(schedule, now).get_next(datetime)


def evaluate_schedule(*, schedule: str, due_at: datetime | None, now: datetime, timezone: str = "UTC") -> Evaluation:
    """
    `due_at` is the first occurrence the rule has not run for. Once it has passed, the rule fires
    once, for the latest occurrence so far: missed ticks give one alert, not a burst.
    """
    return evaluate_due_schedule(
        schedule=schedule, due=due_at is not None and due_at <= now, now=now, timezone=timezone
    )


def evaluate_due_schedule(*, schedule: str, due: bool, now: datetime, timezone: str = "UTC") -> Evaluation:
    """`evaluate_schedule` told only whether the first occurrence the rule has not run for has passed."""
    if not due:
        # Not `due_at`: a rule that sleeps while its alert is open is due later than its schedule.
        upcoming = next_occurrence(schedule, now, timezone)
        return Evaluation(fired=False, reason=f"Next occurrence is {_when(upcoming, timezone)}.", decided=False)
    return schedule_fired(schedule=schedule, occurrence=latest_occurrence(schedule, now, timezone), timezone=timezone)


def schedule_fired(*, schedule: str, occurrence: datetime, timezone: str = "UTC") -> Evaluation:
    """
    A schedule firing for `occurrence`. Read in a zone other than UTC, the evidence also names the
    zone and the occurrence's local time (`scheduledFor` stays UTC).
    """
    reason, evidence = _schedule_firing(schedule, occurrence, timezone)
    return Evaluation(fired=True, reason=reason, evidence=dict(evidence))


@lru_cache(maxsize=4096)
def _schedule_firing(schedule: str, occurrence: datetime, timezone: str) -> tuple[str, tuple]:
    # Cached: at the top of the hour thousands of rules share a schedule and its occurrence.
    evidence = {"schedule": schedule, "scheduledFor": iso_utc(occurrence)}
    if timezone != "UTC":
        evidence |= {"timezone": timezone, "scheduledForLocal": occurrence.astimezone(ZoneInfo(timezone)).isoformat()}
    return f"The schedule {schedule!r} occurred at {_when(occurrence, timezone)}.", tuple(evidence.items())


def _when(moment: datetime, timezone: str) -> str:
    """The instant in UTC, and in another zone also its wall-clock time there (with its date if that differs)."""
    if timezone == "UTC":
        return iso_utc(moment)
    local = moment.astimezone(ZoneInfo(timezone))
    shown = f"{local:%H:%M}" if local.date() == moment.astimezone(UTC).date() else f"{local:%Y-%m-%d %H:%M}"
    return f"{iso_utc(moment)} ({shown} {timezone})"


@dataclass(frozen=True)
class Reading:
    """What a metric_threshold rule read of a window: its latest value, or an aggregate of it."""

    value: float | None  # None: no datapoints (a count of none is 0, which is a value)
    observed_at: datetime | None  # the latest point's time
    points: int = 1


NO_READING = Reading(value=None, observed_at=None, points=0)


def reading_of_points(points: Sequence[tuple[datetime, float]]) -> Reading:
    """The latest of `points` (oldest first), the reading of a rule that compares the last value."""
    if not points:
        return NO_READING
    observed_at, value = points[-1]
    return Reading(value=value, observed_at=observed_at)


def evaluate_threshold(
    *,
    metric: str,
    threshold: float,
    points: Sequence[tuple[datetime, float]],
    comparison: str = "above",
    threshold_high: float | None = None,
) -> Evaluation:
    """The latest of `points` compared with the threshold; by default, fires when it is strictly greater."""
    return evaluate_reading(
        metric=metric,
        reading=reading_of_points(points),
        threshold=threshold,
        comparison=comparison,
        threshold_high=threshold_high,
    )


def evaluate_reading(
    *,
    metric: str,
    reading: Reading,
    threshold: float,
    comparison: str = "above",
    threshold_high: float | None = None,
    aggregate: str = "last",
    aggregate_minutes: int | None = None,
    baseline: Reading | None = None,
    compare_days: int | None = None,
) -> Evaluation:
    """
    A metric_threshold rule's condition. `above`: value > threshold (the guide's); `below`: value <
    threshold; `outside`: below threshold or above threshold_high; `inside`: within both, bounds
    included; `changeAbove` / `changeBelow`: the percent change against `baseline` (the value
    `compare_days` earlier) is above / below threshold.
    """
    what = metric if aggregate == "last" else f"the {aggregate} of {metric} over the last {aggregate_minutes} minutes"
    if reading.value is None:
        window = "in the window" if aggregate == "last" else f"in the last {aggregate_minutes} minutes"
        return Evaluation(fired=False, reason=f"No datapoints for {metric!r} {window}.", decided=False, no_data=True)
    value = reading.value
    if not math.isfinite(value):
        return Evaluation(
            fired=False, reason=f"{_capital(what)} is too large to compare (it overflows).", decided=False
        )
    evidence = {"metric": metric, "value": value, "threshold": threshold, "observedAt": iso_utc(reading.observed_at)}
    if aggregate != "last":
        evidence.update(aggregate=aggregate, aggregateMinutes=aggregate_minutes, points=reading.points)
    if comparison != "above":
        evidence["comparison"] = comparison

    if comparison in ("changeAbove", "changeBelow"):
        return _evaluate_change(what, metric, value, threshold, comparison, baseline, compare_days, evidence)
    if comparison in ("outside", "inside"):
        evidence["thresholdHigh"] = threshold_high
        inside = threshold <= value <= threshold_high
        fired = not inside if comparison == "outside" else inside
        where = f"inside {threshold:g}…{threshold_high:g}" if inside else f"outside {threshold:g}…{threshold_high:g}"
        verdict = "" if fired else f", not {comparison}"
        return Evaluation(fired=fired, reason=f"{_capital(what)} is {value:g}, {where}{verdict}.", evidence=evidence)
    fired = value > threshold if comparison == "above" else value < threshold
    relation = ("above" if fired else "not above") if comparison == "above" else ("below" if fired else "not below")
    return Evaluation(
        fired=fired, reason=f"{_capital(what)} is {value:g}, {relation} {threshold:g}.", evidence=evidence
    )


def _evaluate_change(what, metric, value, threshold, comparison, baseline, compare_days, evidence) -> Evaluation:
    earlier = f"{compare_days} day{'s' if compare_days != 1 else ''} earlier"
    if baseline is None or baseline.value is None:
        return Evaluation(
            fired=False,
            reason=f"No datapoints for {metric!r} {earlier} to compare with.",
            decided=False,
            no_data=True,
        )
    evidence.update(baseline=baseline.value, baselineAt=iso_utc(baseline.observed_at), compareDays=compare_days)
    if baseline.value == 0:
        return Evaluation(
            fired=False,
            reason=f"{_capital(what)} was 0 {earlier}: a percent change against 0 is undefined.",
            evidence=evidence,
            decided=False,
        )
    change = (value - baseline.value) / abs(baseline.value) * 100
    if not math.isfinite(change):
        return Evaluation(fired=False, reason=f"The change of {what} overflows.", evidence=evidence, decided=False)
    evidence["changePercent"] = change
    fired = change > threshold if comparison == "changeAbove" else change < threshold
    relation = ("more" if fired else "not more") if comparison == "changeAbove" else ("less" if fired else "not less")
    return Evaluation(
        fired=fired,
        reason=f"{_capital(what)} is {value:g}, {change:+.4g}% against {baseline.value:g} {earlier}: "
        f"{relation} than {threshold:+g}%.",
        evidence=evidence,
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text.startswith("the ") else text


def evaluate_anomaly(
    *,
    metric: str,
    points: Sequence[tuple[datetime, float]],
    threshold: float | None = None,
    window_days: int | None = None,
    min_points: int = MIN_ANOMALY_POINTS,
    method: str = "zscore",
    direction: str = "both",
    timezone: str = "UTC",
    daily: bool = False,
) -> Evaluation:
    """
    The latest value's score against the other points of the window (see `anomaly.py` for the
    methods); fires when it reaches ±threshold in the watched direction. A constant history and a
    different latest value is an anomaly of unbounded score (reported as null, `constantHistory`).
    """
    values = np.fromiter((value for _, value in points), dtype=float, count=len(points))
    times = None
    if method == "seasonal":
        times = np.fromiter((int(moment.timestamp()) for moment, _ in points), dtype=np.int64, count=len(points))
    return evaluate_anomaly_values(
        metric=metric,
        values=values,
        observed_at=points[-1][0] if points else None,
        threshold=threshold,
        window_days=window_days,
        min_points=min_points,
        method=method,
        direction=direction,
        times=times,
        timezone=timezone,
        daily=daily,
    )


def evaluate_anomaly_values(
    *,
    metric: str,
    values: np.ndarray,
    observed_at: datetime | None,
    threshold: float | None = None,
    window_days: int | None = None,
    min_points: int = MIN_ANOMALY_POINTS,
    method: str = "zscore",
    direction: str = "both",
    times: np.ndarray | None = None,
    timezone: str = "UTC",
    daily: bool = False,
) -> Evaluation:
    """
    `evaluate_anomaly` over the window's values as an array (oldest first), the latest observed at
    `observed_at`; `times` (Unix seconds, the seasonal method's) beside them.
    """
    threshold = DEFAULT_Z_THRESHOLD if threshold is None else threshold
    window_days = window_days or DEFAULT_WINDOW_DAYS
    if len(values) < min_points:
        return Evaluation(
            fired=False,
            reason=f"{metric} has {len(values)} point(s) in the last {window_days} days; "
            f"anomaly detection needs at least {min_points}.",
            decided=False,
            no_data=True,
        )
    latest, history = float(values[-1]), values[:-1]
    if method == "seasonal":
        found = anomaly.seasonal(latest, history, times, timezone=timezone, daily=daily)
        if found is anomaly.THIN_SEASON:
            return Evaluation(
                fired=False,
                reason=f"{metric} has fewer than {anomaly.SEASON_MIN_POINTS} earlier point(s) in the latest's "
                f"hour of day in the last {window_days} days; the seasonal method needs at least that many.",
                decided=False,
                no_data=True,
            )
    else:
        found = (anomaly.robust if method == "robust" else anomaly.zscore)(latest, history)
    if found is None:
        return Evaluation(
            fired=False,
            reason=f"{metric}'s values are too large to compare (their spread overflows).",
            decided=False,
        )
    fired = anomaly.fires(found.score, threshold, direction)
    unbounded = math.isinf(found.score)
    evidence = {"metric": metric}
    if method != "zscore":
        evidence["method"] = method
    if direction != "both":
        evidence["direction"] = direction
    evidence |= {"value": latest, **found.evidence}
    evidence[SCORE_KEY[method]] = None if unbounded else found.score
    evidence |= {
        "threshold": threshold,
        "windowDays": window_days,
        "points": len(values),
        "observedAt": iso_utc(observed_at),
    }
    if found.spread == 0:
        evidence["constantHistory"] = True
    return Evaluation(fired=fired, reason=_anomaly_reason(metric, found, evidence, fired, direction), evidence=evidence)


SCORE_KEY = {"zscore": "zScore", "robust": "score", "seasonal": "score"}
_WATCHED = {"both": "±", "up": "+", "down": "−"}


def _anomaly_reason(metric: str, found: anomaly.Score, evidence: dict, fired: bool, direction: str) -> str:
    threshold = evidence["threshold"]
    limit = f"{_WATCHED[direction]}{threshold:g}"
    verdict = "reaches" if fired else "stays within" if direction == "both" else "does not reach"
    value = f"{metric} is {evidence['value']:g}"
    shown = "unbounded (constant history)" if math.isinf(found.score) else f"{found.score:.2f}"
    if "zScore" in evidence:
        return (
            f"{value}; z-score {shown} {verdict} {limit} against {evidence['points'] - 1} earlier point(s) "
            f"(mean {found.center:g}, std {found.spread:g})."
        )
    if "seasonPoints" in evidence:
        against = f"{evidence['seasonPoints']} earlier point(s) of {anomaly.season_description(evidence)}"
    else:
        against = f"{evidence['points'] - 1} earlier point(s)"
    return (
        f"{value}; robust score {shown} {verdict} {limit} against {against} "
        f"(median {found.center:g}, MAD {evidence['mad']:g})."
    )
