from django.contrib import admin, messages

from billing.models import BillingEvent, BillingEventOutcome, BillingUsage, UsageSnapshot
from billing.services.webhook import billing_event_replay


class ReadOnlyUsageAdmin(admin.ModelAdmin):
    """Usage rows change only through atomic increments (billing.services.usage), never by hand."""

    list_display = [
        "tenant",
        "day",
        "tokens_used",
        "tasks_executed",
        "alerts_triggered",
        "active_widgets",
        "updated_at",
    ]
    list_filter = ["tenant"]
    search_fields = ["tenant__id", "tenant__name"]
    date_hierarchy = "day"
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(BillingUsage, ReadOnlyUsageAdmin)
admin.site.register(UsageSnapshot, ReadOnlyUsageAdmin)


@admin.action(description="Replay selected unmatched events")
def replay_events(modeladmin, request, queryset):
    outcomes = [
        billing_event_replay(event=event).outcome for event in queryset.filter(outcome=BillingEventOutcome.UNMATCHED)
    ]
    summary = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))) or "nothing to replay"
    modeladmin.message_user(request, f"Replayed {len(outcomes)} event(s): {summary}.", messages.SUCCESS)


@admin.register(BillingEvent)
class BillingEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "tenant", "outcome", "usage_day", "received_at", "reason"]
    list_filter = ["outcome", "type", "tenant"]
    search_fields = ["event_id", "type", "tenant__id"]
    date_hierarchy = "received_at"
    list_select_related = ["tenant"]
    actions = [replay_events]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
