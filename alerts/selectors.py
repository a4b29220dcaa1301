from django.db.models import Count, Max, Prefetch, QuerySet, TextField, Value
from django.db.models.functions import Cast, Concat

from alerts.models import Alert, AlertEvent, AlertStatus, Channel, Delivery, DeliveryAttempt, Notification, Severity
from core.db import IsoDateTime
from tenants.models import Tenant


def alert_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[Alert]:
    return _alerts_filtered(Alert.objects.filter(tenant=tenant), filters).prefetch_related(
        Prefetch("history", queryset=AlertEvent.objects.order_by("at", "id"))
    )


def _alerts_filtered(queryset: QuerySet[Alert], filters: dict | None) -> QuerySet[Alert]:
    filters = filters or {}
    if filters.get("status"):
        queryset = queryset.filter(status__in=filters["status"])
    if filters.get("severity"):
        queryset = queryset.filter(severity__in=filters["severity"])
    if filters.get("rule_id") is not None:
        queryset = queryset.filter(rule_id=filters["rule_id"])
    return queryset


def alert_bodies(*, tenant: Tenant, body, filters: dict | None = None) -> QuerySet[dict]:
    """
    The alerts `alert_list` finds as rows of `body`, an expression of the row (core.outputs.SQLOutput:
    the JSON the API returns, history included, made in the same query), and `position`: the
    `(triggered_at, id)` that pages are cut by, as a cursor holds it (`<time>|<id>`, made by the
    database: a page's cursor needs no timestamp objects).
    """
    return _alerts_filtered(Alert.objects.filter(tenant=tenant), filters).values(
        body=body,
        position=Concat(IsoDateTime("triggered_at"), Value("|"), Cast("id", TextField()), output_field=TextField()),
    )


def alert_body_get(*, tenant: Tenant, alert_id: int, body) -> str | None:
    row = alert_bodies(tenant=tenant, body=body).filter(pk=alert_id).order_by().first()
    return row["body"] if row else None


def alert_get(*, tenant: Tenant, alert_id: int) -> Alert | None:
    return alert_list(tenant=tenant).filter(pk=alert_id).first()


def notification_list(*, tenant: Tenant, unread: bool | None = None) -> QuerySet[Notification]:
    queryset = Notification.objects.filter(tenant=tenant)
    if unread is not None:
        queryset = queryset.filter(read_at__isnull=unread)
    return queryset


def notification_get(*, tenant: Tenant, notification_id: int) -> Notification | None:
    return Notification.objects.filter(tenant=tenant, pk=notification_id).first()


def alert_open_counts_by_severity(*, tenant: Tenant) -> dict[str, int]:
    """Open (not resolved) alerts per severity, every severity present (zero if none)."""
    counts = dict(
        Alert.objects.filter(tenant=tenant)
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("severity")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {severity: counts.get(severity, 0) for severity in Severity.values}


def alert_rules_of_tenant(*, tenant_id: str) -> list[tuple[int, str]]:
    """(rule id, name on its latest alert) of each rule that raised one of the tenant's alerts, by name."""
    latest = (
        Alert.objects.filter(tenant_id=tenant_id, rule__isnull=False)
        .values("rule_id")
        .annotate(latest=Max("id"))
        .values("latest")
    )
    return sorted(
        Alert.objects.filter(pk__in=latest).values_list("rule_id", "rule_name"), key=lambda rule: (rule[1], rule[0])
    )


def channel_list(*, tenant: Tenant) -> QuerySet[Channel]:
    return Channel.objects.filter(tenant=tenant)


def channel_get(*, tenant: Tenant, channel_id: int) -> Channel | None:
    return channel_list(tenant=tenant).filter(pk=channel_id).first()


def delivery_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[Delivery]:
    filters = filters or {}
    queryset = Delivery.objects.filter(tenant=tenant).prefetch_related(
        Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("at", "id"))
    )
    if filters.get("channel_id") is not None:
        queryset = queryset.filter(channel_id=filters["channel_id"])
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("digest_id") is not None:
        queryset = queryset.filter(digest_id=filters["digest_id"])
    return queryset
