"""
Backtest: what a rule would have done over the tenant's own history, before anyone saves it.

The replay runs the engine's cadence — every minute for metric rules, each occurrence for schedule
rules — and the engine's decisions: the same window, the same "latest value above the threshold",
the same z-score of the latest value against the rest of the window. Minutes in which nothing the
rule reads changed (no point entered or left its window) are not evaluated one by one: the
decision of the last change holds for them, so 90 days of one-minute points take a few hundred
milliseconds. Where the fast arithmetic is too close to call (a z-score at the threshold, a
near-constant history), and for every alert it would open, the engine's own pure condition decides.

It writes nothing. Alerts follow the engine's rules: one open alert per rule, auto-resolve when
the condition is decided and false, and nobody acknowledging or resolving anything meanwhile.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from croniter import croniter
from django.utils import timezone

from proactive.engine.conditions import (
    DEFAULT_WINDOW_DAYS,
    DEFAULT_Z_THRESHOLD,
    MIN_ANOMALY_POINTS,
    Evaluation,
    evaluate_anomaly_values,
    evaluate_threshold,
    schedule_fired,
)
from proactive.engine.cron import occurrences_after, offset_changes
from proactive.metric_providers import builtin_provider_for
from proactive.metrics import Point, SeriesRequest, metric_series_many
from proactive.validators import cron_field_values

DEFAULT_BACKTEST_DAYS = 30
MAX_BACKTEST_DAYS = 90
FLAP_WINDOW = timedelta(hours=1)  # an alert re-opened this soon after it resolved is a flap
MAX_FIRINGS_LISTED = 1000
MAX_ALERTS_LISTED = 1000
MAX_SERIES_POINTS = 2000  # what a chart draws of the series (each bucket's low and high kept)
BAND_SAMPLES = 400
MINUTE = 60  # seconds
_CLOSE_CALL = 1e-6  # relative distance to the threshold (or to a constant history) decided exactly


@dataclass(frozen=True)
class BacktestRule:
    """What a backtest needs of a rule: its definition, saved or not."""

    type: str
    schedule: str = ""
    metric: str = ""
    threshold: float | None = None
    window_days: int | None = None
    auto_resolve: bool = False


@dataclass(frozen=True)
class Firing:
    """A replayed evaluation that fired, standing for `minutes` one-minute evaluations in a row."""

    at: datetime
    minutes: int
    value: float | None = None
    z_score: float | None = None


@dataclass(frozen=True)
class WouldBeAlert:
    opened_at: datetime
    resolved_at: datetime | None
    reason: str
    evidence: dict


@dataclass(frozen=True)
class BandPoint:
    timestamp: datetime
    low: float
    high: float


@dataclass
class Backtest:
    since: datetime
    until: datetime
    evaluations: int  # evaluations replayed one by one
    minutes: int  # one-minute evaluations they stand for (metric rules) or occurrences (schedules)
    points_read: int
    series: list[Point]
    band: list[BandPoint] | None
    firings: list[Firing]  # the first MAX_FIRINGS_LISTED
    firings_truncated: bool
    firing_count: int  # one-minute evaluations (or occurrences) that fired
    alerts: list[WouldBeAlert] = field(default_factory=list)  # the first MAX_ALERTS_LISTED
    alert_count: int = 0
    flaps: int = 0

    @property
    def alerts_truncated(self) -> bool:
        return self.alert_count > len(self.alerts)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def _floor_minute(seconds: np.ndarray) -> np.ndarray:
    return seconds - seconds % MINUTE


def _ceil_minute(seconds: np.ndarray) -> np.ndarray:
    return -((-seconds) // MINUTE) * MINUTE


def _downsample(times: np.ndarray, values: np.ndarray, limit: int) -> list[Point]:
    """At most `limit` points for a chart: each of limit/2 buckets keeps its lowest and highest."""
    if len(values) <= limit:
        return [Point(_moment(t), float(v)) for t, v in zip(times, values, strict=True)]
    buckets = np.array_split(np.arange(len(values)), limit // 2)
    kept = sorted({int(b[np.argmin(values[b])]) for b in buckets} | {int(b[np.argmax(values[b])]) for b in buckets})
    return [Point(_moment(times[i]), float(values[i])) for i in kept]


def downsample(points: Sequence[tuple[datetime, float]], limit: int = MAX_SERIES_POINTS) -> list[Point]:
    """A series cut down to at most `limit` points for a chart, each bucket's low and high kept."""
    if len(points) <= limit:
        return [Point(*point) for point in points]
    times = np.fromiter((_seconds(t) for t, _ in points), dtype=np.int64, count=len(points))
    values = np.fromiter((v for _, v in points), dtype=np.float64, count=len(points))
    return _downsample(times, values, limit)


# --- Metric rules ------------------------------------------------------------------------------


def backtest_metric_rule(
    *,
    rule: BacktestRule,
    points: Sequence[tuple[datetime, float]],
    since: datetime,
    until: datetime,
    completed_periods_only: bool = False,
) -> Backtest:
    """
    Replay a metric rule every minute in (since, until] over `points` (oldest first; they must
    reach `window_days` before `since`). `completed_periods_only`: a daily series whose running day
    an anomaly leaves out, as the engine does.
    """
    window = (rule.window_days or DEFAULT_WINDOW_DAYS) * 86400
    anomaly = rule.type == "anomaly"
    threshold = rule.threshold if rule.threshold is not None else DEFAULT_Z_THRESHOLD
    times = np.fromiter((_seconds(t) for t, _ in points), dtype=np.int64, count=len(points))
    values = np.fromiter((v for _, v in points), dtype=np.float64, count=len(points))
    start, end = _floor_minute(np.int64(_seconds(since))), _floor_minute(np.int64(_seconds(until)))
    day_excluded = anomaly and completed_periods_only

    # When what the rule reads can change: a point enters (its minute, or for a daily series the
    # midnight after its day) or leaves (the minute after it is older than the window).
    entries = _ceil_minute(times) if not day_excluded else (times - times % 86400) + 86400
    exits = _floor_minute(times + window) + MINUTE
    evals = np.unique(np.concatenate([[start + MINUTE], entries, exits]))
    evals = evals[(evals > start) & (evals <= end)]
    # Points the engine would read at each of those minutes: [t - window, t], for a daily series
    # without the running day.
    upper = evals if not day_excluded else evals - evals % 86400 - 1
    hi = np.searchsorted(times, upper, side="right") - 1
    lo = np.searchsorted(times, evals - window, side="left")
    count = hi - lo + 1

    if anomaly:
        decided, fired, z, means, stds = _anomaly_decisions(values, lo, hi, count, threshold)
        for i in np.flatnonzero(_close_calls(count, z, means, stds, threshold)):
            exact = _exact_anomaly(rule, values, times, lo[i], hi[i], threshold)
            decided[i], fired[i] = exact.decided, exact.fired
            exact_z = exact.evidence.get("zScore")
            z[i] = exact_z if exact_z is not None else (math.inf if exact.evidence.get("constantHistory") else np.nan)
    else:
        decided = count >= 1
        latest = values[np.clip(hi, 0, None)] if len(values) else np.zeros(len(evals))
        fired = decided & (latest > threshold)
        z = np.full(len(evals), np.nan)

    spans = np.diff(np.append(evals, end + MINUTE)) // MINUTE  # one-minute evaluations each stands for
    firings = [
        Firing(
            at=_moment(evals[i]),
            minutes=int(spans[i]),
            value=float(values[hi[i]]),
            z_score=None if anomaly and not math.isfinite(z[i]) else (float(z[i]) if anomaly else None),
        )
        for i in np.flatnonzero(fired)[:MAX_FIRINGS_LISTED]
    ]

    def exact(i: int) -> Evaluation:
        if anomaly:
            return _exact_anomaly(rule, values, times, lo[i], hi[i], threshold)
        latest = list(points[hi[i] : hi[i] + 1]) if count[i] >= 1 else []  # all a threshold reads of its window
        return evaluate_threshold(metric=rule.metric, threshold=threshold, points=latest)

    alerts, alert_count, flaps = _would_be_alerts(evals, decided, fired, rule.auto_resolve, exact)
    in_span = (times > start) & (times <= end)
    result = Backtest(
        since=_moment(start),
        until=_moment(end),
        evaluations=len(evals),
        minutes=int((end - start) // MINUTE),
        points_read=len(points),
        series=_downsample(times[in_span], values[in_span], MAX_SERIES_POINTS),
        band=_band(values, times, start, end, window, threshold, day_excluded) if anomaly else None,
        firings=firings,
        firings_truncated=int(fired.sum()) > len(firings),
        firing_count=int(spans[fired].sum()),
        alerts=alerts,
        alert_count=alert_count,
        flaps=flaps,
    )
    return result


def _anomaly_decisions(values, lo, hi, count, threshold):
    """
    z of the latest point against the rest of the window, for every evaluation at once: means and
    standard deviations from prefix sums, and an exactly constant history (min == max of the
    earlier points, from a sparse table) told apart from one that merely varies little.
    """
    decided = count >= MIN_ANOMALY_POINTS
    if not len(values):
        nothing = np.zeros(len(lo), dtype=bool)
        empty = np.full(len(lo), np.nan)
        return nothing, nothing.copy(), empty, empty.copy(), empty.copy()
    shift = float(np.median(values))  # sums of shifted values lose less to rounding
    shifted = values - shift
    sums = np.concatenate([[0.0], np.cumsum(shifted)])
    squares = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
    # Windows with too few points (none left at all: lo past the end) are undecided; clipping only
    # keeps their indexes in range.
    last = len(values) - 1
    hi_safe, lo_safe = np.clip(hi, 0, last), np.clip(lo, 0, last)
    history_end = np.maximum(hi_safe - 1, lo_safe)  # the earlier points: [lo, hi - 1]
    lowest, highest = _range_min_max(values, lo_safe, history_end)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n = np.where(count > 1, count - 1, 1)
        mean_shifted = (sums[hi_safe] - sums[lo_safe]) / n
        variance = (squares[hi_safe] - squares[lo_safe]) / n - mean_shifted**2
        constant = lowest == highest
        std = np.where(constant, 0.0, np.sqrt(np.clip(variance, 0.0, None)))
        mean = np.where(constant, lowest, mean_shifted + shift)
        latest = values[hi_safe]
        z = np.where(
            constant,
            np.where(latest == lowest, 0.0, np.copysign(np.inf, latest - lowest)),
            (latest - mean) / np.where(std > 0, std, 1.0),
        )
    decided = decided & np.isfinite(mean) & np.isfinite(std)
    fired = decided & (np.abs(z) >= threshold)
    return decided, fired, z, mean, std


def _range_min_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min and max of values[lo..hi] (inclusive) for many ranges at once: a sparse table, O(1) per range."""
    lows, highs = [values], [values]
    width = 1
    while width * 2 <= len(values):
        lows.append(np.minimum(lows[-1][:-width], lows[-1][width:]))
        highs.append(np.maximum(highs[-1][:-width], highs[-1][width:]))
        width *= 2
    length = np.maximum(hi - lo + 1, 1)
    level = np.floor(np.log2(length)).astype(np.int64)
    lowest, highest = np.empty(len(lo)), np.empty(len(lo))
    for k in np.unique(level):
        rows = level == k
        second = hi[rows] - (1 << k) + 1
        lowest[rows] = np.minimum(lows[k][lo[rows]], lows[k][second])
        highest[rows] = np.maximum(highs[k][lo[rows]], highs[k][second])
    return lowest, highest


def _close_calls(count, z, means, stds, threshold) -> np.ndarray:
    """Evaluations the prefix sums cannot decide with confidence: the engine's own function decides them."""
    with np.errstate(invalid="ignore"):
        near_threshold = np.abs(np.abs(z) - threshold) <= _CLOSE_CALL * max(1.0, threshold)
        # A history that varies, but so little that rounding could call it constant (or not).
        near_constant = (stds > 0) & (stds <= _CLOSE_CALL * np.maximum(1.0, np.abs(means)))
        # Overflowing sums, or a constant history with a different latest value (rare: checked exactly).
        unsure = ~np.isfinite(means) | ~np.isfinite(stds) | ~np.isfinite(z)
    return (count >= MIN_ANOMALY_POINTS) & (near_threshold | near_constant | unsure)


def _exact_anomaly(rule, values, times, lo, hi, threshold) -> Evaluation:
    """The engine's own anomaly condition over the window [lo, hi] (a view of the arrays, no copy)."""
    window = values[max(lo, 0) : hi + 1] if hi >= 0 else values[:0]
    return evaluate_anomaly_values(
        metric=rule.metric,
        values=window,
        observed_at=_moment(times[hi]) if hi >= 0 else None,
        threshold=threshold,
        window_days=rule.window_days,
    )


def _band(values, times, start, end, window, threshold, day_excluded) -> list[BandPoint]:
    """mean ± threshold·std of the window, sampled across the span (what an anomaly is measured against)."""
    samples = np.unique(np.linspace(start + MINUTE, end, num=BAND_SAMPLES).astype(np.int64))
    upper = samples if not day_excluded else samples - samples % 86400 - 1
    hi = np.searchsorted(times, upper, side="right") - 1
    lo = np.searchsorted(times, samples - window, side="left")
    decided, _fired, _z, means, stds = _anomaly_decisions(values, lo, hi, hi - lo + 1, threshold)
    return [
        BandPoint(_moment(t), float(m - threshold * s), float(m + threshold * s))
        for t, ok, m, s in zip(samples, decided, means, stds, strict=True)
        if ok and math.isfinite(m) and math.isfinite(s)
    ]


# --- Schedule rules ----------------------------------------------------------------------------


def schedule_occurrences(schedule: str, *, since: datetime, until: datetime, timezone: str = "UTC") -> np.ndarray:
    """
    Every occurrence in (since, until] as Unix seconds, the cron read in `timezone`: from the cron
    fields over all minutes at once, and where the zone's clocks change, from the engine's own walk.
    """
    start, end = _floor_minute(np.int64(_seconds(since))), _floor_minute(np.int64(_seconds(until)))
    try:
        fields = cron_field_values(schedule)
    except ValueError:  # a legacy non-standard schedule: croniter reads it, one occurrence at a time
        return _walked_occurrences(schedule, start, end, timezone)
    grid = np.arange(start + MINUTE, end + MINUTE, MINUTE, dtype=np.int64)
    if timezone == "UTC":
        return grid[_cron_matches(schedule, fields, grid)]
    # Between changes of the offset, local time is UTC plus a constant: the same grid, shifted.
    changes = offset_changes(timezone, since=_moment(start), until=_moment(end))
    change_at = np.array([_seconds(at) for at, _, _ in changes], dtype=np.int64)
    first_offset = _moment(start).astimezone(ZoneInfo(timezone)).utcoffset()
    offsets = np.array([_total_seconds(offset) for offset in (first_offset, *(after for _, _, after in changes))])
    matches = _cron_matches(schedule, fields, grid + offsets[np.searchsorted(change_at, grid, side="right")])
    # Around a change (the skipped or repeated time, and a minute either side) the engine's walk decides.
    walked = []
    for at, before, after in changes:
        reach = abs(_total_seconds(after - before)) + MINUTE
        low, high = max(_seconds(at) - reach, start), min(_seconds(at) + reach, end)
        matches &= (grid <= low) | (grid > high)
        walked.append(_walked_occurrences(schedule, low, high, timezone))
    return np.union1d(grid[matches], np.concatenate([np.empty(0, dtype=np.int64), *walked]))


def _total_seconds(delta: timedelta) -> int:
    return delta // timedelta(seconds=1)


def _walked_occurrences(schedule: str, start: int, end: int, timezone: str) -> np.ndarray:
    """The occurrences in (start, end] one by one: croniter in UTC, the engine's own walk in another zone."""
    if timezone == "UTC":
        found, moment = [], croniter(schedule, _moment(start))
        while (nxt := moment.get_next(datetime)) <= _moment(end):
            found.append(_seconds(nxt))
        return np.array(found, dtype=np.int64)
    found = []
    for occurrence in occurrences_after(schedule, _moment(start), timezone):
        if occurrence > _moment(end):
            break
        found.append(_seconds(occurrence))
    return np.array(found, dtype=np.int64)


def _cron_matches(schedule: str, fields, wall_clock: np.ndarray) -> np.ndarray:
    """Which of the wall-clock times (Unix seconds as if the zone were UTC) the cron fields match."""
    minutes, hours, days, months, weekdays = fields
    grid = wall_clock.astype("datetime64[s]")
    day = grid.astype("datetime64[D]")
    month = grid.astype("datetime64[M]")
    values = {
        "minute": (grid.astype("datetime64[m]") - grid.astype("datetime64[h]")).astype(int),
        "hour": (grid.astype("datetime64[h]") - day).astype(int),
        "day": (day - month).astype(int) + 1,
        "month": month.astype(int) % 12 + 1,
        "weekday": (day.astype(int) + 4) % 7,  # 1970-01-01 was a Thursday; Sunday is 0
    }
    match = np.isin(values["minute"], list(minutes)) & np.isin(values["hour"], list(hours))
    match &= np.isin(values["month"], list(months))
    day_field, weekday_field = schedule.split()[2], schedule.split()[4]
    by_day, by_weekday = np.isin(values["day"], list(days)), np.isin(values["weekday"], list(weekdays))
    both_restricted = day_field != "*" and weekday_field != "*"
    match &= (by_day | by_weekday) if both_restricted else (by_day & by_weekday)
    return match


def backtest_schedule_rule(*, rule: BacktestRule, since: datetime, until: datetime, timezone: str = "UTC") -> Backtest:
    """
    Each occurrence (the cron read in `timezone`) fires; the first opens the alert, which stays open
    (schedules do not auto-resolve).
    """
    occurrences = schedule_occurrences(rule.schedule, since=since, until=until, timezone=timezone)
    firings = [Firing(at=_moment(t), minutes=1) for t in occurrences[:MAX_FIRINGS_LISTED]]
    alerts = []
    if len(occurrences):
        first = schedule_fired(schedule=rule.schedule, occurrence=_moment(occurrences[0]), timezone=timezone)
        alerts.append(
            WouldBeAlert(
                opened_at=_moment(occurrences[0]), resolved_at=None, reason=first.reason, evidence=first.evidence
            )
        )
    start, end = _floor_minute(np.int64(_seconds(since))), _floor_minute(np.int64(_seconds(until)))
    return Backtest(
        since=_moment(start),
        until=_moment(end),
        evaluations=len(occurrences),
        minutes=len(occurrences),
        points_read=0,
        series=[],
        band=None,
        firings=firings,
        firings_truncated=len(occurrences) > len(firings),
        firing_count=len(occurrences),
        alerts=alerts,
        alert_count=len(alerts),
    )


# --- Alerts and flaps --------------------------------------------------------------------------


def _would_be_alerts(evals, decided, fired, auto_resolve, exact) -> tuple[list[WouldBeAlert], int, int]:
    """
    The one-open-alert rule over the replayed decisions: the first MAX_ALERTS_LISTED alerts
    (`exact(i)` explains evaluation i), how many there were, and how many of them flapped (opened
    within FLAP_WINDOW of the previous one resolving).
    """
    alerts: list[WouldBeAlert] = []
    count = flaps = 0
    opened, explanation, last_resolved = None, None, None
    flap_window = FLAP_WINDOW.total_seconds()
    for i in range(len(evals)):
        if opened is None and fired[i]:
            if count < MAX_ALERTS_LISTED:
                explanation = exact(i)
                if not explanation.fired:  # the engine's own function decides (close calls are decided already)
                    continue
            opened = evals[i]
            count += 1
            if last_resolved is not None and opened - last_resolved <= flap_window:
                flaps += 1
        elif opened is not None and auto_resolve and decided[i] and not fired[i]:
            if len(alerts) < MAX_ALERTS_LISTED:
                alerts.append(_alert(opened, explanation, evals[i]))
            opened, last_resolved = None, evals[i]
    if opened is not None and len(alerts) < MAX_ALERTS_LISTED:
        alerts.append(_alert(opened, explanation, None))
    return alerts, count, flaps


def _alert(opened_at, explanation: Evaluation, resolved_at) -> WouldBeAlert:
    return WouldBeAlert(
        opened_at=_moment(opened_at),
        resolved_at=None if resolved_at is None else _moment(resolved_at),
        reason=explanation.reason,
        evidence=explanation.evidence,
    )


# --- Reading the history -----------------------------------------------------------------------


def trigger_rule_backtest(*, rule, days: int = DEFAULT_BACKTEST_DAYS, now: datetime | None = None) -> Backtest:
    """
    Backtest a rule — a TriggerRule, saved or only built and validated — over its tenant's last
    `days` days. Reads the metric; writes nothing.
    """
    now = now or timezone.now()
    schedule_timezone = rule.schedule_timezone  # before `rule` becomes a BacktestRule
    tenant_id = rule.tenant_id
    rule = BacktestRule(
        type=rule.type,
        schedule=rule.schedule,
        metric=rule.metric,
        threshold=rule.threshold,
        window_days=rule.window_days,
        auto_resolve=rule.auto_resolve,
    )
    since = now - timedelta(days=days)
    if rule.type == "schedule":
        return backtest_schedule_rule(rule=rule, since=since, until=now, timezone=schedule_timezone)
    window = timedelta(days=rule.window_days or DEFAULT_WINDOW_DAYS)
    if rule.type == "anomaly":
        request = SeriesRequest(tenant_id=tenant_id, metric=rule.metric, since=since - window, until=now)
        series = metric_series_many(requests=[request])[request]
    else:
        # A threshold reads only the latest point of its window: of the window before the span, only
        # the last point can matter.
        before = SeriesRequest(
            tenant_id=tenant_id,
            metric=rule.metric,
            since=since - window,
            until=since - timedelta(microseconds=1),
            latest_only=True,
        )
        span = SeriesRequest(tenant_id=tenant_id, metric=rule.metric, since=since, until=now)
        read = metric_series_many(requests=[before, span])
        series = read[before] + read[span]
    provider = builtin_provider_for(rule.metric)
    return backtest_metric_rule(
        rule=rule,
        points=series,
        since=since,
        until=now,
        completed_periods_only=bool(provider is not None and getattr(provider, "daily", False)),
    )
