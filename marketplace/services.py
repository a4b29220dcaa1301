from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.services.usage import usage_set_active_widgets
from core.validators import reject_unknown_fields
from marketplace.models import TenantWidget, Widget
from marketplace.selectors import active_widget_count
from marketplace.validators import validate_config
from tenants.models import Tenant

WIDGET_FIELDS = ("name", "description", "version", "dashboard", "metadata", "active")


@dataclass(frozen=True)
class RegisteredWidget:
    widget: Widget
    created: bool


def widget_register(*, slug: str, **fields) -> RegisteredWidget:
    """Register a widget, or update the one with this slug (fields not given are kept)."""
    reject_unknown_fields(fields, allowed=WIDGET_FIELDS, what="widget")
    for attempt in range(2):
        try:
            with transaction.atomic():
                widget = Widget.objects.select_for_update().filter(slug=slug).first()
                created = widget is None
                if created:
                    missing = [name for name in ("name", "version") if not fields.get(name)]
                    if missing:
                        raise ValidationError({name: ["Required to register a new widget."] for name in missing})
                was_active = widget is not None and widget.active
                widget = widget or Widget(slug=slug)
                for name, value in fields.items():
                    setattr(widget, name, value)
                # The unique index, not a prior SELECT, decides a race between two registrations.
                widget.full_clean(validate_unique=False)
                widget.save()
                if not created and widget.active != was_active:
                    _recount_installers(widget=widget, now=timezone.now())
                return RegisteredWidget(widget=widget, created=created)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class InstallChange:
    install: TenantWidget | None
    changed: bool  # False: it already was in the asked-for state


def _lock_tenant(tenant_id: str) -> None:
    # One tenant's installs change one at a time, so the count written to usage is never stale.
    # NO KEY: rows that merely reference the tenant (alerts, usage) can still be inserted.
    Tenant.objects.select_for_update(no_key=True).filter(pk=tenant_id).values_list("pk", flat=True).first()


def _sync_active_widgets(*, tenant_id: str, now: datetime) -> None:
    """Today's activeWidgets := the tenant's billed installs, counted under the tenant's lock."""
    usage_set_active_widgets(tenant_id=tenant_id, day=now.date(), count=active_widget_count(tenant_id=tenant_id))


def _recount_installers(*, widget: Widget, now: datetime) -> None:
    """A widget was (de)activated: the tenants that have it installed are billed for it or not."""
    tenant_ids = TenantWidget.objects.filter(widget=widget, enabled=True).values_list("tenant_id", flat=True)
    for tenant_id in sorted(tenant_ids):
        _lock_tenant(tenant_id)
        _sync_active_widgets(tenant_id=tenant_id, now=now)


def widget_install(
    *, tenant: Tenant, widget: Widget, config: dict | None = None, now: datetime | None = None
) -> InstallChange:
    """Install, or re-enable, a widget for the tenant. Idempotent; `config` replaces the old one."""
    if config is not None:
        try:
            validate_config(config)
        except ValidationError as exc:
            raise ValidationError({"config": exc.messages}) from None
    now = now or timezone.now()
    with transaction.atomic():
        _lock_tenant(tenant.id)
        install = TenantWidget.objects.filter(tenant=tenant, widget=widget).first()
        if install is not None and install.enabled:
            if config is not None and config != install.config:
                install.config = config
                install.save(update_fields=["config"])
            return InstallChange(install=install, changed=False)
        if install is None:
            install = TenantWidget(tenant=tenant, widget=widget)
        install.enabled = True
        install.installed_at = now
        install.uninstalled_at = None
        install.installed_version = widget.version
        if config is not None:
            install.config = config
        install.save()
        _sync_active_widgets(tenant_id=tenant.id, now=now)
    return InstallChange(install=install, changed=True)


def widget_uninstall(*, tenant: Tenant, widget: Widget, now: datetime | None = None) -> InstallChange:
    """Uninstall: the install is disabled (kept for history). Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_tenant(tenant.id)
        install = TenantWidget.objects.filter(tenant=tenant, widget=widget, enabled=True).first()
        if install is None:
            return InstallChange(install=None, changed=False)
        install.enabled = False
        install.uninstalled_at = now
        install.save(update_fields=["enabled", "uninstalled_at"])
        _sync_active_widgets(tenant_id=tenant.id, now=now)
    return InstallChange(install=install, changed=True)
