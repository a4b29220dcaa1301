from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, time

from billing.models import USAGE_API_FIELDS, USAGE_FIELDS, UsageSnapshot

USAGE_METRIC_PREFIX = "usage."
COLUMN_BY_METRIC = {
    f"{USAGE_METRIC_PREFIX}{api}": column for api, column in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True)
}


def _midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class UsageSnapshotMetricProvider:
    """
    The built-in `usage.*` metrics (settings.METRIC_PROVIDERS names this class): one point per UTC
    day, at midnight, from UsageSnapshot.
    """

    prefix = USAGE_METRIC_PREFIX
    metric_names = tuple(COLUMN_BY_METRIC)
    daily = True  # one point per UTC day; an anomaly leaves the running day out
    announces_changes = True  # every change of a completed day's usage goes through USAGE_CHANGED_HOOKS

    def series_many(self, requests: Sequence) -> dict:
        if not requests:
            return {}
        queryset = UsageSnapshot.objects.filter(
            tenant_id__in={r.tenant_id for r in requests}, day__lte=max(r.until for r in requests).date()
        )
        if all(r.since is not None for r in requests):
            queryset = queryset.filter(day__gte=min(r.since for r in requests).date())
        rows = defaultdict(list)
        for row in queryset.order_by("tenant_id", "day"):
            rows[row.tenant_id].append(row)

        result = {}
        for request in requests:
            column = COLUMN_BY_METRIC[request.metric]
            points = [
                (_midnight(row.day), float(getattr(row, column)))
                for row in rows.get(request.tenant_id, [])
                if request.contains(_midnight(row.day))
                and not (request.completed_periods_only and row.day >= request.until.date())
            ]
            result[request] = points[-1:] if request.latest_only else points
        return result
