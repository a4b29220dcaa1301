from datetime import datetime

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef, Prefetch, QuerySet

from alerts.models import Channel
from proactive.models import MetricPoint, RuleChannel, RuleHealth, TriggerRule
from tenants.models import Tenant


def _with_channel_ids(queryset: QuerySet[TriggerRule]) -> QuerySet[TriggerRule]:
    """
    Each rule's channels, as `channel_ids` (ordered): on PostgreSQL an array in the rules' own
    query — a prefetch is a second query and a model per channel, ~3 ms of a page of 50 rules.
    """
    if connection.vendor != "postgresql":
        return queryset.prefetch_related(Prefetch("channels", queryset=Channel.objects.only("id").order_by("id")))
    links = RuleChannel.objects.filter(rule_id=OuterRef("pk")).order_by("channel_id").values("channel_id")
    return queryset.annotate(channel_ids=ArraySubquery(links))


def trigger_rule_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[TriggerRule]:
    queryset = _with_channel_ids(TriggerRule.objects.filter(tenant=tenant).with_tenant_timezone())
    filters = filters or {}
    for name in ("type", "severity", "enabled"):
        if filters.get(name) is not None:
            queryset = queryset.filter(**{name: filters[name]})
    return queryset


def trigger_rule_get(*, tenant: Tenant, rule_id: int) -> TriggerRule | None:
    return _with_channel_ids(TriggerRule.objects.filter(tenant=tenant, pk=rule_id).with_tenant_timezone()).first()


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
