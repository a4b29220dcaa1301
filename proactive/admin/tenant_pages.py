from datetime import UTC, datetime, time, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from alerts.models import AlertStatus, Severity
from alerts.selectors import alert_open_counts_by_severity
from billing.models import USAGE_FIELDS
from billing.selectors import billing_usage_summary
from core.charts import Line, time_chart
from marketplace.selectors import widget_list_for_tenant
from proactive.selectors import trigger_rules_needing_attention
from tenants.admin import TenantAdmin
from tenants.models import Tenant

USAGE_CHART_DAYS = 90
OPEN_STATUSES = ",".join(status for status in AlertStatus.values if status != AlertStatus.RESOLVED)
USAGE_LABELS = {
    "tokens_used": "Tokens used",
    "tasks_executed": "Tasks executed",
    "alerts_triggered": "Alerts triggered",
    "active_widgets": "Active widgets",
}


def usage_charts(*, tenant: Tenant, today) -> str:
    """The four daily usage counters over the last 90 days, one small chart each (their scales differ)."""
    since = today - timedelta(days=USAGE_CHART_DAYS - 1)
    summary = billing_usage_summary(tenant=tenant, since=since, until=today)
    charts = []
    for name in USAGE_FIELDS:
        points = [(datetime.combine(point.day, time.min, tzinfo=UTC), getattr(point, name)) for point in summary.points]
        charts.append(
            time_chart(
                title=f"{USAGE_LABELS[name]} per day",
                lines=[Line(name, points, step=True)],
                counts=True,
                since=points[0][0],
                until=datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC),
                width=520,
                height=180,
            )
        )
    return mark_safe(
        '<div class="pi-usage-charts" style="display:grid;grid-template-columns:repeat(2,520px);gap:0 1.5em">'
        + "".join(charts)
        + "</div>"
    )


class TenantConsoleAdmin(TenantAdmin):
    """The tenants app's tenant page, plus its usage charts and an overview of everything it runs."""

    readonly_fields = [*TenantAdmin.readonly_fields, "overview_link", "usage"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "name",
                    "slug",
                    "timezone",
                    "alert_budget_per_hour",
                    "stripe_customer_id",
                    "created_at",
                    "overview_link",
                ]
            },
        ),
        (f"Usage, last {USAGE_CHART_DAYS} days (UTC)", {"fields": ["usage"]}),
    ]

    @admin.display(description="Overview")
    def overview_link(self, tenant):
        return format_html(
            '<a class="button" href="{}">Open alerts, rules needing attention, widgets and usage →</a>',
            reverse("admin:tenants_tenant_overview", args=[tenant.pk]),
        )

    @admin.display(description="Daily usage")
    def usage(self, tenant):
        return usage_charts(tenant=tenant, today=timezone.now().date())

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["id", "name", "slug", "timezone", "alert_budget_per_hour", "stripe_customer_id"]})
            ]
        if not request.user.has_perm("billing.view_billingusage"):
            return self.fieldsets[:1]
        return self.fieldsets

    def get_urls(self):
        overview = self.admin_site.admin_view(self.overview_view)
        return [path("<str:tenant_id>/overview/", overview, name="tenants_tenant_overview"), *super().get_urls()]

    def overview_view(self, request, tenant_id: str):
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_view_permission(request, tenant):
            raise PermissionDenied
        may_view = request.user.has_perm
        today = timezone.now().date()
        month_start = today.replace(day=1)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"{tenant.name}: overview",
            "month_start": month_start,
        }
        # Each part only for staff who may see what it shows.
        if may_view("alerts.view_alert"):
            open_alerts = alert_open_counts_by_severity(tenant=tenant)
            alerts_url = reverse("admin:alerts_alert_changelist")
            context["open_alerts"] = [
                (
                    Severity(severity).label,
                    count,
                    f"{alerts_url}?tenant__id__exact={tenant.pk}&severity__exact={severity}&status__in={OPEN_STATUSES}",
                )
                for severity, count in reversed(open_alerts.items())
            ]
            context["open_alert_total"] = sum(open_alerts.values())
        if may_view("proactive.view_triggerrule"):
            context["rules_needing_attention"] = list(trigger_rules_needing_attention(tenant=tenant))
        if may_view("marketplace.view_widget"):
            context["widgets"] = list(widget_list_for_tenant(tenant=tenant).filter(install_enabled=True))
        if may_view("billing.view_billingusage"):
            context["month_usage"] = billing_usage_summary(tenant=tenant, since=month_start, until=today).totals
        return TemplateResponse(request, "admin/tenants/tenant/overview.html", context)


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantConsoleAdmin)
