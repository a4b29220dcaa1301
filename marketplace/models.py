from django.db import models
from django.db.models import Q

from marketplace.validators import (
    validate_config,
    validate_dashboard,
    validate_metadata,
    validate_semver,
    validate_widget_slug,
)
from tenants.models import Tenant


class Widget(models.Model):
    """A dashboard widget in the marketplace, registered by staff."""

    slug = models.CharField(max_length=64, unique=True, validators=[validate_widget_slug])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    version = models.CharField(max_length=64, validators=[validate_semver], help_text="Semantic version, e.g. 1.2.0")
    dashboard = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_dashboard],
        help_text='What the widget adds to the dashboard, e.g. {"tile": {"title": "Revenue radar", "size": "md"}}',
    )
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_metadata])
    active = models.BooleanField(default=True, help_text="Inactive widgets are hidden and cannot be installed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=~Q(slug=""), name="widget_slug_not_empty")]

    def __str__(self):
        return f"{self.name} ({self.slug} {self.version})"


class TenantWidget(models.Model):
    """A tenant's install of a widget. Uninstalling keeps the row (disabled) for history."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="widget_installs", db_index=False)
    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="installs")
    enabled = models.BooleanField(default=True)
    installed_at = models.DateTimeField()
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    installed_version = models.CharField(max_length=64)
    config = models.JSONField(default=dict, blank=True, validators=[validate_config])

    class Meta:
        ordering = ["-installed_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "widget"], name="tenant_widget_unique"),
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(uninstalled_at__isnull=True),
                name="tenant_widget_enabled_is_installed",
            ),
        ]
        indexes = [models.Index(fields=["tenant"], condition=Q(enabled=True), name="tenant_widget_enabled")]

    def __str__(self):
        return f"{self.widget_id} for {self.tenant_id}"
