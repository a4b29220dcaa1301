from datetime import datetime

from django.db import connection
from django.db.models import F, Prefetch, QuerySet

from alerts.models import Channel
from proactive.models import MetricPoint, RuleChannel, RuleHealth, TriggerRule
from tenants.models import Tenant


def named_channel_ids(rule_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """
    The channels each rule names, ids ascending, only its own tenant's (one query): where
    `TriggerRule.objects.with_channel_ids()` could not read them with the rules.
    """
    named: dict[int, list[int]] = {}
    links = RuleChannel.objects.filter(rule_id__in=rule_ids, channel__tenant_id=F("rule__tenant_id"))
    for rule_id, channel_id in links.order_by("channel_id").values_list("rule_id", "channel_id"):
        named.setdefault(rule_id, []).append(channel_id)
    return {rule_id: tuple(channel_ids) for rule_id, channel_ids in named.items()}


def _with_channels(queryset: QuerySet[TriggerRule]) -> QuerySet[TriggerRule]:
    queryset = queryset.with_channel_ids()
    if connection.vendor != "postgresql":  # no array there: a page's channels in one query more
        queryset = queryset.prefetch_related(
            Prefetch("channels", queryset=Channel.objects.only("id", "tenant_id").order_by("id"))
        )
    return queryset


def trigger_rule_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[TriggerRule]:
    queryset = _with_channels(TriggerRule.objects.filter(tenant=tenant).with_tenant_timezone())
    filters = filters or {}
    for name in ("type", "severity", "enabled"):
        if filters.get(name) is not None:
            queryset = queryset.filter(**{name: filters[name]})
    return queryset


def trigger_rule_get(*, tenant: Tenant, rule_id: int) -> TriggerRule | None:
    return _with_channels(TriggerRule.objects.filter(tenant=tenant, pk=rule_id).with_tenant_timezone()).first()


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
