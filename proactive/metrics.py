"""
Where metric values come from. Rules name a metric; a provider serves it:

- built-in metrics (`usage.*`: the tenant's daily usage snapshots) from the providers that
  settings.METRIC_PROVIDERS names (`proactive.metric_providers`);
- anything else: the tenant's own datapoints in `MetricPoint` (`POST /metrics/{metric}/points`).

The engine reads metrics only through `metric_series_batch` (and the API through its one-request
form `metric_series`): the one selector that returns a tenant's series for a metric and window.
It is batch-first, so evaluating a thousand rules costs a couple of queries, not a thousand, and
a failing provider fails only the requests it serves.
"""

import logging
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from core.exceptions import ApplicationError
from proactive.metric_providers import builtin_provider_for
from proactive.models import MetricPoint

logger = logging.getLogger(__name__)


class Point(NamedTuple):
    timestamp: datetime
    value: float


@dataclass(frozen=True)
class SeriesRequest:
    """A tenant's metric over [since, until] (`since=None`: from the beginning)."""

    tenant_id: str
    metric: str
    since: datetime | None
    until: datetime
    latest_only: bool = False  # just the most recent point in the window
    # Periodic metrics (the daily usage.*) leave out the running period: today's total is partial.
    completed_periods_only: bool = False

    def contains(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and moment <= self.until


Series = list[Point]  # oldest first


class MetricUnavailable(ApplicationError):
    code = "metric_unavailable"


def _bounds(requests: Sequence[SeriesRequest]) -> dict:
    """One range filter covering every request; each request is cut out of the rows in Python."""
    lookups = {
        "tenant_id__in": {r.tenant_id for r in requests},
        "until": max(r.until for r in requests),
    }
    since = [r.since for r in requests]
    lookups["since"] = None if None in since else min(since)
    return lookups


class CustomMetricProvider:
    """Tenant datapoints in MetricPoint, read on the (tenant, metric, timestamp) index."""

    def series_many(self, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
        rows_by_series: dict[tuple[str, str], Series] = defaultdict(list)
        for latest_only in (False, True):
            batch = [r for r in requests if r.latest_only == latest_only]
            if batch:
                for tenant_id, metric, timestamp, value in self._rows(batch, latest_only=latest_only):
                    rows_by_series[(tenant_id, metric, latest_only)].append(Point(timestamp, value))
        result = {}
        for request in requests:
            # Rows come oldest first, so each request's window is one slice of its series.
            points = rows_by_series.get((request.tenant_id, request.metric, request.latest_only), [])
            timestamps = [point.timestamp for point in points]
            first = 0 if request.since is None else bisect_left(timestamps, request.since)
            points = points[first : bisect_right(timestamps, request.until)]
            result[request] = points[-1:] if request.latest_only else points
        return result

    def _rows(self, requests: Sequence[SeriesRequest], *, latest_only: bool):
        bounds = _bounds(requests)
        queryset = MetricPoint.objects.filter(
            tenant_id__in=bounds["tenant_id__in"],
            metric__in={r.metric for r in requests},
            timestamp__lte=bounds["until"],
        )
        if bounds["since"] is not None:
            queryset = queryset.filter(timestamp__gte=bounds["since"])
        if latest_only:
            # Only the newest row of each series leaves the database.
            queryset = queryset.annotate(
                newest_first=Window(
                    RowNumber(), partition_by=[F("tenant_id"), F("metric")], order_by=F("timestamp").desc()
                )
            ).filter(newest_first=1)
        return queryset.order_by("tenant_id", "metric", "timestamp").values_list(
            "tenant_id", "metric", "timestamp", "value"
        )


_custom_provider = CustomMetricProvider()


def metric_series_batch(
    *, requests: Sequence[SeriesRequest]
) -> tuple[dict[SeriesRequest, Series], dict[SeriesRequest, str]]:
    """Every request's series (oldest point first), and why each request that failed, failed."""
    grouped: dict[int, tuple[object, list[SeriesRequest]]] = {}
    failures: dict[SeriesRequest, str] = {}
    for request in dict.fromkeys(requests):
        provider = builtin_provider_for(request.metric) or _custom_provider
        grouped.setdefault(id(provider), (provider, []))[1].append(request)

    series: dict[SeriesRequest, Series] = {}
    for provider, provider_requests in grouped.values():
        try:
            answered = provider.series_many(provider_requests)
            if provider is not _custom_provider:  # other providers may answer with plain pairs
                answered = {request: [Point(*pair) for pair in pairs] for request, pairs in answered.items()}
            series.update((request, answered.get(request, [])) for request in provider_requests)
        except Exception as exc:  # one provider's outage fails its own requests only
            logger.exception("metric provider %s failed", type(provider).__name__)
            for request in provider_requests:
                failures[request] = f"Reading {request.metric!r} failed: {exc}"
    return series, failures


def metric_series_many(*, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
    series, failures = metric_series_batch(requests=requests)
    if failures:
        raise MetricUnavailable(next(iter(failures.values())))
    return series


def metric_series(*, tenant_id: str, metric: str, since: datetime | None, until: datetime) -> Series:
    request = SeriesRequest(tenant_id=tenant_id, metric=metric, since=since, until=until)
    return metric_series_many(requests=[request])[request]
