from datetime import UTC, datetime, time, timedelta

from django.db.models import Count, F, FilteredRelation, Min, Q, QuerySet
from django.db.models.functions import TruncDate

from marketplace.models import TenantWidget, Widget
from tenants.models import Tenant


def widget_list_for_tenant(*, tenant: Tenant) -> QuerySet[Widget]:
    """Active widgets, each with this tenant's install (if any) in `install_*` attributes."""
    return (
        Widget.objects.filter(active=True)
        .annotate(install=FilteredRelation("installs", condition=Q(installs__tenant=tenant)))
        .annotate(
            install_enabled=F("install__enabled"),
            install_installed_at=F("install__installed_at"),
            install_uninstalled_at=F("install__uninstalled_at"),
            install_version=F("install__installed_version"),
            install_config=F("install__config"),
        )
    )


def widget_get_for_tenant(*, tenant: Tenant, slug: str) -> Widget | None:
    return widget_list_for_tenant(tenant=tenant).filter(slug=slug).first()


def widget_get_active(*, slug: str) -> Widget | None:
    return Widget.objects.filter(slug=slug, active=True).first()


def widget_get(*, slug: str) -> Widget | None:
    """Any widget, active or not: a tenant may always uninstall what it has."""
    return Widget.objects.filter(slug=slug).first()


def active_widget_count(*, tenant_id: str) -> int:
    """What a tenant is billed for as activeWidgets: its enabled installs of active widgets."""
    return TenantWidget.objects.filter(tenant_id=tenant_id, enabled=True, widget__active=True).count()


def widget_first_install_at(*, widget: Widget) -> datetime | None:
    """When the earliest of the widget's current install rows was made (None: never installed)."""
    installs = TenantWidget.objects.filter(widget=widget).exclude(enabled=False, uninstalled_at__isnull=True)
    return installs.aggregate(first=Min("installed_at"))["first"]


def widget_installs_over_time(*, widget: Widget, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """How many tenants had the widget installed at the end of each UTC day from `since`'s day to `until`'s.

    One point per day, at the day's midnight (UTC), zeros included; one query, whatever the number
    of days or tenants. A tenant counts on day D if it installed the widget before D ended and had
    not uninstalled it by then: installed and uninstalled on the same day, it never counts.

    Only each tenant's latest install is known (a re-install overwrites `installed_at` and clears
    `uninstalled_at`), so a tenant that uninstalled and re-installed counts from the re-install
    only, and an earlier period it had the widget is missing. A disabled row with no
    `uninstalled_at` (not made by the services) is left out: when it stopped is unknown.
    """
    first_day, last_day = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    if last_day < first_day:
        return []
    days = (last_day - first_day).days + 1
    window_end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=UTC)
    first_day_end = datetime.combine(first_day + timedelta(days=1), time.min, tzinfo=UTC)
    # Installs grouped by (install day, uninstall day): at most one row per distinct pair.
    spans = (
        TenantWidget.objects.filter(widget=widget, installed_at__lt=window_end)
        .filter(Q(uninstalled_at__isnull=True) | Q(uninstalled_at__gte=first_day_end))
        .exclude(enabled=False, uninstalled_at__isnull=True)
        .values(start=TruncDate("installed_at", tzinfo=UTC), stop=TruncDate("uninstalled_at", tzinfo=UTC))
        .annotate(tenants=Count("pk"))
        .order_by()
    )
    # Counted on the days [start, stop): +n on the first, -n on the one after the last.
    changes = [0] * (days + 1)
    for span in spans:
        if span["stop"] is not None and span["stop"] <= span["start"]:
            continue  # gone by the end of the day it was installed: never counted
        changes[max((span["start"] - first_day).days, 0)] += span["tenants"]
        if span["stop"] is not None:
            changes[min((span["stop"] - first_day).days, days)] -= span["tenants"]
    points, installed = [], 0
    for index in range(days):
        installed += changes[index]
        points.append((datetime.combine(first_day + timedelta(days=index), time.min, tzinfo=UTC), installed))
    return points
