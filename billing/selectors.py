from dataclasses import dataclass
from datetime import date, timedelta

from billing.models import USAGE_COUNTERS, USAGE_FIELDS, USAGE_GAUGE, BillingUsage
from tenants.models import Tenant


@dataclass(frozen=True, kw_only=True)
class UsageValues:
    tokens_used: int = 0
    tasks_executed: int = 0
    alerts_triggered: int = 0
    active_widgets: int = 0


@dataclass(frozen=True, kw_only=True)
class DayUsage(UsageValues):
    day: date


@dataclass(frozen=True)
class UsageSummary:
    tenant_id: str
    since: date
    until: date
    totals: UsageValues
    points: list[DayUsage]


def billing_usage_summary(*, tenant: Tenant, since: date, until: date) -> UsageSummary:
    """
    One point per day in [since, until] (days without usage as zeros) and totals: counters summed,
    `active_widgets` (a gauge) the peak day's value.
    """
    rows = {row.day: row for row in BillingUsage.objects.filter(tenant=tenant, day__range=(since, until))}
    points = [
        DayUsage(day=day, **({name: getattr(rows[day], name) for name in USAGE_FIELDS} if day in rows else {}))
        for day in (since + timedelta(days=n) for n in range((until - since).days + 1))
    ]
    totals = UsageValues(
        **{name: sum(getattr(point, name) for point in points) for name in USAGE_COUNTERS},
        **{USAGE_GAUGE: max((getattr(point, USAGE_GAUGE) for point in points), default=0)},
    )
    return UsageSummary(tenant_id=tenant.id, since=since, until=until, totals=totals, points=points)
