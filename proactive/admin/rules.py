from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerts.models import Channel
from core.exceptions import ApplicationError
from proactive.admin.charts import backtest_chart
from proactive.engine.backtest import MAX_BACKTEST_DAYS, trigger_rule_backtest
from proactive.engine.schedules import describe_schedule, next_occurrences
from proactive.models import (
    FIELDS_OF_OPTION,
    FIELDS_OF_TYPE,
    UNUSED_FIELD_VALUES,
    MetricPoint,
    RuleHealth,
    RuleType,
    TriggerRule,
    fields_in_use,
)
from proactive.services import (
    RULE_FIELDS,
    metric_wakes_record,
    trigger_rule_build,
    trigger_rule_create,
    trigger_rule_delete,
    trigger_rule_update,
    trigger_rules_set_enabled,
)
from tenants.models import Tenant

RULE_PAGE_DAYS = 7  # the backtest a saved rule's page shows
BACKTEST_TEMPLATE = "admin/proactive/triggerrule/backtest.html"
PREVIEW_DAY_CHOICES = (1, 7, 30, 90)
ALERTS_LISTED = 20
DISABLED = "disabled"
ENGINE_FIELDS = [  # what the engine reports on a rule: shown, never edited
    "health",
    "next_run_at",
    "last_evaluated_at",
    "last_fired_at",
    "last_error",
    "last_error_at",
    "created_at",
    "updated_at",
]
STATUS_COLORS = {RuleHealth.OK: "#2e7d32", RuleHealth.NO_DATA: "#b26a00", RuleHealth.ERROR: "#c62828"}


class TriggerRuleAdminForm(forms.ModelForm):
    # The rule's channels (TriggerRule.channels, through RuleChannel): set by the services on save.
    notify_channels = forms.ModelMultipleChoiceField(
        queryset=Channel.objects.select_related("tenant").order_by("tenant_id", "name"),
        required=False,
        label="Channels",
        help_text="Where this rule's alerts go (each channel's minimum severity and events still apply). "
        "None chosen: every channel of the tenant that wants them.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        channels = self.fields["notify_channels"]
        channels.label_from_instance = lambda channel: f"{channel.tenant_id}: {channel}"
        if self.instance.pk:  # a saved rule: only its own tenant's channels to choose from
            channels.queryset = channels.queryset.filter(tenant_id=self.instance.tenant_id)
            channels.initial = list(self.instance.channels.values_list("pk", flat=True))

    def clean(self):
        """The form shows only the fields of the chosen type and options: what the others hold is dropped."""
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id else None)
        chosen = cleaned.get("notify_channels") or ()
        foreign = [channel for channel in chosen if tenant and channel.tenant_id != tenant.pk]
        if foreign:
            self.add_error(
                "notify_channels", f"{foreign[0]} belongs to tenant {foreign[0].tenant_id}, not {tenant.pk}."
            )
        if cleaned.get("type") in FIELDS_OF_TYPE:
            used = fields_in_use(
                type=cleaned["type"], comparison=cleaned.get("comparison", ""), aggregate=cleaned.get("aggregate", "")
            )
            for name, empty in UNUSED_FIELD_VALUES.items():
                if name not in used and name in self.fields:
                    cleaned[name] = empty
                    setattr(self.instance, name, empty)  # also when the post leaves the field out
                    self._errors.pop(name, None)
        return cleaned


@admin.action(description="Enable selected rules", permissions=["change"])
def enable_rules(modeladmin, request, queryset):
    count = trigger_rules_set_enabled(rules=queryset, enabled=True)
    modeladmin.message_user(request, f"Enabled {count} rule(s).", messages.SUCCESS)


@admin.action(description="Disable selected rules", permissions=["change"])
def disable_rules(modeladmin, request, queryset):
    count = trigger_rules_set_enabled(rules=queryset, enabled=False)
    modeladmin.message_user(request, f"Disabled {count} rule(s).", messages.SUCCESS)


class HealthFilter(admin.SimpleListFilter):
    """What the engine last saw of an enabled rule; disabled rules are their own answer."""

    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [*RuleHealth.choices, (DISABLED, "Disabled")]

    def queryset(self, request, queryset):
        if self.value() == DISABLED:
            return queryset.filter(enabled=False)
        if self.value() in RuleHealth.values:
            return queryset.filter(enabled=True, health=self.value())
        return queryset


def rule_status(rule: TriggerRule) -> str:
    return DISABLED if not rule.enabled else rule.health


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "tenant",
        "type",
        "severity",
        "status",
        "next_run_at",
        "last_fired_at",
        "short_error",
    ]
    list_filter = [HealthFilter, "type", "severity", "tenant"]
    search_fields = ["name", "metric", "schedule", "tenant__id", "tenant__name"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    actions = [enable_rules, disable_rules]
    form = TriggerRuleAdminForm
    change_form_template = "admin/proactive/triggerrule/change_form.html"
    fieldsets = [
        (None, {"fields": ["tenant", "name", "type", "severity", "enabled"]}),
        (
            "Condition",
            {
                "fields": [
                    "schedule",
                    "timezone",
                    "schedule_explained",
                    "metric",
                    "method",
                    "direction",
                    "comparison",
                    "aggregate",
                    "aggregate_minutes",
                    "threshold",
                    "threshold_high",
                    "compare_days",
                    "window_days",
                ]
            },
        ),
        ("Firing and resolving", {"fields": ["for_evaluations", "clear_evaluations", "no_data", "auto_resolve"]}),
        ("Notify", {"fields": ["notify_channels"]}),
        ("Engine", {"fields": ENGINE_FIELDS}),
    ]
    readonly_fields = ["schedule_explained", *ENGINE_FIELDS]

    class Media:
        js = ["proactive/admin/rule_form.js"]

    @admin.display(description="Status", ordering="health")
    def status(self, rule):
        status = rule_status(rule)
        label = "Disabled" if status == DISABLED else RuleHealth(status).label
        return format_html(
            '<span class="pi-status" data-status="{}" style="color:{}">● {}</span>',
            status,
            STATUS_COLORS.get(status, "#777"),
            label,
        )

    @admin.display(description="Last error")
    def short_error(self, rule):
        return (rule.last_error[:80] + "…") if len(rule.last_error) > 80 else rule.last_error

    @admin.display(description="Runs")
    def schedule_explained(self, rule):
        if rule is None or rule.type != RuleType.SCHEDULE or not rule.schedule:
            return "—"
        return _schedule_html(rule.schedule, rule.schedule_timezone)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The form already ran the model's validation; the services add the engine's bookkeeping.
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        if "notify_channels" in form.cleaned_data:
            fields["channels"] = [channel.pk for channel in form.cleaned_data["notify_channels"]]
        if change:
            saved = trigger_rule_update(rule=obj, **fields)
        else:
            saved = trigger_rule_create(tenant=form.cleaned_data["tenant"], **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        trigger_rule_delete(rule=obj)  # locks as the engine does; the rule's alerts stay, unlinked

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            trigger_rule_delete(rule=rule)

    # --- Backtest: on a saved rule's page, and "Preview" of the form's unsaved values -----------

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("preview/", preview, name="proactive_triggerrule_preview"),
            path("<path:object_id>/preview/", preview, name="proactive_triggerrule_preview_saved"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            preview_url = reverse("admin:proactive_triggerrule_preview_saved", args=[obj.pk])
            context["backtest_html"] = render_to_string(
                BACKTEST_TEMPLATE, self.backtest_context(rule=obj, days=RULE_PAGE_DAYS), request
            )
        else:
            preview_url = reverse("admin:proactive_triggerrule_preview")
        context.update(
            preview_url=preview_url,
            preview_day_choices=PREVIEW_DAY_CHOICES,
            rule_page_days=RULE_PAGE_DAYS,
            # What the form's script shows per type and option (the schedule's explanation goes with the schedule).
            fields_of_type={
                "type": {
                    kind: [*fields, "schedule_explained"] if "schedule" in fields else list(fields)
                    for kind, fields in FIELDS_OF_TYPE.items()
                },
                **FIELDS_OF_OPTION,
            },
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def preview_view(self, request, object_id=None):
        """Backtest the form's values without saving them; answers the panel's HTML."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = None
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404
        allowed = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if not allowed:
            raise PermissionDenied
        data = request.POST.copy()
        data["name"] = data.get("name") or "Preview"  # a rule can be previewed before it is named
        form = self.get_form(request, obj, change=obj is not None)(data, instance=obj)
        days = _days(request.POST.get("preview_days"))
        context = {"days": days, "preview": True}
        if not form.is_valid():
            context["errors"] = [(field, error) for field, errors in form.errors.items() for error in errors]
        else:
            fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
            try:
                rule = trigger_rule_build(tenant=obj.tenant if obj else form.cleaned_data["tenant"], **fields)
                context = self.backtest_context(rule=rule, days=days, preview=True)
            except ValidationError as exc:
                context["errors"] = [(field, error) for field, errors in exc.message_dict.items() for error in errors]
            except ApplicationError as exc:
                context["errors"] = [("", exc.message)]
        return TemplateResponse(request, BACKTEST_TEMPLATE, context)

    def backtest_context(self, *, rule: TriggerRule, days: int, preview: bool = False) -> dict:
        context = {"days": days, "preview": preview, "rule": rule}
        try:
            result = trigger_rule_backtest(rule=rule, days=days)
        except ApplicationError as exc:
            return {**context, "errors": [("metric", exc.message)]}
        context.update(
            result=result,
            alerts=result.alerts[:ALERTS_LISTED],
            more_alerts=max(result.alert_count - ALERTS_LISTED, 0),
        )
        if rule.type == RuleType.SCHEDULE:
            if preview:  # a saved rule's page explains its schedule among its fields
                context["schedule_html"] = _schedule_html(rule.schedule, rule.schedule_timezone)
        else:
            context["chart"] = backtest_chart(
                rule=rule, result=result, title=f"{rule.metric}, last {days} day(s), replayed"
            )
        return context


def _days(value) -> int:
    try:
        return min(max(int(value), 1), MAX_BACKTEST_DAYS)
    except (TypeError, ValueError):
        return RULE_PAGE_DAYS


def _schedule_html(schedule: str, zone: str):
    try:
        description = describe_schedule(schedule, zone)
    except ValueError as exc:  # saved before the validator was strict; the engine still runs it
        return format_html('<div class="pi-schedule">{}</div>', str(exc))
    upcoming = next_occurrences(schedule, after=timezone.now(), count=5, timezone=zone)
    return format_html(
        '<div class="pi-schedule"><strong>{}</strong><br>Next: <ol class="pi-next-runs">{}</ol></div>',
        description,
        format_html_join("", "<li>{}</li>", ((_run_time(at, zone),) for at in upcoming)),
    )


def _run_time(at, zone: str) -> str:
    """2026-11-27 09:00 Europe/Berlin (08:00 UTC); the UTC date too when it is another day."""
    if zone == "UTC":
        return f"{at:%Y-%m-%d %H:%M} UTC"
    local = at.astimezone(ZoneInfo(zone))
    utc = f"{at:%H:%M}" if at.date() == local.date() else f"{at:%Y-%m-%d %H:%M}"
    return f"{local:%Y-%m-%d %H:%M} {zone} ({utc} UTC)"


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ["metric", "tenant", "timestamp", "value"]
    list_filter = ["tenant"]
    search_fields = ["metric", "tenant__id"]
    date_hierarchy = "timestamp"
    list_select_related = ["tenant"]
    show_full_result_count = False

    # A point changed by hand changes what its rules read: they wake, as for the metrics API.
    def save_model(self, request, obj, form, change):
        before = MetricPoint.objects.filter(pk=obj.pk).values_list("tenant_id", "metric").first() if change else None
        super().save_model(request, obj, form, change)
        now = timezone.now()
        metric_wakes_record(tenant=obj.tenant, metric=obj.metric, timestamps=[obj.timestamp], now=now)
        if before and before != (obj.tenant_id, obj.metric):  # the series it left changed too
            metric_wakes_record(tenant=Tenant(pk=before[0]), metric=before[1], timestamps=[], now=now)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        metric_wakes_record(tenant=obj.tenant, metric=obj.metric, timestamps=[], now=timezone.now())

    def delete_queryset(self, request, queryset):
        changed = set(queryset.values_list("tenant_id", "metric"))
        super().delete_queryset(request, queryset)
        for tenant_id, metric in changed:
            metric_wakes_record(tenant=Tenant(pk=tenant_id), metric=metric, timestamps=[], now=timezone.now())
