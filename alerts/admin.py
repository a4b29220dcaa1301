"""
Alerts in the staff console. Staff work alerts here (acknowledge, resolve, snooze) through the same
services as the API, so the history records them as `user:<username>`; nothing else is editable,
and nothing is deleted.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from alerts.deliveries import channel_send_test, deliveries_retry
from alerts.models import (
    Alert,
    AlertBudget,
    AlertEvent,
    AlertStatus,
    Channel,
    ChannelDigest,
    ChannelEvent,
    Delivery,
    DeliveryAttempt,
    DeliveryEvent,
    Notification,
)
from alerts.selectors import alert_rules_of_tenant
from alerts.services import CHANNEL_FIELDS, alert_acknowledge, alert_resolve, alert_snooze, channel_save
from core.exceptions import ApplicationError
from tenants.models import Tenant
from tenants.principals import actor_label

SNOOZE_DURATIONS = {
    "15m": ("15 minutes", timedelta(minutes=15)),
    "1h": ("1 hour", timedelta(hours=1)),
    "4h": ("4 hours", timedelta(hours=4)),
    "1d": ("1 day", timedelta(days=1)),
    "7d": ("7 days", timedelta(days=7)),
}
SNOOZE_CHOICES = [(key, label) for key, (label, _) in SNOOZE_DURATIONS.items()]


def readable_number(value) -> str:
    """Rounded for reading: 1234567.891 → 1,234,568; 3.14159 → 3.14; 0.000123456 → 0.000123."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—" if value is None else str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1 or value == 0:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def evidence_rows(payload: dict) -> list[tuple[str, str]]:
    """What the engine compared with what, as (label, value) rows for people."""
    if "schedule" in payload:
        zone = payload.get("timezone", "UTC")  # absent: read in UTC
        rows = [
            (f"Schedule (cron, {zone})", payload.get("schedule", "—")),
            ("Scheduled for", _utc(payload.get("scheduledFor"))),
        ]
        if "scheduledForLocal" in payload:
            rows.append((f"Scheduled for ({zone})", payload["scheduledForLocal"].replace("T", " ")))
        return rows
    metric = payload.get("metric", "the metric")
    if payload.get("noData"):
        looked_at = (
            f"the last {payload['aggregateMinutes']} minute(s)"
            if "aggregateMinutes" in payload
            else f"the last {payload.get('windowDays', '?')} day(s)"
        )
        return [("Metric", metric), ("No data", f"no datapoints in {looked_at} (the rule alerts on no data)")]
    observed = readable_number(payload.get("value"))
    if "aggregate" in payload:
        observed += (
            f" ({payload['aggregate']} of {payload.get('points', '?')} point(s) over {payload['aggregateMinutes']} min)"
        )
    rows = [("Metric", metric), ("Observed value", observed)]
    if "median" in payload:
        rows += _robust_rows(payload)
    elif "zScore" in payload or "mean" in payload:
        mean, std, z_limit = payload.get("mean"), payload.get("std"), payload.get("threshold")
        z = payload.get("zScore")
        rows += [
            (
                "Compared with",
                f"the mean ± {readable_number(z_limit)}σ of {payload.get('points', '?')} point(s) "
                f"over {payload.get('windowDays', '?')} day(s)",
            ),
            ("Mean", readable_number(mean)),
            ("Standard deviation (σ)", readable_number(std)),
        ]
        if all(isinstance(v, int | float) for v in (mean, std, z_limit)):
            rows.append(
                (
                    "Normal band",
                    f"{readable_number(mean - z_limit * std)} to {readable_number(mean + z_limit * std)}",
                )
            )
        shown_z = "unbounded (the history was constant)" if payload.get("constantHistory") else readable_number(z)
        rows.append(("z-score", f"{shown_z}σ (fires at {_limit(payload)})"))
    else:
        rows += _threshold_rows(payload)
    if "forEvaluations" in payload:
        rows.append(
            ("Breaching for", f"{payload.get('breachingEvaluations', '?')} of {payload['forEvaluations']} evaluations")
        )
    rows.append(("Observed at", _utc(payload.get("observedAt"))))
    return rows


def _limit(payload: dict) -> str:
    """Where an anomaly fires: ±3σ, or +3σ (up only) / −3σ (down only)."""
    limit = readable_number(payload.get("threshold"))
    direction = payload.get("direction", "both")
    if direction == "both":
        return f"±{limit}σ"
    return f"{'+' if direction == 'up' else '−'}{limit}σ, {direction} only"


def _season(payload: dict) -> str:
    weekday, hour = payload.get("seasonWeekday"), payload.get("seasonHour")
    days = f"{weekday}s" if weekday else "any day"
    if hour is None:
        return days
    return f"{days} {hour:02d}:00–{(hour + 1) % 24:02d}:00 {payload.get('timezone', 'UTC')}"


def _robust_rows(payload: dict) -> list[tuple[str, str]]:
    median, spread, limit = payload.get("median"), payload.get("spread"), payload.get("threshold")
    if payload.get("method") == "seasonal":
        method = "seasonal (median and MAD of the same hour and weekday)"
        against = f"{payload.get('seasonPoints', '?')} earlier point(s) of {_season(payload)}"
    else:
        method = "robust (median and MAD)"
        against = (
            f"{max(payload.get('points', 1) - 1, 0)} earlier point(s) over {payload.get('windowDays', '?')} day(s)"
        )
    rows = [
        ("Method", method),
        ("Compared with", f"the median ± {readable_number(limit)}σ of {against}"),
        ("Median", readable_number(median)),
        ("MAD", readable_number(payload.get("mad"))),
        ("Robust σ", readable_number(spread)),
    ]
    if all(isinstance(v, int | float) for v in (median, spread, limit)):
        rows.append(
            ("Normal band", f"{readable_number(median - limit * spread)} to {readable_number(median + limit * spread)}")
        )
    score = (
        "unbounded (the history was constant)"
        if payload.get("constantHistory")
        else readable_number(payload.get("score"))
    )
    rows.append(("Score", f"{score}σ (fires at {_limit(payload)})"))
    return rows


def _threshold_rows(payload: dict) -> list[tuple[str, str]]:
    comparison, threshold = payload.get("comparison", "above"), readable_number(payload.get("threshold"))
    if comparison in ("outside", "inside"):
        return [("Compared with", f"{comparison} {threshold} to {readable_number(payload.get('thresholdHigh'))}")]
    if comparison in ("changeAbove", "changeBelow"):
        return [
            (
                "Compared with",
                f"{readable_number(payload.get('baseline'))} {payload.get('compareDays', '?')} day(s) earlier "
                f"({_utc(payload.get('baselineAt'))})",
            ),
            (
                "Change",
                f"{readable_number(payload.get('changePercent'))}% — fires "
                f"{'above' if comparison == 'changeAbove' else 'below'} {threshold}%",
            ),
        ]
    return [("Compared with", f"{comparison} {threshold} (threshold)")]


def _utc(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC") if iso else "—"


class AlertActionForm(helpers.ActionForm):
    snooze_for = forms.ChoiceField(choices=[("", "Snooze for…"), *SNOOZE_CHOICES], required=False, label="Snooze for")


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields
    verbose_name_plural = "History"

    def has_add_permission(self, request, obj=None):
        return False


class RuleFilter(admin.SimpleListFilter):
    """The rules that raised the chosen tenant's alerts (or the only tenant's): all tenants' could be many."""

    title = "rule (of the chosen tenant)"
    parameter_name = "rule"

    def lookups(self, request, model_admin):
        tenant_id = request.GET.get("tenant__id__exact")
        if not tenant_id:
            only_tenant = list(Tenant.objects.values_list("id", flat=True)[:2])  # no tenant filter shows then
            if len(only_tenant) != 1:
                return []
            tenant_id = only_tenant[0]
        return [(str(rule_id), name) for rule_id, name in alert_rules_of_tenant(tenant_id=tenant_id)]

    def has_output(self):
        return True  # shown even without choices, so its title says how to get them

    def queryset(self, request, queryset):
        if self.value():
            try:
                return queryset.filter(rule_id=int(self.value()))
            except ValueError:
                return queryset.none()
        return queryset


MAX_WORKED_AT_ONCE = 500  # one request works this many alerts at most (each in its own transaction)


@admin.action(description="Acknowledge selected alerts", permissions=["work"])
def acknowledge_alerts(modeladmin, request, queryset):
    modeladmin.work_many(
        request, queryset, "Acknowledged", lambda alert, actor: alert_acknowledge(alert=alert, actor=actor)
    )


@admin.action(description="Resolve selected alerts", permissions=["work"])
def resolve_alerts(modeladmin, request, queryset):
    modeladmin.work_many(
        request,
        queryset,
        "Resolved",
        lambda alert, actor: alert_resolve(alert=alert, actor=actor, reason="from the admin"),
    )


@admin.action(description="Snooze selected alerts (choose for how long)", permissions=["work"])
def snooze_alerts(modeladmin, request, queryset):
    duration = SNOOZE_DURATIONS.get(request.POST.get("snooze_for", ""))
    if duration is None:
        modeladmin.message_user(request, "Choose how long to snooze for; nothing was changed.", messages.ERROR)
        return
    until = timezone.now() + duration[1]
    modeladmin.work_many(
        request,
        queryset,
        f"Snoozed for {duration[0]}",
        lambda alert, actor: alert_snooze(alert=alert, until=until, actor=actor),
    )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "rule_name",
        "tenant",
        "severity",
        "status",
        "observed_value",
        "short_reason",
        "triggered_at",
    ]
    list_display_links = ["id", "rule_name"]
    list_filter = ["status", "severity", "tenant", RuleFilter, "rule_type"]
    search_fields = ["rule_name", "tenant__id"]
    date_hierarchy = "triggered_at"
    list_select_related = ["tenant"]
    show_full_result_count = False  # no second COUNT(*) over every alert on each filtered page
    inlines = [AlertEventInline]
    actions = [acknowledge_alerts, resolve_alerts, snooze_alerts]
    action_form = AlertActionForm
    change_form_template = "admin/alerts/alert/change_form.html"
    why_fields = ["reason", "evidence"]
    fieldsets = [
        (None, {"fields": ["tenant", "rule", "rule_name", "rule_type", "severity", "status"]}),
        ("When", {"fields": ["triggered_at", "acknowledged_at", "snoozed_until", "resolved_at"]}),
    ]
    readonly_fields = ["reason", "evidence"]

    def get_fieldsets(self, request, obj=None):
        return [*self.fieldsets, ("Why it fired", {"fields": self.why_fields})]

    # --- Reading -----------------------------------------------------------------------------

    @admin.display(description="Observed value")
    def observed_value(self, alert):
        return readable_number(alert.payload.get("value")) if "value" in alert.payload else "—"

    @admin.display(description="Reason")
    def short_reason(self, alert):
        reason = alert.payload.get("reason", "")
        return (reason[:90] + "…") if len(reason) > 90 else reason

    @admin.display(description="Reason")
    def reason(self, alert):
        return alert.payload.get("reason", "—")

    @admin.display(description="Evidence")
    def evidence(self, alert):
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", evidence_rows(alert.payload))
        return format_html(
            '<table class="pi-evidence">{}</table>'
            "<details><summary>Raw payload (JSON)</summary><pre>{}</pre></details>",
            rows,
            json.dumps(alert.payload, indent=2, sort_keys=True),
        )

    # --- Working alerts ----------------------------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # fields never change by hand; the work actions below change the status

    def has_delete_permission(self, request, obj=None):
        return False  # alerts and their history are the record: resolve, never delete

    def has_work_permission(self, request, obj=None):
        return request.user.has_perm("alerts.change_alert")

    def work_many(self, request, queryset, done: str, change) -> None:
        """Apply `change` to each selected alert in its own transaction; report what was skipped and why."""
        selected = queryset.count()
        if selected > MAX_WORKED_AT_ONCE:
            self.message_user(
                request,
                f"{selected} alerts selected; work at most {MAX_WORKED_AT_ONCE} at a time (filter the list first). "
                "Nothing was changed.",
                messages.ERROR,
            )
            return
        actor = actor_label(request.user)
        changed, skipped = 0, []
        for alert in queryset.order_by("pk"):
            try:
                change(alert, actor)
                changed += 1
            except (ApplicationError, ValidationError) as exc:
                skipped.append(f"#{alert.pk}: {_message(exc)}")
        self.message_user(request, f"{done} {changed} alert(s).", messages.SUCCESS if changed else messages.WARNING)
        if skipped:
            self.message_user(request, f"Skipped {len(skipped)}: " + "; ".join(skipped), messages.WARNING)

    def get_urls(self):
        work = self.admin_site.admin_view(self.work_view)
        return [path("<int:alert_id>/work/", work, name="alerts_alert_work"), *super().get_urls()]

    def work_view(self, request, alert_id: int):
        """The buttons on an alert's page: acknowledge, resolve, or snooze for a chosen duration."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:alerts_alert_change", args=[alert_id]))
        if not self.has_work_permission(request):
            raise PermissionDenied
        alert = get_object_or_404(Alert, pk=alert_id)
        actor = actor_label(request.user)
        action = request.POST.get("action")
        try:
            if action == "acknowledge":
                alert_acknowledge(alert=alert, actor=actor)
                done = "Acknowledged"
            elif action == "resolve":
                alert_resolve(alert=alert, actor=actor, reason="from the admin")
                done = "Resolved"
            elif action == "snooze" and request.POST.get("snooze_for") in SNOOZE_DURATIONS:
                label, duration = SNOOZE_DURATIONS[request.POST["snooze_for"]]
                alert_snooze(alert=alert, until=timezone.now() + duration, actor=actor)
                done = f"Snoozed for {label}:"
            else:
                self.message_user(request, "Unknown action or snooze duration; nothing was changed.", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:alerts_alert_change", args=[alert_id]))
            self.message_user(request, f"{done} alert #{alert.pk}.", messages.SUCCESS)
        except (ApplicationError, ValidationError) as exc:
            self.message_user(request, f"Alert #{alert.pk} was not changed: {_message(exc)}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:alerts_alert_change", args=[alert_id]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            can_work=obj is not None and self.has_work_permission(request, obj),
            work_url=reverse("admin:alerts_alert_work", args=[obj.pk]) if obj else "",
            snooze_choices=SNOOZE_CHOICES,
            alert_open=obj is not None and obj.status != AlertStatus.RESOLVED,
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


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


class ChannelAdminForm(forms.ModelForm):
    """The secret is write-only: shown masked, kept when left empty; a webhook without one gets a new one."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook: a whsec_ secret (empty: generated, shown once). PagerDuty: the routing key. "
        "Left empty on an existing channel, the saved one stays.",
    )
    events = forms.MultipleChoiceField(
        choices=ChannelEvent.choices, widget=forms.CheckboxSelectMultiple, initial=ChannelEvent.values
    )

    class Meta:
        model = Channel
        fields = ["tenant", *CHANNEL_FIELDS]
        widgets = {
            "quiet_hours_start": forms.TimeInput(format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(format="%H:%M"),
        }

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("secret") and self.instance.pk:
            cleaned["secret"] = Channel.objects.values_list("secret", flat=True).get(pk=self.instance.pk)
        self.instance.secret = cleaned.get("secret", "")
        return cleaned


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = [
        "name",
        "tenant",
        "kind",
        "min_severity",
        "subscribed_events",
        "when",
        "enabled",
        "secret_shown",
    ]
    list_filter = ["kind", "enabled", "min_severity", "digest"]
    readonly_fields = ["next_digest_at"]
    search_fields = ["name", "tenant__id", "tenant__name"]
    list_select_related = ["tenant"]
    actions = ["send_test"]

    def get_readonly_fields(self, request, obj=None):
        # A channel stays with its tenant: its deliveries, digests and the rules naming it are the tenant's.
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    @admin.action(description="Send a test notification")
    def send_test(self, request, queryset):
        for channel in queryset:
            result = channel_send_test(channel=channel)
            if result.ok:
                self.message_user(request, f"{channel}: accepted ({result.status_code}, {result.duration_ms:.0f} ms).")
            else:
                self.message_user(request, f"{channel}: not delivered — {result.error}", level=messages.ERROR)

    @admin.display(description="events")
    def subscribed_events(self, channel):
        return ", ".join(channel.events)

    @admin.display(description="sends")
    def when(self, channel):
        if channel.digest == ChannelDigest.DAILY:
            return f"daily digest at {channel.digest_hour:02d}:00 ({channel.tenant.timezone})"
        if channel.has_quiet_hours:
            return (
                f"at once; quiet {channel.quiet_hours_start:%H:%M}–{channel.quiet_hours_end:%H:%M} "
                f"({channel.tenant.timezone})"
            )
        return "at once"

    @admin.display(description="secret")
    def secret_shown(self, channel):
        return channel.secret_hint or "—"

    def save_model(self, request, obj, form, change):
        generated = not obj.secret  # channel_save gives a webhook without one a new secret
        channel_save(obj)
        if generated and obj.secret:
            self.message_user(
                request, f"The webhook's signing secret (shown this once; receivers verify with it): {obj.secret}"
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["at", "status_code", "duration_ms", "error"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "channel",
        "alert",
        "event",
        "status",
        "digest",
        "attempts",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["status", "event", "channel__kind"]
    search_fields = ["tenant__id", "channel__name"]
    list_select_related = ["tenant", "channel", "alert", "digest"]
    readonly_fields = [
        "tenant",
        "channel",
        "alert",
        "alert_event",
        "event",
        "digest",
        "digest_items",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "created_at",
    ]
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="held notices in this digest")
    def digest_items(self, delivery):
        if delivery.event != DeliveryEvent.DIGEST:
            return "—"
        items = delivery.items.select_related("alert").order_by("created_at", "id")
        return (
            format_html_join(
                mark_safe("<br>"),
                "{} of #{} {} ({})",
                ((i.event, i.alert_id, i.alert.rule_name, i.created_at) for i in items),
            )
            or "none (a daily digest of open alerts)"
        )

    @admin.action(description="Retry the selected failed deliveries now")
    def retry_now(self, request, queryset):
        retried = deliveries_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{retried} failed delivery(ies) queued again.")


class RanOverFilter(admin.SimpleListFilter):
    title = "ran over"
    parameter_name = "ran_over"

    def lookups(self, request, model_admin):
        return [("yes", "Yes: firings kept back"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(suppressed__gt=0)
        if self.value() == "no":
            return queryset.filter(suppressed=0)
        return queryset


@admin.register(AlertBudget)
class AlertBudgetAdmin(admin.ModelAdmin):
    """Each tenant's alerts per hour against its budget; an hour that ran over links its overflow alert."""

    list_display = ["hour", "tenant", "budget", "admitted", "suppressed", "overflow"]
    list_filter = [RanOverFilter, "tenant"]
    list_select_related = ["tenant"]
    date_hierarchy = "hour"
    show_full_result_count = False
    readonly_fields = ["tenant", "hour", "budget", "admitted", "suppressed", "overflow", "updated_at"]
    fields = readonly_fields

    @admin.display(description="overflow alert")
    def overflow(self, obj: AlertBudget):
        if obj.overflow_alert_id is None:
            return "—"
        url = reverse("admin:alerts_alert_change", args=[obj.overflow_alert_id])
        return format_html('<a href="{}">#{}</a>', url, obj.overflow_alert_id)

    def has_add_permission(self, request):
        return False  # written by the engine only

    def has_change_permission(self, request, obj=None):
        return False
