from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone

from core.charts import Line, time_chart
from marketplace.models import TenantWidget, Widget
from marketplace.selectors import widget_first_install_at, widget_installs_over_time
from marketplace.services import WIDGET_FIELDS, widget_register

INSTALLS_CHART_DAYS = 365


class WidgetAdminForm(forms.ModelForm):
    class Meta:
        help_texts = {
            "installs_over_time": (
                "Tenants with the widget installed at the end of each UTC day, since its first install (at most "
                "the last year). Only each tenant's latest install is kept: a tenant that uninstalled and "
                "re-installed counts from the re-install only."
            )
        }


class TenantWidgetInline(admin.TabularInline):
    model = TenantWidget
    extra = 0
    can_delete = False
    fields = ["tenant", "enabled", "installed_version", "installed_at", "uninstalled_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    """Staff register and edit widgets here; validation is the model's, the same as the API's."""

    list_display = ["slug", "name", "version", "active", "installs", "updated_at"]
    list_filter = ["active"]
    search_fields = ["slug", "name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [TenantWidgetInline]
    form = WidgetAdminForm

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(enabled_installs=Count("installs", filter=Q(installs__enabled=True)))
        )

    @admin.display(description="Installed by", ordering="enabled_installs")
    def installs(self, widget):
        return widget.enabled_installs

    @admin.display(description="Installs over time")
    def installs_over_time(self, widget):
        title = "Tenants with the widget installed"
        first_install = widget_first_install_at(widget=widget)
        if first_install is None:
            return time_chart(title=title, empty_message="No tenant has installed this widget yet.")
        now = timezone.now()
        since = max(first_install, now - timedelta(days=INSTALLS_CHART_DAYS - 1))
        if since.date() >= now.date():  # first installed today (or dated later): start the day before,
            since = now - timedelta(days=1)  # as a line of a single point draws nothing
        points = widget_installs_over_time(widget=widget, since=since, until=now)
        return time_chart(
            title=title,
            lines=[Line("Installed", points, step=True)],
            since=points[0][0],
            until=points[-1][0],
            unit="tenants at the end of each day",
            counts=True,
        )

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "slug", "installs_over_time"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # Through the service, so (de)activating a widget also updates its installers' billing.
        fields = {name: form.cleaned_data[name] for name in WIDGET_FIELDS if name in form.cleaned_data}
        saved = widget_register(slug=obj.slug, **fields).widget
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(TenantWidget)
class TenantWidgetAdmin(admin.ModelAdmin):
    """Which tenants installed what. Read-only: installs change through the API, which also bills them."""

    list_display = ["widget", "tenant", "enabled", "installed_version", "installed_at", "uninstalled_at"]
    list_filter = ["enabled", "widget", "tenant"]
    search_fields = ["widget__slug", "tenant__id", "tenant__name"]
    list_select_related = ["widget", "tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
