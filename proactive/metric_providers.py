"""
Built-in metrics come from providers that settings.METRIC_PROVIDERS names (import paths). A
provider declares the namespace it serves (`prefix`, e.g. "usage.") and every metric name in it, so
the app that owns a metric owns its name: rule validation and the metrics API ask this registry.
Everything outside a provider's namespace is a tenant's own custom metric.
"""

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class MetricProvider(Protocol):
    prefix: str  # the namespace it serves, e.g. "usage."
    metric_names: Sequence[str]  # every metric it serves, each starting with `prefix`
    daily: bool  # one point per UTC day: an anomaly rule compares whole days (the running day left out)
    # Optional: true when every change of a completed day's point wakes its metric (a MetricWake), so
    # an anomaly rule on it may sleep until the next day completes.
    announces_changes: bool

    def series_many(self, requests: Sequence) -> dict:
        """
        For each request (tenant_id, metric, since, until, latest_only, completed_periods_only, and
        contains(moment) for its window), its series as (timestamp, value) pairs, oldest first.
        """


@cache
def _providers(paths: tuple[str, ...]) -> tuple[MetricProvider, ...]:
    return tuple(import_string(path)() for path in paths)


def metric_providers() -> tuple[MetricProvider, ...]:
    return _providers(tuple(settings.METRIC_PROVIDERS))


def builtin_provider_for(metric: str) -> MetricProvider | None:
    """The provider whose namespace `metric` is in, or None for a custom metric."""
    return _provider_for(tuple(settings.METRIC_PROVIDERS), metric)


@lru_cache(maxsize=10_000)  # asked for every rule the engine evaluates
def _provider_for(paths: tuple[str, ...], metric: str) -> MetricProvider | None:
    return next((provider for provider in _providers(paths) if metric.startswith(provider.prefix)), None)


def is_daily_metric(metric: str) -> bool:
    """A built-in metric with one point per UTC day."""
    return bool(getattr(builtin_provider_for(metric), "daily", False))


def namespace_noun(provider: MetricProvider) -> str:
    """How messages name a provider's metrics: "usage" for "usage."."""
    return provider.prefix.rstrip(".:-_")


def is_builtin_metric(metric: str) -> bool:
    return builtin_provider_for(metric) is not None
