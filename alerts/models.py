from django.db import models
from django.db.models import Q

from tenants.models import Tenant


class Severity(models.TextChoices):
    """How urgent an alert is; a rule says which severity its alerts get."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RuleType(models.TextChoices):
    """The kinds of rule that raise alerts: an alert keeps its rule's type, and its payload's keys follow it."""

    SCHEDULE = "schedule"
    METRIC_THRESHOLD = "metric_threshold"
    ANOMALY = "anomaly"


class AlertStatus(models.TextChoices):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


class Alert(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alerts")
    # A deleted rule leaves its alerts readable: rule becomes NULL, the name stays.
    rule = models.ForeignKey(
        "proactive.TriggerRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    rule_name = models.CharField(max_length=200)
    rule_type = models.CharField(max_length=20, choices=RuleType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.PENDING)
    payload = models.JSONField(default=dict, blank=True)
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-triggered_at", "-id"], name="alert_tenant_recent"),
            models.Index(fields=["tenant", "status", "-triggered_at"], name="alert_tenant_status_recent"),
            models.Index(fields=["snoozed_until"], condition=Q(status="snoozed"), name="alert_snoozed_due"),
        ]
        constraints = [
            # IMPORTANT: the engine's idempotence. At most one open alert per rule, also when
            # several engine processes raise at once (they insert with ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["rule"], condition=~Q(status="resolved"), name="alert_one_open_per_rule"),
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="alert_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="acknowledged") | Q(acknowledged_at__isnull=False),
                name="alert_acknowledged_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="alert_resolved_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="snoozed") | Q(snoozed_until__isnull=False),
                name="alert_snoozed_has_until",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.rule_name} ({self.status})"


class AlertEvent(models.Model):
    """One state change of an alert: who, when, from, to (and why, when the system did it)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=12, choices=AlertStatus.choices, blank=True, default="")
    to_status = models.CharField(max_length=12, choices=AlertStatus.choices)
    at = models.DateTimeField()
    actor = models.CharField(max_length=200, help_text="user:<name>, api-key:<prefix>, engine or system")
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["alert", "at"], name="alert_event_alert_at")]

    def __str__(self):
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor}"


class Notification(models.Model):
    """An in-app notification of an alert, kept in step with the alert's status."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="notifications")
    alert = models.OneToOneField(Alert, on_delete=models.CASCADE, related_name="notification")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    alert_status = models.CharField(max_length=12, choices=AlertStatus.choices)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="notification_tenant_recent"),
            models.Index(
                fields=["tenant", "-created_at"],
                condition=Q(read_at__isnull=True),
                name="notification_tenant_unread",
            ),
        ]

    def __str__(self):
        return self.title
