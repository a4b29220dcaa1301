from django.db.models import Prefetch, QuerySet

from alerts.models import Alert, AlertEvent, Notification
from tenants.models import Tenant


def alert_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[Alert]:
    filters = filters or {}
    queryset = Alert.objects.filter(tenant=tenant).prefetch_related(
        Prefetch("history", queryset=AlertEvent.objects.order_by("at", "id"))
    )
    if filters.get("status"):
        queryset = queryset.filter(status__in=filters["status"])
    if filters.get("severity"):
        queryset = queryset.filter(severity__in=filters["severity"])
    if filters.get("rule_id") is not None:
        queryset = queryset.filter(rule_id=filters["rule_id"])
    return queryset


def alert_get(*, tenant: Tenant, alert_id: int) -> Alert | None:
    return alert_list(tenant=tenant).filter(pk=alert_id).first()


def notification_list(*, tenant: Tenant, unread: bool | None = None) -> QuerySet[Notification]:
    queryset = Notification.objects.filter(tenant=tenant)
    if unread is not None:
        queryset = queryset.filter(read_at__isnull=unread)
    return queryset


def notification_get(*, tenant: Tenant, notification_id: int) -> Notification | None:
    return Notification.objects.filter(tenant=tenant, pk=notification_id).first()
