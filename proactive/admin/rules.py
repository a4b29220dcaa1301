from django.contrib import admin, messages

from proactive.models import MetricPoint, TriggerRule
from proactive.services import (
    RULE_FIELDS,
    trigger_rule_create,
    trigger_rule_update,
    trigger_rules_set_enabled,
)


@admin.action(description="Enable selected rules")
def enable_rules(modeladmin, request, queryset):
    count = trigger_rules_set_enabled(rules=queryset, enabled=True)
    modeladmin.message_user(request, f"Enabled {count} rule(s).", messages.SUCCESS)


@admin.action(description="Disable selected rules")
def disable_rules(modeladmin, request, queryset):
    count = trigger_rules_set_enabled(rules=queryset, enabled=False)
    modeladmin.message_user(request, f"Disabled {count} rule(s).", messages.SUCCESS)


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tenant",
        "type",
        "severity",
        "enabled",
        "health",
        "next_run_at",
        "last_fired_at",
        "short_error",
    ]
    list_filter = ["type", "severity", "enabled", "health", "tenant"]
    search_fields = ["name", "metric", "schedule", "tenant__id", "tenant__name"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    actions = [enable_rules, disable_rules]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "type", "severity", "enabled"]}),
        ("Condition", {"fields": ["schedule", "metric", "threshold", "window_days", "auto_resolve"]}),
        (
            "Engine",
            {
                "fields": [
                    "health",
                    "next_run_at",
                    "last_evaluated_at",
                    "last_fired_at",
                    "last_error",
                    "last_error_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "health",
        "next_run_at",
        "last_evaluated_at",
        "last_fired_at",
        "last_error",
        "last_error_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Last error")
    def short_error(self, rule):
        return (rule.last_error[:80] + "…") if len(rule.last_error) > 80 else rule.last_error

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The form already ran the model's validation; the services add the engine's bookkeeping.
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        if change:
            saved = trigger_rule_update(rule=obj, **fields)
        else:
            saved = trigger_rule_create(tenant=form.cleaned_data["tenant"], **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ["metric", "tenant", "timestamp", "value"]
    list_filter = ["tenant"]
    search_fields = ["metric", "tenant__id"]
    date_hierarchy = "timestamp"
    list_select_related = ["tenant"]
    show_full_result_count = False
