"""
Backtest: what a rule would have done over the tenant's own history, before anyone saves it.

The replay runs the engine's cadence — every minute for metric rules, each occurrence for schedule
rules — and the engine's decisions: the same window, the same "latest value above the threshold",
the same anomaly score of the latest value against the rest of the window (or its season), in the
direction watched. Minutes in which nothing the rule reads changed (no point entered or left its
window) are not evaluated one by one: the decision of the last change holds for them, so 90 days
of one-minute points are decided in a few hundred milliseconds (each would-be alert then costs one
call of the engine's function to explain it). The z-score comes from prefix sums; the
robust and seasonal methods' medians and MADs are order statistics of slices of the series, all
answered at once, so they are the engine's own numbers. Where the fast arithmetic is too close to
call (a score at the threshold, a near-constant history, a mean absolute deviation), and for every
alert it would open, the engine's own pure condition decides.

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
from django.utils import timezone as django_timezone

from proactive.engine.anomaly import MAD_NORMAL_SCALE, MEAN_AD_NORMAL_FACTOR, SEASON_MIN_POINTS, fires, season_keys
from proactive.engine.conditions import (
    DEFAULT_WINDOW_DAYS,
    DEFAULT_Z_THRESHOLD,
    MIN_ANOMALY_POINTS,
    NO_READING,
    SCORE_KEY,
    Evaluation,
    Reading,
    evaluate_anomaly_values,
    evaluate_reading,
    schedule_fired,
)
from proactive.engine.cron import occurrences_after, offset_changes
from proactive.engine.policy import Streaks, apply_policy
from proactive.metric_providers import is_daily_metric
from proactive.metrics import Point, SeriesColumns, SeriesRequest, metric_series_columns, reduce_points
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
    """What a backtest needs of a rule: its definition, saved or not (the defaults are the guide's)."""

    type: str
    schedule: str = ""
    metric: str = ""
    threshold: float | None = None
    window_days: int | None = None
    auto_resolve: bool = False
    comparison: str = "above"
    threshold_high: float | None = None
    compare_days: int | None = None
    aggregate: str = "last"
    aggregate_minutes: int | None = None
    for_evaluations: int = 1
    clear_evaluations: int = 1
    no_data: str = "ok"
    method: str = "zscore"
    direction: str = "both"

    @classmethod
    def of(cls, rule) -> "BacktestRule":
        """A TriggerRule's definition; its empty options read as their defaults."""
        defaults = cls(type=rule.type)
        fields = {
            name: getattr(rule, name)
            for name in cls.__dataclass_fields__
            if getattr(rule, name, None) not in (None, "") or name in ("type", "auto_resolve")
        }
        return cls(**{**{name: getattr(defaults, name) for name in cls.__dataclass_fields__}, **fields})

    @property
    def compares_change(self) -> bool:
        return self.comparison in ("changeAbove", "changeBelow")


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
    points: Sequence[tuple[datetime, float]] | SeriesColumns,
    since: datetime,
    until: datetime,
    completed_periods_only: bool = False,
    timezone: str = "UTC",
) -> Backtest:
    """
    Replay a metric rule every minute in (since, until] over `points` (oldest first; they must
    reach back as far as the rule reads before `since`: its window, and a change's compareDays).
    `completed_periods_only`: a daily series (a built-in daily metric) whose running day an anomaly
    leaves out and whose seasons are weekdays, as the engine does. `timezone`: the tenant's, where
    the seasonal method reads hours and weekdays.
    """
    anomaly = rule.type == "anomaly"
    threshold = rule.threshold if rule.threshold is not None else DEFAULT_Z_THRESHOLD
    columns = points if isinstance(points, SeriesColumns) else SeriesColumns.of(points)
    times, values = columns.micros // 1_000_000, columns.values
    start, end = _floor_minute(np.int64(_seconds(since))), _floor_minute(np.int64(_seconds(until)))
    day_excluded = anomaly and completed_periods_only
    # What one evaluation reads: the window (an anomaly, a latest value) or the aggregate's minutes,
    # and for a change the same again compare_days earlier.
    window = (rule.window_days or DEFAULT_WINDOW_DAYS) * 86400
    reads = window if anomaly or rule.aggregate == "last" else rule.aggregate_minutes * MINUTE
    shift = rule.compare_days * 86400 if rule.compares_change else None

    # When what the rule reads can change: a point enters (its minute, or for a daily series the
    # midnight after its day) or leaves (the minute after it is older than what is read).
    entries = _ceil_minute(times) if not day_excluded else (times - times % 86400) + 86400
    changes = [[start + MINUTE], entries, _floor_minute(times + reads) + MINUTE]
    if shift is not None:
        changes += [_ceil_minute(times + shift), _floor_minute(times + shift + reads) + MINUTE]
    evals = np.unique(np.concatenate(changes))
    evals = evals[(evals > start) & (evals <= end)]
    # Points the engine would read at each of those minutes: [t - reads, t], for a daily series
    # without the running day.
    upper = evals if not day_excluded else evals - evals % 86400 - 1
    hi = np.searchsorted(times, upper, side="right") - 1
    lo = np.searchsorted(times, evals - reads, side="left")
    count = hi - lo + 1

    if anomaly:
        zone = timezone if rule.method == "seasonal" else "UTC"
        daily = rule.method == "seasonal" and completed_periods_only

        def exact(i: int) -> Evaluation:
            return _exact_anomaly(rule, values, times, lo[i], hi[i], threshold, zone, daily)

        robust = None
        if rule.method in ("robust", "seasonal"):
            robust = _RobustScores(values, times, seasonal=rule.method == "seasonal", timezone=zone, daily=daily)
            decided, fired, no_data, z, _center, _spread, close = robust.decide(
                lo, hi, count, threshold, rule.direction
            )
        else:
            decided, fired, z, means, stds = _anomaly_decisions(values, lo, hi, count, threshold, rule.direction)
            no_data = count < MIN_ANOMALY_POINTS
            close = _close_calls(count, z, means, stds, threshold)
        for i in np.flatnonzero(close):
            verdict = exact(i)
            decided[i], fired[i], no_data[i] = verdict.decided, verdict.fired, verdict.no_data
            score = verdict.evidence.get(SCORE_KEY[rule.method])
            z[i] = score if score is not None else (math.inf if verdict.evidence.get("constantHistory") else np.nan)
        shown = np.where(count >= 1, values[np.clip(hi, 0, max(len(values) - 1, 0))], np.nan) if len(values) else z

    else:
        prefix = np.concatenate([[0.0], np.cumsum(values)])
        current = _aggregates(rule.aggregate, values, prefix, lo, hi)
        baseline = b_lo = b_hi = None
        if shift is not None:
            b_hi = np.searchsorted(times, evals - shift, side="right") - 1
            b_lo = np.searchsorted(times, evals - shift - reads, side="left")
            baseline = _aggregates(rule.aggregate, values, prefix, b_lo, b_hi)
        decided, fired, no_data, shown, close = _compare(rule, threshold, current, baseline)
        z = np.full(len(evals), np.nan)

        def exact(i: int) -> Evaluation:
            """The engine's own condition, on readings computed as exactly as the database would."""
            return evaluate_reading(
                metric=rule.metric,
                reading=_reading(rule.aggregate, columns, lo[i], hi[i], evals[i]),
                threshold=threshold,
                comparison=rule.comparison,
                threshold_high=rule.threshold_high,
                aggregate=rule.aggregate,
                aggregate_minutes=rule.aggregate_minutes,
                baseline=_reading(rule.aggregate, columns, b_lo[i], b_hi[i], evals[i] - shift)
                if shift is not None
                else None,
                compare_days=rule.compare_days,
            )

        for i in np.flatnonzero(close):
            verdict = exact(i)
            decided[i], fired[i], no_data[i] = verdict.decided, verdict.fired, verdict.no_data

    spans = np.diff(np.append(evals, end + MINUTE)) // MINUTE  # one-minute evaluations each stands for
    state = np.where(no_data, _NO_DATA, np.where(~decided, _UNDECIDED, np.where(fired, _BREACH, _CLEAR)))
    replay = _replay_policy(rule, evals, spans, state, exact, shown, z if anomaly else None)
    in_span = (times > start) & (times <= end)
    return Backtest(
        since=_moment(start),
        until=_moment(end),
        evaluations=len(evals),
        minutes=int((end - start) // MINUTE),
        points_read=len(columns),
        series=_downsample(times[in_span], values[in_span], MAX_SERIES_POINTS),
        band=_band(values, times, start, end, window, threshold, day_excluded, robust) if anomaly else None,
        firings=replay.firings,
        firings_truncated=replay.firing_spans > len(replay.firings),
        firing_count=replay.firing_count,
        alerts=replay.alerts,
        alert_count=replay.alert_count,
        flaps=replay.flaps,
    )


def _aggregates(aggregate: str, values: np.ndarray, prefix: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """What a metric_threshold rule reads of each window [lo, hi]: NaN where there is nothing (but count: 0)."""
    count = np.maximum(hi - lo + 1, 0)
    if aggregate == "count":
        return count.astype(np.float64)
    some = count >= 1
    found = np.full(len(lo), np.nan)
    if not len(values) or not some.any():
        return found
    lo_safe, hi_safe = np.clip(lo, 0, len(values) - 1), np.clip(hi, 0, len(values) - 1)
    if aggregate == "last":
        found[some] = values[hi_safe[some]]
    elif aggregate in ("sum", "avg"):
        total = prefix[hi_safe + 1] - prefix[lo_safe]
        found[some] = (total / np.maximum(count, 1) if aggregate == "avg" else total)[some]
    else:
        lowest, highest = _range_min_max(values, lo_safe, np.maximum(hi_safe, lo_safe))
        found[some] = (lowest if aggregate == "min" else highest)[some]
    return found


def _compare(rule: BacktestRule, threshold: float, current: np.ndarray, baseline: np.ndarray | None):
    """evaluate_reading's verdicts for every evaluation at once; `close` marks those it decides itself."""
    low, high = threshold, rule.threshold_high
    # Sums and averages are rounded differently here (prefix sums) than in the database: near the
    # threshold, the engine's function decides on exactly computed values.
    tolerance = 1e-9 if rule.aggregate in ("sum", "avg") or baseline is not None else 0.0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        no_data = np.isnan(current) if baseline is None else np.isnan(current) | np.isnan(baseline)
        if baseline is not None:
            compared = (current - baseline) / np.abs(baseline) * 100
            decided = ~no_data & (baseline != 0) & np.isfinite(compared)
        else:
            compared = current
            decided = ~no_data & np.isfinite(current)
        if rule.comparison in ("above", "changeAbove"):
            fired = compared > low
        elif rule.comparison in ("below", "changeBelow"):
            fired = compared < low
        else:
            inside = (compared >= low) & (compared <= high)
            fired = ~inside if rule.comparison == "outside" else inside
        bounds = [low] if high is None else [low, high]
        close = np.zeros(len(current), dtype=bool)
        if tolerance:
            for bound in bounds:
                close |= np.abs(compared - bound) <= tolerance * max(1.0, abs(bound))
        close &= ~no_data
    return decided, fired & decided, no_data, current, close


def _reading(aggregate: str, columns: SeriesColumns, lo: int, hi: int, at) -> Reading:
    """One window's reading, computed the way the engine gets it (the database's aggregate, exactly summed)."""
    if aggregate == "last":
        return Reading(float(columns.values[hi]), columns.moment(hi)) if hi >= max(lo, 0) else NO_READING
    window = columns.values[max(lo, 0) : hi + 1] if hi >= 0 else columns.values[:0]
    aggregated = reduce_points(aggregate, [(None, float(v)) for v in window])
    return Reading(value=aggregated.value, observed_at=_moment(at), points=aggregated.points)


def _anomaly_decisions(values, lo, hi, count, threshold, direction="both"):
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
    fired = decided & _fires(z, threshold, direction)
    return decided, fired, z, mean, std


def _fires(score: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    """`anomaly.fires` over arrays (NaN fires nothing)."""
    with np.errstate(invalid="ignore"):
        return fires(score, threshold, direction)


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


def _exact_anomaly(rule, values, times, lo, hi, threshold, timezone="UTC", daily=False) -> Evaluation:
    """The engine's own anomaly condition over the window [lo, hi] (views of the arrays, no copy)."""
    window = slice(max(lo, 0), hi + 1) if hi >= 0 else slice(0, 0)
    return evaluate_anomaly_values(
        metric=rule.metric,
        values=values[window],
        observed_at=_moment(times[hi]) if hi >= 0 else None,
        threshold=threshold,
        window_days=rule.window_days,
        method=rule.method,
        direction=rule.direction,
        times=times[window] if rule.method == "seasonal" else None,
        timezone=timezone,
        daily=daily,
    )


def _band(values, times, start, end, window, threshold, day_excluded, robust=None) -> list[BandPoint]:
    """
    What an anomaly is measured against, sampled across the span: mean ± threshold·std of the
    window, or for the robust and seasonal methods median ± threshold·spread (of the latest's season).
    """
    samples = np.unique(np.linspace(start + MINUTE, end, num=BAND_SAMPLES).astype(np.int64))
    upper = samples if not day_excluded else samples - samples % 86400 - 1
    hi = np.searchsorted(times, upper, side="right") - 1
    lo = np.searchsorted(times, samples - window, side="left")
    if robust is None:
        decided, _fired, _z, centers, spreads = _anomaly_decisions(values, lo, hi, hi - lo + 1, threshold)
    else:
        decided, *_, centers, spreads, _unsure = robust.decide(lo, hi, hi - lo + 1, threshold, every_score=True)
    return [
        BandPoint(_moment(t), float(m - threshold * s), float(m + threshold * s))
        for t, ok, m, s in zip(samples, decided, centers, spreads, strict=True)
        if ok and math.isfinite(m) and math.isfinite(s)
    ]


# --- Robust and seasonal scores ----------------------------------------------------------------


class _OrderStatistics:
    """
    The k-th smallest of any slice values[start:stop], for many slices at once and exactly: a wavelet
    matrix over the values' ranks answers each in log₂(len(values)) vectorised steps however long the
    slice, where a sorted window kept in Python would cost a loop step, and a move of much of the
    window, per evaluation.
    """

    def __init__(self, values: np.ndarray):
        order = np.argsort(values, kind="stable")
        self.values = values
        self.sorted = values[order]
        ranks = np.empty(len(values), dtype=np.int64)
        ranks[order] = np.arange(len(values))
        # From the ranks' top bit down: how many of the first i have it 0, then the ranks stably
        # reordered with those first (the next level's order).
        self.zeros = []
        for bit in reversed(range(max(1, (len(values) - 1).bit_length()))):
            is_zero = ((ranks >> bit) & 1) == 0
            zeros = np.zeros(len(values) + 1, dtype=np.int32)
            np.cumsum(is_zero, out=zeros[1:])
            self.zeros.append(zeros)
            ranks = np.concatenate([ranks[is_zero], ranks[~is_zero]])

    def kth(self, start: np.ndarray, stop: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The k-th smallest (from 0) of each values[start:stop]."""
        rank = np.zeros(len(start), dtype=np.int64)
        for zeros in self.zeros:
            zeros_before, zeros_to = zeros[start], zeros[stop]
            zeros_in = zeros_to - zeros_before
            one = k >= zeros_in
            k = k - zeros_in * one
            start = np.where(one, zeros[-1] + start - zeros_before, zeros_before)
            stop = np.where(one, zeros[-1] + stop - zeros_to, zeros_to)
            rank = rank * 2 + one
        return self.sorted[rank]


class _Seasons:
    """The points grouped by season, each in time order: a window's earlier points of a season are one slice."""

    def __init__(self, values: np.ndarray, keys: np.ndarray):
        self.keys = keys
        codes = keys * len(values) + np.arange(len(values))
        order = np.argsort(codes, kind="stable")
        self.codes = codes[order]
        self.statistics = _OrderStatistics(values[order])

    def slices(self, lo: np.ndarray, latest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the points in [lo, latest) of the season of `latest` lie in the grouped order."""
        base = self.keys[latest] * len(self.keys)
        return np.searchsorted(self.codes, base + lo), np.searchsorted(self.codes, base + latest)


class _RobustScores:
    """
    The robust method's score (against the median and MAD of the window's earlier points) or the
    seasonal method's (of the earlier points of the latest's season, else of its hour of any day)
    for many evaluations at once: medians and MADs are order statistics, so they are the engine's own
    numbers bit for bit; only a mean absolute deviation (where the MAD is 0) is summed differently.
    """

    def __init__(self, values: np.ndarray, times: np.ndarray, *, seasonal: bool, timezone: str, daily: bool):
        self.values = values
        self.seasonal = seasonal
        if seasonal:
            self.keys = season_keys(times, timezone=timezone, daily=daily)
        else:
            self.keys = (np.zeros(len(values), dtype=np.int64),)
        self.levels: dict[int, _Seasons] = {}
        self.not_finite = np.concatenate([[0], np.cumsum(~np.isfinite(values))])

    def level(self, index: int) -> _Seasons:
        """0: the season (for `robust`, the whole window); 1: the hour of any day (built when first needed)."""
        if index not in self.levels:
            self.levels[index] = _Seasons(self.values, self.keys[index])
        return self.levels[index]

    def decide(self, lo, hi, count, threshold, direction="both", every_score=False):
        """
        Each evaluation of the window values[lo..hi]: decided, fired, no_data, score, center, spread,
        and `unsure` — the engine's own function decides those (values that are not finite, a mean
        absolute deviation too close to call). Unless `every_score`, score, center and spread are
        NaN where the evaluation cannot fire.
        """
        size = len(lo)
        decided = count >= MIN_ANOMALY_POINTS
        no_data = ~decided
        fired, unsure = np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)
        score, center, spread = np.full(size, np.nan), np.full(size, np.nan), np.full(size, np.nan)
        rows = np.flatnonzero(decided)
        unsure[rows] = self.not_finite[hi[rows] + 1] > self.not_finite[lo[rows]]
        start, stop = self.level(0).slices(lo[rows], hi[rows])
        level = np.zeros(len(rows), dtype=np.int64)
        if self.seasonal:
            thin = np.flatnonzero(stop - start < SEASON_MIN_POINTS)
            if len(thin):
                start[thin], stop[thin] = self.level(1).slices(lo[rows[thin]], hi[rows[thin]])
                level[thin] = 1
            missing = stop - start < SEASON_MIN_POINTS
            decided[rows[missing]], no_data[rows[missing]] = False, True
            rows, start, stop, level = rows[~missing], start[~missing], stop[~missing], level[~missing]
        for index in np.unique(level):
            at = level == index
            found = _robust_statistics(
                self.level(int(index)).statistics,
                start[at],
                stop[at],
                self.values[hi[rows[at]]],
                threshold,
                direction,
                every_score,
            )
            fired[rows[at]], score[rows[at]], center[rows[at]], spread[rows[at]], close = found
            unsure[rows[at]] |= close
        return decided, fired, no_data, score, center, spread, unsure


_MAX_CENTERS = 64  # distinct medians whose mean absolute deviations are summed at once; the rest go exact


def _robust_statistics(statistics: _OrderStatistics, start, stop, latest, threshold, direction, every_score):
    """
    `anomaly.robust` of each `latest` against values[start:stop] (not empty): fired, score, center,
    spread and `unsure`.

    The MAD is the largest distance to the median in the block of the n//2 + 1 values nearest to it
    (for an even n, the mean of that and the block's next largest distance), found by a binary search
    for the block's first position. Each step bounds the block's ends, so the MAD: unless
    `every_score`, an evaluation leaves the search once those bounds show it cannot fire (its
    score, center and spread then stay NaN).
    """
    n = stop - start
    half = n // 2
    even = n % 2 == 0
    block = half + 1
    upper = statistics.kth(start, stop, half)
    lower = upper.copy()
    lower[even] = statistics.kth(start[even], stop[even], half[even] - 1)
    first, last = np.zeros_like(n), n - block
    settled = np.zeros(len(n), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        center = np.where(even, (lower + upper) / 2, upper)
        # Bounds on the block's first value (at position first..last) and its last value.
        first_low, last_high = statistics.kth(start, stop, np.zeros_like(n)), statistics.kth(start, stop, n - 1)
        first_high, last_low = lower.copy(), upper.copy()
        searching = np.arange(len(n))
        while len(searching):
            if not every_score:
                quiet = _cannot_fire(
                    center[searching],
                    latest[searching],
                    even[searching],
                    (first_low[searching], first_high[searching], last_low[searching], last_high[searching]),
                    threshold,
                    direction,
                )
                settled[searching[quiet]] = True
                searching = searching[~quiet]
            searching = searching[first[searching] < last[searching]]
            if not len(searching):
                break
            s, e, m = start[searching], stop[searching], center[searching]
            middle = (first[searching] + last[searching]) // 2
            at, beyond = statistics.kth(s, e, middle), statistics.kth(s, e, middle + block[searching])
            starts_by = m - at <= beyond - m  # the block starts at `middle` or before
            early, late = searching[starts_by], searching[~starts_by]
            last[early], first_high[early], last_high[early] = middle[starts_by], at[starts_by], beyond[starts_by]
            first[late], first_low[late], last_low[late] = middle[~starts_by] + 1, at[~starts_by], beyond[~starts_by]

        rows = np.flatnonzero(~settled)
        s, e, m, a, size = start[rows], stop[rows], center[rows], first[rows], block[rows]
        near_end = np.abs(statistics.kth(s, e, a) - m)
        far_end = np.abs(statistics.kth(s, e, a + size - 1) - m)
        farthest = np.maximum(near_end, far_end)
        mad = farthest.copy()
        pair = np.flatnonzero(even[rows])  # the next largest distance: the block without its farther end
        drop_first = near_end[pair] >= far_end[pair]
        second_at = np.where(drop_first, a[pair] + 1, a[pair] + size[pair] - 2)
        second = np.abs(statistics.kth(s[pair], e[pair], second_at) - m[pair])
        next_largest = np.where(drop_first, np.maximum(second, far_end[pair]), np.maximum(near_end[pair], second))
        mad[pair] = (next_largest + farthest[pair]) / 2

        spread = mad / MAD_NORMAL_SCALE
        unsure = ~np.isfinite(m) | ~np.isfinite(mad)
        relative_error = np.zeros(len(rows))
        zero = np.flatnonzero((mad == 0) & ~unsure)
        if len(zero):
            mean, constant, uncertain, error = _mean_abs_deviations(statistics.values, s[zero], e[zero], m[zero])
            spread[zero] = np.where(constant, 0.0, mean * MEAN_AD_NORMAL_FACTOR)
            unsure[zero] |= uncertain
            relative_error[zero] = error
        difference = latest[rows] - m
        found = np.where(
            spread > 0,
            difference / np.where(spread > 0, spread, 1.0),
            np.where(difference == 0, 0.0, np.copysign(np.inf, difference)),
        )
        tolerance = _CLOSE_CALL * max(1.0, threshold) + 2 * relative_error * np.abs(found)
        unsure |= ~np.isfinite(spread) | np.isnan(found) | (np.abs(np.abs(found) - threshold) <= tolerance)

    fired = np.zeros(len(n), dtype=bool)
    score, center_out, spread_out = np.full(len(n), np.nan), np.full(len(n), np.nan), np.full(len(n), np.nan)
    fired[rows], score[rows], center_out[rows], spread_out[rows] = _fires(found, threshold, direction), found, m, spread
    close = np.zeros(len(n), dtype=bool)
    close[rows] = unsure
    return fired, score, center_out, spread_out, close


def _cannot_fire(center, latest, even, ends, threshold, direction) -> np.ndarray:
    """
    Whether every MAD the block's bounds allow gives a score that does not fire. The score is monotone
    in the MAD (rounding included), so the two extremes tell.
    """
    first_low, first_high, last_low, last_high = ends
    inner_first, inner_last = center - first_high, last_low - center
    far_low = np.maximum(np.maximum(inner_first, inner_last), 0.0)
    near_low = np.maximum(np.minimum(inner_first, inner_last), 0.0)  # the other end stays in the even case's pair
    mad_low = np.where(even, (near_low + far_low) / 2, far_low)
    mad_high = np.maximum(center - first_low, last_high - center)
    difference = latest - center
    bounded = (mad_low > 0) & np.isfinite(mad_high) & np.isfinite(difference)
    one = np.where(difference == 0, 0.0, difference / (mad_low / MAD_NORMAL_SCALE))
    other = np.where(difference == 0, 0.0, difference / (mad_high / MAD_NORMAL_SCALE))
    known = bounded | (difference == 0)
    return known & ~_fires(one, threshold, direction) & ~_fires(other, threshold, direction)


def _mean_abs_deviations(values, start, stop, center):
    """
    Σ|x − center| / n over each values[start:stop], from prefix sums for each distinct center (a
    median the MAD of which is 0: few). Returns the means, whether each slice is constant (exactly),
    whether the sum is too uncertain to use (or its center one too many), and a bound on its
    relative error: cumulative sums err by at most their length·ε times what they have summed.
    """
    mean, error = np.full(len(start), np.nan), np.full(len(start), np.inf)
    constant, uncertain = np.zeros(len(start), dtype=bool), np.ones(len(start), dtype=bool)
    centers, group, sizes = np.unique(center, return_inverse=True, return_counts=True)
    epsilon = np.finfo(np.float64).eps
    for index in np.argsort(-sizes, kind="stable")[:_MAX_CENTERS]:
        value, rows = centers[index], np.flatnonzero(group == index)
        below = np.concatenate([[0.0], np.cumsum(np.where(values < value, value - values, 0.0))])
        above = np.concatenate([[0.0], np.cumsum(np.where(values > value, values - value, 0.0))])
        others = np.concatenate([[0], np.cumsum(values != value)])
        s, e = start[rows], stop[rows]
        total = (below[e] - below[s]) + (above[e] - above[s])
        bound = 2 * len(values) * epsilon * (below[e] + above[e]) + (e - s + 4) * epsilon * total
        mean[rows] = total / (e - s)
        constant[rows] = others[e] == others[s]
        uncertain[rows] = ~constant[rows] & ~(total > 2 * bound)
        error[rows] = np.where(constant[rows], 0.0, bound / np.where(total > 0, total, 1.0))
    return mean, constant, uncertain, error


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


_CLEAR, _BREACH, _NO_DATA, _UNDECIDED = 0, 1, 2, 3


@dataclass
class _Replay:
    alerts: list[WouldBeAlert] = field(default_factory=list)  # the first MAX_ALERTS_LISTED
    alert_count: int = 0
    flaps: int = 0
    firings: list[Firing] = field(default_factory=list)  # the first MAX_FIRINGS_LISTED
    firing_spans: int = 0
    firing_count: int = 0


def _replay_policy(rule: BacktestRule, evals, spans, state, exact, shown, z) -> _Replay:
    """
    The engine's policy over the replayed verdicts, minute by minute: each evaluation stands for
    `spans[i]` minutes with the same verdict, in which the breaching (or clear) streak grows by one a
    minute — so a pending period ends, or a hysteresis clears, part-way through one. What no data
    means follows the rule's `noData`; one open alert at a time; `exact(i)` explains evaluation i.
    """
    replay = _Replay()
    breaching = clearing = 0
    opened = explanation = last_resolved = None
    flap_window = FLAP_WINDOW.total_seconds()
    period, clear_after = rule.for_evaluations, rule.clear_evaluations
    no_data_as = {"alert": _BREACH, "ok": _CLEAR, "keep": _UNDECIDED}[rule.no_data]
    for i in range(len(evals)):
        kind = no_data_as if state[i] == _NO_DATA else state[i]
        minutes = int(spans[i])
        if kind == _BREACH:
            # The minute of this stretch at which the streak reaches the pending period, if any.
            first = max(0, period - breaching - 1)
            firing_minutes = max(0, minutes - first)
            if firing_minutes:
                at = int(evals[i]) + first * MINUTE
                replay.firing_spans += 1
                replay.firing_count += firing_minutes
                if len(replay.firings) < MAX_FIRINGS_LISTED:
                    value = None if state[i] == _NO_DATA or not math.isfinite(shown[i]) else float(shown[i])
                    z_score = None if z is None or not math.isfinite(z[i]) else float(z[i])
                    replay.firings.append(Firing(at=_moment(at), minutes=firing_minutes, value=value, z_score=z_score))
                if opened is None:
                    replay.alert_count += 1
                    if last_resolved is not None and at - last_resolved <= flap_window:
                        replay.flaps += 1
                    opened = at
                    if replay.alert_count <= MAX_ALERTS_LISTED:
                        explanation = apply_policy(
                            exact(i),
                            streaks=Streaks(breaching=breaching + first),
                            metric=rule.metric,
                            window={"windowDays": rule.window_days or DEFAULT_WINDOW_DAYS}
                            if rule.aggregate == "last" or rule.type == "anomaly"
                            else {"aggregateMinutes": rule.aggregate_minutes},
                            for_evaluations=period,
                            clear_evaluations=clear_after,
                            no_data=rule.no_data,
                        ).evaluation
            breaching, clearing = breaching + minutes, 0
        elif kind == _CLEAR:
            first = max(0, clear_after - clearing - 1)
            if opened is not None and rule.auto_resolve and first < minutes:
                resolved = int(evals[i]) + first * MINUTE
                if len(replay.alerts) < MAX_ALERTS_LISTED:
                    replay.alerts.append(_alert(opened, explanation, resolved))
                opened, last_resolved = None, resolved
            breaching, clearing = 0, clearing + minutes
    if opened is not None and len(replay.alerts) < MAX_ALERTS_LISTED:
        replay.alerts.append(_alert(opened, explanation, None))
    return replay


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
    now = now or django_timezone.now()
    schedule_timezone = rule.schedule_timezone  # before `rule` becomes a BacktestRule
    # The tenant's zone, read (a query for an unsaved rule) only where the seasonal method needs it.
    local_timezone = rule.local_timezone if rule.type == "anomaly" and rule.method == "seasonal" else "UTC"
    tenant_id = rule.tenant_id
    rule = BacktestRule.of(rule)
    since = now - timedelta(days=days)
    if rule.type == "schedule":
        return backtest_schedule_rule(rule=rule, since=since, until=now, timezone=schedule_timezone)
    window = timedelta(days=rule.window_days or DEFAULT_WINDOW_DAYS)
    if rule.type == "anomaly":
        series = metric_series_columns(
            request=SeriesRequest(tenant_id=tenant_id, metric=rule.metric, since=since - window, until=now)
        )
    else:
        # What the replay reads, from as far back as its first evaluation looks (a change: compareDays more).
        reach = since - timedelta(days=rule.compare_days if rule.compares_change else 0)
        if rule.aggregate == "last":
            # A latest value reads only the newest point of its window: before `reach`, only the
            # newest point can matter.
            before = SeriesRequest(
                tenant_id=tenant_id,
                metric=rule.metric,
                since=reach - window,
                until=reach - timedelta(microseconds=1),
                latest_only=True,
            )
            span = SeriesRequest(tenant_id=tenant_id, metric=rule.metric, since=reach, until=now)
            series = metric_series_columns(request=before) + metric_series_columns(request=span)
        else:
            first = reach - timedelta(minutes=rule.aggregate_minutes)
            series = metric_series_columns(
                request=SeriesRequest(tenant_id=tenant_id, metric=rule.metric, since=first, until=now)
            )
    return backtest_metric_rule(
        rule=rule,
        points=series,
        since=since,
        until=now,
        completed_periods_only=is_daily_metric(rule.metric),
        timezone=local_timezone,
    )
