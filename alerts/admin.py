from django.contrib import admin

from alerts.models import Alert, AlertEvent, Notification


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts change state through the API (and its history), not by hand."""

    list_display = ["id", "rule_name", "tenant", "severity", "status", "triggered_at", "acknowledged_at", "resolved_at"]
    list_filter = ["status", "severity", "rule_type", "tenant"]
    search_fields = ["rule_name", "tenant__id"]
    date_hierarchy = "triggered_at"
    list_select_related = ["tenant"]
    inlines = [AlertEventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "tenant", "severity", "alert_status", "created_at", "read_at"]
    list_filter = ["alert_status", "severity", "tenant"]
    search_fields = ["title", "tenant__id"]
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
