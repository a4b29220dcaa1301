"""Metric providers for tests, named by import path in settings.METRIC_PROVIDERS as real ones are."""

from billing.metrics import UsageSnapshotMetricProvider


class FakeUsageProvider:
    """Serves the usage names with one point (12.0) at each request's end, and remembers the requests."""

    prefix = UsageSnapshotMetricProvider.prefix
    metric_names = UsageSnapshotMetricProvider.metric_names

    def __init__(self):
        self.seen = []

    def series_many(self, requests):
        self.seen.extend(requests)
        return {request: [(request.until, 12.0)] for request in requests}


class UnreachableUsageProvider:
    prefix = UsageSnapshotMetricProvider.prefix
    metric_names = UsageSnapshotMetricProvider.metric_names

    def series_many(self, requests):
        raise ConnectionError("warehouse unreachable")
