"""
Anomaly scores (pure): how far the latest value lies from what the earlier points of the window
lead one to expect, in standard deviations or their robust estimate.

- `zscore` (the guide's): the mean and population standard deviation of the earlier points.
- `robust`: their median and MAD (`scipy.stats.median_abs_deviation`) scaled to a normal σ. One old
  outlier moves neither much, so it does not hide the next. Where more than half of the points
  are equal (MAD 0, as with a count that is mostly 0) the mean absolute deviation from the median
  stands in, scaled the same way.
- `seasonal`: the robust statistics of the earlier points in the latest's season, the same hour of
  day and day of week in the tenant's zone (for a daily metric, the same weekday). If fewer than
  SEASON_MIN_POINTS points fall in that season, the same hour on any day (a daily rhythm) is used.

A history whose spread is 0 and a different latest value is an anomaly of unbounded score.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from proactive.engine.cron import offset_changes

SEASON_MIN_POINTS = 3
# A MAD of normal data divided by Φ⁻¹(3/4) estimates σ (scipy's scale="normal", the same constant); a
# mean absolute deviation times √(π/2) does.
MAD_NORMAL_SCALE = 0.6744897501960817
MEAN_AD_NORMAL_FACTOR = math.sqrt(math.pi / 2)
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
DAY = 86400


@dataclass(frozen=True)
class Score:
    """The latest value against its expectation: `score` = (value − center) / spread."""

    center: float
    spread: float  # 0: the history is constant (score 0 or ±inf)
    score: float
    evidence: dict  # the method's own keys


@cache
def _median_abs_deviation():
    """
    scipy's MAD, imported on first use (scipy.stats takes ~0.8 s to import: web and beat processes,
    which never score an anomaly, do not pay it), without its axis/NaN-policy wrapper, which costs
    ~300 µs a call — ten times the statistic on a 30-point window.
    """
    from scipy.stats import median_abs_deviation

    return getattr(median_abs_deviation, "__wrapped__", median_abs_deviation)


def robust_spread(mad: float, mean_abs_deviation: float) -> float:
    """σ estimated from the MAD; from the mean absolute deviation where the MAD is 0."""
    if mad > 0:
        return mad / MAD_NORMAL_SCALE
    return mean_abs_deviation * MEAN_AD_NORMAL_FACTOR


def sorted_median(values: np.ndarray) -> float:
    """np.median's value (the middle, or the mean of the two middles) from a sort: ~10x faster on a small window."""
    ordered = np.sort(values)
    if not len(ordered) or math.isnan(ordered[-1]):  # NaN sorts last; np.median answers NaN
        return math.nan
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else float((ordered[middle - 1] + ordered[middle]) / 2)


def scaled_score(latest: float, center: float, spread: float) -> float:
    if spread > 0:
        return (latest - center) / spread
    return 0.0 if latest == center else math.copysign(math.inf, latest - center)


def zscore(latest: float, history: np.ndarray) -> Score | None:
    """None when the sums overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(history.mean())
        std = float(history.std())
    if not (math.isfinite(mean) and math.isfinite(std)):
        return None
    if std <= 1e-12 * max(1.0, abs(mean)):  # constant, up to rounding
        z = 0.0 if math.isclose(latest, mean, rel_tol=1e-12, abs_tol=1e-12) else math.copysign(math.inf, latest - mean)
        return Score(center=mean, spread=0.0, score=z, evidence={"mean": mean, "std": 0.0})
    return Score(center=mean, spread=std, score=(latest - mean) / std, evidence={"mean": mean, "std": std})


def robust(latest: float, history: np.ndarray) -> Score | None:
    """None when the values overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        median = sorted_median(history)
        mad = float(_median_abs_deviation()(history, center=lambda _values, axis: median))
        mean_ad = float(np.mean(np.abs(history - median))) if mad == 0 else 0.0
    if not (math.isfinite(median) and math.isfinite(mad) and math.isfinite(mean_ad)):
        return None
    spread = robust_spread(mad, mean_ad)
    return Score(
        center=median,
        spread=spread,
        score=scaled_score(latest, median, spread),
        evidence={"median": median, "mad": mad, "spread": spread},
    )


def local_seconds(times: np.ndarray, timezone: str) -> np.ndarray:
    """Unix seconds as the wall clock of `timezone` reads them (seconds since 1970-01-01 00:00 local)."""
    if timezone == "UTC" or not len(times):
        return times
    at, seconds = _offsets(timezone, int(times[0]) // DAY, int(times[-1]) // DAY + 1)
    return times + seconds[np.searchsorted(at, times, side="right")]


@lru_cache(maxsize=1024)
def _offsets(timezone: str, first_day: int, end_day: int) -> tuple[np.ndarray, np.ndarray]:
    """The zone's offset changes between two UTC days (Unix days): their instants, and the offsets from each."""
    zone = ZoneInfo(timezone)
    first, end = datetime.fromtimestamp(first_day * DAY, UTC), datetime.fromtimestamp(end_day * DAY, UTC)
    changes = offset_changes(timezone, since=first, until=end)
    offsets = [first.astimezone(zone).utcoffset(), *(after for _, _, after in changes)]
    at = np.array([int(moment.timestamp()) for moment, _, _ in changes], dtype=np.int64)
    seconds = np.array([offset.total_seconds() for offset in offsets], dtype=np.int64)
    at.flags.writeable = seconds.flags.writeable = False  # cached: shared by every caller
    return at, seconds


def season_keys(times: np.ndarray, *, timezone: str, daily: bool) -> tuple[np.ndarray, np.ndarray]:
    """
    Each point's season (weekday × 24 + hour, in the zone) and its hour of day; for a daily metric
    (a point per UTC day) the weekday of its day and one key for all days.
    """
    if daily:
        weekdays = (times // DAY + 4) % 7  # 1970-01-01 was a Thursday; Sunday is 0
        return weekdays, np.zeros_like(weekdays)
    local = local_seconds(times, timezone)
    hours = (local % DAY) // 3600
    return ((local // DAY + 4) % 7) * 24 + hours, hours


THIN_SEASON = "thin season"  # too few points to compare with: no data, not an error


def seasonal(
    latest: float, history: np.ndarray, times: np.ndarray, *, timezone: str, daily: bool
) -> Score | str | None:
    """
    `times`: Unix seconds of the history's points and then the latest's (oldest first). The robust
    score of the latest against the earlier points of its season. None when the season and its
    fallback both hold fewer than SEASON_MIN_POINTS points (THIN_SEASON), None when the values overflow.
    """
    weekly, hourly = season_keys(times, timezone=timezone, daily=daily)
    in_season = weekly[:-1] == weekly[-1]
    weekday = int(weekly[-1] // 24) if not daily else int(weekly[-1])
    hour = None if daily else int(hourly[-1])
    if np.count_nonzero(in_season) < SEASON_MIN_POINTS:
        in_season = hourly[:-1] == hourly[-1]
        weekday = None
        if np.count_nonzero(in_season) < SEASON_MIN_POINTS:
            return THIN_SEASON
    found = robust(latest, history[in_season])
    if found is None:
        return None
    evidence = {
        "median": found.center,
        "mad": found.evidence["mad"],
        "spread": found.spread,
        "seasonWeekday": None if weekday is None else WEEKDAYS[weekday],
        "seasonHour": hour,
        "seasonPoints": int(np.count_nonzero(in_season)),
    }
    if not daily:
        evidence["timezone"] = timezone
    return Score(center=found.center, spread=found.spread, score=found.score, evidence=evidence)


def season_description(evidence: dict) -> str:
    """'Mondays 09:00–10:00 Europe/Berlin', 'any day 09:00–10:00 UTC', 'Mondays' (a daily metric), 'any day'."""
    weekday, hour = evidence.get("seasonWeekday"), evidence.get("seasonHour")
    days = f"{weekday}s" if weekday else "any day"
    if hour is None:
        return days
    return f"{days} {hour:02d}:00–{(hour + 1) % 24:02d}:00 {evidence.get('timezone', 'UTC')}"


def fires(score: float, threshold: float, direction: str) -> bool:
    """Whether a score breaches ±threshold in the direction watched (up, down or both)."""
    if direction == "up":
        return score >= threshold
    if direction == "down":
        return score <= -threshold
    return abs(score) >= threshold
