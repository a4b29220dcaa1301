from datetime import date, timedelta

from billing.models import USAGE_API_FIELDS, BillingUsage
from billing.services import usage_point
from tenants.models import Tenant


def billing_usage_summary(*, tenant: Tenant, since: date, until: date) -> dict:
    """
    One point per day in [since, until] (days without usage as zeros) and totals: counters summed,
    `activeWidgets` (a gauge) the peak day's value.
    """
    rows = {row.day: row for row in BillingUsage.objects.filter(tenant=tenant, day__range=(since, until))}
    points = [
        usage_point(rows.get(day), day=day)
        for day in (since + timedelta(days=n) for n in range((until - since).days + 1))
    ]
    totals = {name: sum(point[name] for point in points) for name in USAGE_API_FIELDS}
    totals["activeWidgets"] = max((point["activeWidgets"] for point in points), default=0)
    return {
        "tenantId": tenant.id,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": totals,
        "points": points,
    }
