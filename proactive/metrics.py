"""
Where metric values come from. Rules name a metric; a provider serves it:

- `usage.*` (built in): the tenant's daily usage snapshots, plugged in by the billing app;
- anything else: the tenant's own datapoints in `MetricPoint` (`POST /metrics/{metric}/points`).

The engine reads metrics only through `metric_series_many` / `metric_series`, the one selector
that returns a tenant's series for a metric and window. It is batch-first so that evaluating a
thousand rules costs a handful of queries, not a thousand.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from django.db.models import Q

from core.exceptions import ApplicationError
from proactive.models import MetricPoint
from proactive.validators import USAGE_METRIC_PREFIX


class Point(NamedTuple):
    timestamp: datetime
    value: float


@dataclass(frozen=True)
class SeriesRequest:
    """A tenant's metric over [since, until]; `since=None` means from the beginning."""

    tenant_id: str
    metric: str
    since: datetime | None
    until: datetime
    latest_only: bool = False


Series = list[Point]  # oldest first


class MetricUnavailable(ApplicationError):
    code = "metric_unavailable"


class MetricProvider(Protocol):
    def series_many(self, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]: ...


class CustomMetricProvider:
    """Tenant datapoints in MetricPoint. One query per batch, on the (tenant, metric, timestamp) index."""

    def series_many(self, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
        if not requests:
            return {}
        condition = Q()
        for request in requests:
            part = Q(tenant_id=request.tenant_id, metric=request.metric, timestamp__lte=request.until)
            if request.since is not None:
                part &= Q(timestamp__gte=request.since)
            condition |= part
        rows = (
            MetricPoint.objects.filter(condition)
            .order_by("tenant_id", "metric", "timestamp")
            .values_list("tenant_id", "metric", "timestamp", "value")
        )
        by_key: dict[tuple[str, str], Series] = defaultdict(list)
        for tenant_id, metric, timestamp, value in rows:
            by_key[(tenant_id, metric)].append(Point(timestamp, value))

        result = {}
        for request in requests:
            points = [
                point
                for point in by_key.get((request.tenant_id, request.metric), [])
                if (request.since is None or point.timestamp >= request.since)
                and point.timestamp <= request.until
            ]
            result[request] = points[-1:] if request.latest_only else points
        return result


_custom_provider = CustomMetricProvider()
_providers_by_prefix: dict[str, MetricProvider] = {}


def metric_provider_register(*, prefix: str, provider: MetricProvider) -> None:
    _providers_by_prefix[prefix] = provider


def _provider_for(metric: str) -> MetricProvider:
    for prefix, provider in _providers_by_prefix.items():
        if metric.startswith(prefix):
            return provider
    if metric.startswith(USAGE_METRIC_PREFIX):
        raise MetricUnavailable(f"{metric!r}: no provider for built-in usage metrics is installed.")
    return _custom_provider


def metric_series_many(*, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
    """Every request's series, oldest point first. Raises MetricUnavailable for an unserved metric."""
    grouped: dict[int, tuple[MetricProvider, list[SeriesRequest]]] = {}
    for request in dict.fromkeys(requests):
        provider = _provider_for(request.metric)
        grouped.setdefault(id(provider), (provider, []))[1].append(request)
    result: dict[SeriesRequest, Series] = {}
    for provider, provider_requests in grouped.values():
        result.update(provider.series_many(provider_requests))
    return result


def metric_series(
    *, tenant_id: str, metric: str, since: datetime | None, until: datetime
) -> Series:
    request = SeriesRequest(tenant_id=tenant_id, metric=metric, since=since, until=until)
    return metric_series_many(requests=[request])[request]
