from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, time

from django.db.models import Q

from billing.models import USAGE_API_FIELDS, USAGE_FIELDS, UsageSnapshot
from proactive.metrics import Point, Series, SeriesRequest
from proactive.validators import USAGE_METRIC_PREFIX

COLUMN_BY_METRIC = {
    f"{USAGE_METRIC_PREFIX}{api}": column for api, column in zip(USAGE_API_FIELDS, USAGE_FIELDS)
}


def _midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class UsageSnapshotMetricProvider:
    """The built-in `usage.*` metrics: one point per UTC day (at midnight) from UsageSnapshot."""

    def series_many(self, requests: Sequence[SeriesRequest]) -> dict[SeriesRequest, Series]:
        if not requests:
            return {}
        condition = Q()
        for request in requests:
            part = Q(tenant_id=request.tenant_id, day__lte=request.until.date())
            if request.since is not None:
                part &= Q(day__gte=request.since.date())
            condition |= part
        rows = defaultdict(list)
        for row in UsageSnapshot.objects.filter(condition).order_by("tenant_id", "day"):
            rows[row.tenant_id].append(row)

        result = {}
        for request in requests:
            column = COLUMN_BY_METRIC[request.metric]
            points = [
                Point(_midnight(row.day), float(getattr(row, column)))
                for row in rows.get(request.tenant_id, [])
                if (request.since is None or _midnight(row.day) >= request.since)
                and _midnight(row.day) <= request.until
            ]
            result[request] = points[-1:] if request.latest_only else points
        return result
