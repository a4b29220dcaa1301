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

import json
import logging
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from django.db import connection
from django.db.models import Avg, Count, F, Max, Min, Sum, Value, Window
from django.db.models.functions import RowNumber

from core.db import DATABASE_LOST
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


def _batch_key(request: SeriesRequest) -> tuple:
    return (True, request.until) if request.latest_only else (False, None)


class CustomMetricProvider:
    """Tenant datapoints in MetricPoint, read on the (tenant, metric, timestamp) index."""

    def series_many(self, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
        # A batch for the series, and one per distinct end of the latest-only requests: the newest
        # row of a series before one end is not the newest before another (a change's baseline).
        batches: dict[tuple, list[SeriesRequest]] = defaultdict(list)
        for request in requests:
            batches[_batch_key(request)].append(request)
        rows_by_series: dict[tuple, Series] = defaultdict(list)
        keys = list(batches)
        # Every batch in one statement (UNION ALL), each row tagged with its batch.
        parts = [self._rows(batches[key], latest_only=key[0], tag=tag) for tag, key in enumerate(keys)]
        combined = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        for tag, tenant_id, metric, timestamp, value in combined.order_by("tag", "tenant_id", "metric", "timestamp"):
            rows_by_series[(tenant_id, metric, keys[tag])].append(Point(timestamp, value))
        result = {}
        for request in requests:
            # Rows come oldest first, so each request's window is one slice of its series.
            points = rows_by_series.get((request.tenant_id, request.metric, _batch_key(request)), [])
            timestamps = [point.timestamp for point in points]
            first = 0 if request.since is None else bisect_left(timestamps, request.since)
            points = points[first : bisect_right(timestamps, request.until)]
            result[request] = points[-1:] if request.latest_only else points
        return result

    def _rows(self, requests: Sequence[SeriesRequest], *, latest_only: bool, tag: int):
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
        return queryset.annotate(tag=Value(tag)).values_list("tag", "tenant_id", "metric", "timestamp", "value")

    def aggregate_many(self, requests: Sequence["AggregateRequest"]) -> dict["AggregateRequest", "Aggregated"]:
        """Every request's aggregate, computed by the database: one query for all of them on PostgreSQL."""
        if connection.vendor != "postgresql":  # the zero-config SQLite: one small query per request
            return {request: _aggregate_with_orm(request) for request in requests}
        document = [
            {
                "i": i,
                "tenant_id": r.tenant_id,
                "metric": r.metric,
                "since": r.since.isoformat(),
                "until": r.until.isoformat(),
            }
            for i, r in enumerate(requests)
        ]
        with connection.cursor() as cursor:
            cursor.execute(_AGGREGATES_SQL, [json.dumps(document)])
            rows = {row[0]: row[1:] for row in cursor.fetchall()}
        return {request: _aggregated(request.aggregate, *rows[i]) for i, request in enumerate(requests)}


# Each request is one row of a JSON document; the (tenant, metric, timestamp) index serves each range.
_AGGREGATES_SQL = f"""
SELECT r.i, count(p.value), avg(p.value), sum(p.value), min(p.value), max(p.value)
FROM jsonb_to_recordset(%s::jsonb) AS r(i integer, tenant_id text, metric text, since timestamptz, until timestamptz)
LEFT JOIN {MetricPoint._meta.db_table} AS p
  ON p.tenant_id = r.tenant_id AND p.metric = r.metric AND p.timestamp >= r.since AND p.timestamp <= r.until
GROUP BY r.i
"""


def _aggregate_with_orm(request: "AggregateRequest") -> "Aggregated":
    row = MetricPoint.objects.filter(
        tenant_id=request.tenant_id, metric=request.metric, timestamp__gte=request.since, timestamp__lte=request.until
    ).aggregate(
        count=Count("value"),
        avg=Avg("value"),
        sum=Sum("value"),
        min=Min("value"),
        max=Max("value"),
    )
    return _aggregated(request.aggregate, row["count"], row["avg"], row["sum"], row["min"], row["max"])


def _aggregated(aggregate: str, count, avg, total, lowest, highest) -> "Aggregated":
    if aggregate == "count":
        return Aggregated(value=float(count), points=count)
    value = {"avg": avg, "sum": total, "min": lowest, "max": highest}[aggregate] if count else None
    return Aggregated(value=None if value is None else float(value), points=count)


def reduce_points(aggregate: str, points: Sequence[tuple[datetime, float]]) -> "Aggregated":
    """The same aggregate, in Python, over a series a provider answered with."""
    values = [value for _, value in points]
    if not values:
        return _aggregated(aggregate, 0, None, None, None, None)
    return _aggregated(
        aggregate, len(values), math.fsum(values) / len(values), math.fsum(values), min(values), max(values)
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
        except DATABASE_LOST:
            raise  # our own database is gone: the whole chunk fails (and is retried), not each rule
        except Exception as exc:  # one provider's outage fails its own requests only
            logger.exception("metric provider %s failed", type(provider).__name__)
            for request in provider_requests:
                failures[request] = f"Reading {request.metric!r} failed: {exc}"
    return series, failures


@dataclass(frozen=True)
class AggregateRequest:
    """An aggregate (avg, sum, min, max, count) of a tenant's metric over [since, until]."""

    tenant_id: str
    metric: str
    since: datetime
    until: datetime
    aggregate: str


class Aggregated(NamedTuple):
    value: float | None  # None: no points (except for count, which is then 0)
    points: int


def metric_aggregates_batch(
    *, requests: Sequence[AggregateRequest]
) -> tuple[dict[AggregateRequest, Aggregated], dict[AggregateRequest, str]]:
    """
    Every request's aggregate, and why each request that failed, failed. Custom metrics are
    aggregated by the database, all requests in one query; a built-in provider's series (small:
    one point a day) is reduced in Python, unless the provider aggregates itself.
    """
    grouped: dict[int, tuple[object, list[AggregateRequest]]] = {}
    for request in dict.fromkeys(requests):
        provider = builtin_provider_for(request.metric) or _custom_provider
        grouped.setdefault(id(provider), (provider, []))[1].append(request)

    aggregates: dict[AggregateRequest, Aggregated] = {}
    failures: dict[AggregateRequest, str] = {}
    for provider, provider_requests in grouped.values():
        try:
            if hasattr(provider, "aggregate_many"):
                aggregates.update(provider.aggregate_many(provider_requests))
                continue
            as_series = {
                request: SeriesRequest(
                    tenant_id=request.tenant_id, metric=request.metric, since=request.since, until=request.until
                )
                for request in provider_requests
            }
            answered = provider.series_many(list(as_series.values()))
            for request, series_request in as_series.items():
                points = [Point(*pair) for pair in answered.get(series_request, [])]
                aggregates[request] = reduce_points(request.aggregate, points)
        except DATABASE_LOST:
            raise  # our own database is gone: the whole chunk fails (and is retried), not each rule
        except Exception as exc:  # one provider's outage fails its own requests only
            logger.exception("metric provider %s failed", type(provider).__name__)
            for request in provider_requests:
                failures[request] = f"Reading {request.metric!r} failed: {exc}"
    return aggregates, failures


def metric_series_many(*, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
    series, failures = metric_series_batch(requests=requests)
    if failures:
        raise MetricUnavailable(next(iter(failures.values())))
    return series


def metric_series(*, tenant_id: str, metric: str, since: datetime | None, until: datetime) -> Series:
    request = SeriesRequest(tenant_id=tenant_id, metric=metric, since=since, until=until)
    return metric_series_many(requests=[request])[request]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class SeriesColumns:
    """A series as two arrays, oldest first: Unix microseconds (int64) and values (float64)."""

    micros: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, points: Sequence[tuple[datetime, float]]) -> "SeriesColumns":
        micros = np.fromiter(((t - _EPOCH) // timedelta(microseconds=1) for t, _ in points), np.int64, len(points))
        return cls(micros, np.fromiter((v for _, v in points), np.float64, len(points)))

    def __len__(self) -> int:
        return len(self.values)

    def moment(self, i: int) -> datetime:
        return _EPOCH + timedelta(microseconds=int(self.micros[i]))

    def __add__(self, other: "SeriesColumns") -> "SeriesColumns":
        return SeriesColumns(np.concatenate([self.micros, other.micros]), np.concatenate([self.values, other.values]))


_SERIES_COLUMNS_SQL = f"""
SELECT (extract(epoch FROM timestamp) * 1000000)::bigint, value FROM {MetricPoint._meta.db_table}
WHERE tenant_id = %s AND metric = %s AND timestamp >= %s AND timestamp <= %s ORDER BY timestamp
"""


def metric_series_columns(*, request: SeriesRequest) -> SeriesColumns:
    """
    One request's series as arrays, for reading a long one (a backtest's): a custom metric on
    PostgreSQL is read as numbers, without turning every timestamp into a datetime (3-4x faster).
    """
    if request.latest_only or request.since is None or builtin_provider_for(request.metric) is not None:
        return SeriesColumns.of(metric_series_many(requests=[request])[request])
    if connection.vendor != "postgresql":
        return SeriesColumns.of(_custom_provider.series_many([request])[request])
    with connection.cursor() as cursor:
        cursor.execute(_SERIES_COLUMNS_SQL, [request.tenant_id, request.metric, request.since, request.until])
        rows = cursor.fetchall()
    micros = np.fromiter((row[0] for row in rows), np.int64, len(rows))
    return SeriesColumns(micros, np.fromiter((row[1] for row in rows), np.float64, len(rows)))
