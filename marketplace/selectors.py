from django.db.models import F, FilteredRelation, Q, QuerySet

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
