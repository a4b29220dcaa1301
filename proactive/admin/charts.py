"""The console's charts: what the engine read and decided, drawn with core.charts."""

from datetime import datetime, timedelta

from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString

from core.charts import Band, Line, Marker, Span, Threshold, time_chart
from proactive.engine.backtest import Backtest, downsample
from proactive.metrics import MetricUnavailable, Series, metric_series

MAX_ALERTS_DRAWN = 200
# Around an alert: the narrowest of these windows before the firing that holds enough points to see a shape.
WINDOWS_BEFORE_FIRING = (timedelta(hours=6), timedelta(days=3), timedelta(days=30), timedelta(days=90))
ENOUGH_POINTS = 30


def backtest_chart(*, rule, result: Backtest, title: str) -> SafeString:
    """A metric rule's backtest: the series it read, its threshold or band, the would-be alerts shaded."""
    thresholds = _threshold_lines(rule) if rule.type == "metric_threshold" else []
    bands = []
    if result.band:
        bands = [
            Band(f"mean ± {rule.threshold:g}σ", [(point.timestamp, point.low, point.high) for point in result.band])
        ]
    alerts = result.alerts[:MAX_ALERTS_DRAWN]
    return time_chart(
        title=title,
        lines=[Line(rule.metric, result.series)],
        thresholds=thresholds,
        bands=bands,
        spans=[Span("would-be alert", alert.opened_at, alert.resolved_at) for alert in alerts],
        markers=[
            Marker("would-be alert opens", alert.opened_at, alert.evidence.get("value"))
            for alert in alerts
            # An aggregate or a change is not a point of the drawn series: its alerts are shaded only.
            if isinstance(alert.evidence.get("value"), int | float) and "aggregate" not in alert.evidence
        ],
        since=result.since,
        until=result.until,
    )


def _threshold_lines(rule) -> list[Threshold]:
    """The lines a threshold rule compares the metric with: none for a change (a percentage of another value)."""
    comparison = rule.comparison or "above"
    if comparison in ("changeAbove", "changeBelow"):
        return []
    of = (
        "" if (rule.aggregate or "last") == "last" else f" (for the {rule.aggregate} over {rule.aggregate_minutes} min)"
    )
    if comparison in ("outside", "inside"):
        return [Threshold(f"low{of}", rule.threshold), Threshold(f"high{of}", rule.threshold_high)]
    return [Threshold(f"threshold{of}", rule.threshold)]


def series_around(*, tenant_id: str, metric: str, at: datetime, until: datetime) -> tuple[Series, datetime]:
    """The metric before and after `at` (up to `until`), over the narrowest window that shows its shape."""
    since = at - WINDOWS_BEFORE_FIRING[-1]
    for before in WINDOWS_BEFORE_FIRING:
        since = at - before
        series = metric_series(tenant_id=tenant_id, metric=metric, since=since, until=until)
        if sum(1 for point in series if point.timestamp <= at) >= ENOUGH_POINTS:
            break
    return series, since


def alert_chart(*, alert, now: datetime) -> SafeString | None:
    """The metric around an alert's firing, with what it was compared against, the firing marked."""
    payload = alert.payload
    metric = payload.get("metric")
    if not metric:
        return None  # schedule alerts have no series
    fired_at = parse_datetime(payload.get("observedAt") or "") or alert.triggered_at
    after = (alert.resolved_at or now) - fired_at
    until = min(now, fired_at + max(min(after, timedelta(days=7)), timedelta(hours=1)))
    try:
        series, since = series_around(tenant_id=alert.tenant_id, metric=metric, at=fired_at, until=until)
    except MetricUnavailable as exc:
        return time_chart(title=f"{metric} around the firing", empty_message=str(exc))

    thresholds, bands = [], []
    mean, std, z_limit = payload.get("mean"), payload.get("std"), payload.get("threshold")
    if "mean" in payload and all(isinstance(v, int | float) for v in (mean, std, z_limit)):
        low, high = mean - z_limit * std, mean + z_limit * std
        bands = [Band(f"mean ± {z_limit:g}σ at the firing", [(since, low, high), (until, low, high)])]
    elif isinstance(z_limit, int | float):
        thresholds = [Threshold("threshold", z_limit)]
    value = payload.get("value")
    return time_chart(
        title=f"{metric} around the firing",
        lines=[Line(metric, downsample(series))],
        thresholds=thresholds,
        bands=bands,
        markers=[Marker("fired", fired_at, value if isinstance(value, int | float) else None)],
        spans=[Span("alert open", alert.triggered_at, alert.resolved_at)],
        since=since,
        until=until,
    )
