from datetime import datetime

from django.db.models import Prefetch, QuerySet

from alerts.models import Channel
from proactive.models import MetricPoint, RuleHealth, TriggerRule
from tenants.models import Tenant

_CHANNEL_IDS = Prefetch("channels", queryset=Channel.objects.only("id").order_by("id"))


def trigger_rule_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[TriggerRule]:
    queryset = TriggerRule.objects.filter(tenant=tenant).with_tenant_timezone().prefetch_related(_CHANNEL_IDS)
    filters = filters or {}
    for name in ("type", "severity", "enabled"):
        if filters.get(name) is not None:
            queryset = queryset.filter(**{name: filters[name]})
    return queryset


def trigger_rule_get(*, tenant: Tenant, rule_id: int) -> TriggerRule | None:
    return (
        TriggerRule.objects.filter(tenant=tenant, pk=rule_id)
        .with_tenant_timezone()
        .prefetch_related(_CHANNEL_IDS)
        .first()
    )


def metric_point_list(
    *, tenant: Tenant, metric: str, since: datetime | None, until: datetime | None
) -> QuerySet[MetricPoint]:
    queryset = MetricPoint.objects.filter(tenant=tenant, metric=metric)
    if since is not None:
        queryset = queryset.filter(timestamp__gte=since)
    if until is not None:
        queryset = queryset.filter(timestamp__lte=until)
    return queryset


def trigger_rules_needing_attention(*, tenant: Tenant) -> QuerySet[TriggerRule]:
    """Enabled rules whose last evaluation failed or found no data: they watch nothing right now."""
    return TriggerRule.objects.filter(
        tenant=tenant, enabled=True, health__in=[RuleHealth.ERROR, RuleHealth.NO_DATA]
    ).order_by("health", "name")
