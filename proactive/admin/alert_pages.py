from django.contrib import admin
from django.utils import timezone

from alerts.admin import AlertAdmin
from alerts.models import Alert
from proactive.admin.charts import alert_chart


class AlertWithChartAdmin(AlertAdmin):
    """The alerts app's alert page, plus the chart of the rule's metric around the firing."""

    why_fields = [*AlertAdmin.why_fields, "metric_chart"]
    readonly_fields = [*AlertAdmin.readonly_fields, "metric_chart"]

    @admin.display(description="Chart")
    def metric_chart(self, alert):
        return alert_chart(alert=alert, now=timezone.now()) or "— (a schedule alert has no series)"


admin.site.unregister(Alert)
admin.site.register(Alert, AlertWithChartAdmin)
