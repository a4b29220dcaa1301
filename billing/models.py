from django.db import models
from django.db.models import Q

from tenants.models import Tenant

USAGE_COUNTERS = ("tokens_used", "tasks_executed", "alerts_triggered")
USAGE_GAUGE = "active_widgets"
USAGE_FIELDS = (*USAGE_COUNTERS, USAGE_GAUGE)
# The API's camelCase names, in the same order.
USAGE_API_FIELDS = ("tokensUsed", "tasksExecuted", "alertsTriggered", "activeWidgets")


class DailyUsage(models.Model):
    """
    A tenant's usage on one UTC day. `tokens_used`, `tasks_executed` and `alerts_triggered` are
    counters (summed over a range); `active_widgets` is a gauge (its peak is what a range reports).
    Rows are only ever changed by atomic increments in the database (billing.services.usage).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    tokens_used = models.BigIntegerField(default=0)
    tasks_executed = models.BigIntegerField(default=0)
    alerts_triggered = models.BigIntegerField(default=0)
    active_widgets = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-day"]

    def __str__(self):
        return f"{self.tenant_id} {self.day}"


def _daily_usage_constraints(prefix: str) -> list:
    return [
        models.UniqueConstraint(fields=["tenant", "day"], name=f"{prefix}_unique_tenant_day"),
        *(
            models.CheckConstraint(condition=Q(**{f"{field}__gte": 0}), name=f"{prefix}_{field}_not_negative")
            for field in USAGE_FIELDS
        ),
    ]


class UsageSnapshot(DailyUsage):
    """What the product measured; the source of the built-in `usage.*` metrics."""

    class Meta(DailyUsage.Meta):
        constraints = _daily_usage_constraints("usage_snapshot")


class BillingUsage(DailyUsage):
    """What the tenant is billed for; the source of `GET /billing/usage`."""

    class Meta(DailyUsage.Meta):
        verbose_name_plural = "billing usage"
        constraints = _daily_usage_constraints("billing_usage")


class BillingEventOutcome(models.TextChoices):
    APPLIED = "applied"
    NO_USAGE = "no_usage", "No usage"
    UNMATCHED = "unmatched"
    REJECTED = "rejected"


class BillingEvent(models.Model):
    """Every billing event received, stored once by its id, with what became of it."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=255)
    created = models.DateTimeField(null=True, blank=True, help_text="The event's own `created` time.")
    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    payload = models.JSONField()
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=12, choices=BillingEventOutcome.choices)
    reason = models.TextField(blank=True, default="")
    usage_day = models.DateField(null=True, blank=True)
    deltas = models.JSONField(default=dict, blank=True, help_text="The usage deltas found in the event.")
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["outcome", "-received_at"], name="billing_event_outcome_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=BillingEventOutcome.values), name="billing_event_outcome_valid"
            ),
            models.CheckConstraint(
                condition=~Q(outcome="applied") | Q(applied_at__isnull=False),
                name="billing_event_applied_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.event_id} ({self.type}, {self.outcome})"
