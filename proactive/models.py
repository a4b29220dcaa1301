import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from alerts.models import RuleType, Severity
from core.validators import FLOAT_BOUND
from proactive.engine.conditions import DEFAULT_WINDOW_DAYS, DEFAULT_Z_THRESHOLD
from proactive.validators import validate_cron, validate_metric_identifier
from tenants.models import Tenant

MAX_WINDOW_DAYS = 365


METRIC_RULE_TYPES = (RuleType.METRIC_THRESHOLD, RuleType.ANOMALY)
# The condition fields each type uses; the others must be empty (these values) on a rule of that type.
METRIC_FIELDS = ("metric", "threshold", "window_days", "auto_resolve")
FIELDS_OF_TYPE = {RuleType.SCHEDULE: ("schedule",), **{kind: METRIC_FIELDS for kind in METRIC_RULE_TYPES}}
UNUSED_FIELD_VALUES = {"schedule": "", "metric": "", "threshold": None, "window_days": None, "auto_resolve": False}


class RuleHealth(models.TextChoices):
    """What the rule's last evaluation could see (the values are the API's)."""

    UNKNOWN = "unknown", "Not evaluated yet"
    OK = "ok", "OK"
    NO_DATA = "noData", "No data"
    ERROR = "error", "Error"


class TriggerRule(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="trigger_rules")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=RuleType.choices)
    schedule = models.CharField(
        max_length=100,
        blank=True,
        default="",
        validators=[validate_cron],
        help_text="Cron expression, UTC, five fields (schedule rules), e.g. 0 13 * * 1.",
    )
    metric = models.CharField(
        max_length=200,
        blank=True,
        default="",
        validators=[validate_metric_identifier],
        help_text="Metric identifier (metric_threshold and anomaly rules), e.g. analytics.mql.delta.",
    )
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="metric_threshold: fires when the latest value is greater. anomaly: the |z| "
        f"that fires (default {DEFAULT_Z_THRESHOLD}).",
    )
    window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)],
        help_text=f"Look-back window in days (metric rules; default {DEFAULT_WINDOW_DAYS}).",
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    auto_resolve = models.BooleanField(
        default=False,
        help_text="Metric rules: resolve the open alert when the condition clears.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Engine bookkeeping.
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    health = models.CharField(
        max_length=10,
        choices=RuleHealth.choices,
        default=RuleHealth.UNKNOWN,
        editable=False,
        help_text="What the last evaluation saw: no data in the window is not the same as all clear.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="trigger_rule_tenant_recent"),
            # The engine's tick: enabled rules that are due.
            models.Index(fields=["next_run_at"], condition=Q(enabled=True), name="trigger_rule_due"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=RuleType.values), name="trigger_rule_type_valid"),
            models.CheckConstraint(condition=Q(health__in=RuleHealth.values), name="trigger_rule_health_valid"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="trigger_rule_severity_valid"),
            models.CheckConstraint(
                condition=~Q(type=RuleType.SCHEDULE) | ~Q(schedule=""),
                name="trigger_rule_schedule_rule_has_schedule",
            ),
            models.CheckConstraint(
                condition=Q(type=RuleType.SCHEDULE) | ~Q(metric=""),
                name="trigger_rule_metric_rule_has_metric",
            ),
            models.CheckConstraint(
                condition=~Q(type=RuleType.METRIC_THRESHOLD) | Q(threshold__isnull=False),
                name="trigger_rule_threshold_rule_has_threshold",
            ),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gte=-FLOAT_BOUND, threshold__lte=FLOAT_BOUND),
                name="trigger_rule_threshold_finite",
            ),
            models.CheckConstraint(
                condition=~Q(type=RuleType.ANOMALY) | Q(threshold__isnull=True) | Q(threshold__gt=0),
                name="trigger_rule_anomaly_threshold_positive",
            ),
            models.CheckConstraint(
                condition=~Q(type=RuleType.SCHEDULE) | Q(auto_resolve=False),
                name="trigger_rule_schedule_rule_no_auto_resolve",
            ),
            models.CheckConstraint(
                condition=Q(window_days__isnull=True) | Q(window_days__gte=1, window_days__lte=MAX_WINDOW_DAYS),
                name="trigger_rule_window_days_range",
            ),
            models.CheckConstraint(
                condition=Q(type=RuleType.SCHEDULE) | Q(window_days__isnull=False),
                name="trigger_rule_metric_rule_has_window",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.type})"

    @property
    def is_metric_rule(self) -> bool:
        return self.type in METRIC_RULE_TYPES

    def clean(self):
        """Cross-field rules; the admin form and the API (through the services) both run them."""
        errors: dict[str, str] = {}
        if self.type == RuleType.SCHEDULE:
            if not self.schedule:
                errors["schedule"] = "Required for schedule rules (a cron expression, UTC)."
            for field in ("metric", "threshold", "window_days"):
                if getattr(self, field) not in (None, ""):
                    errors[field] = "Only used by metric_threshold and anomaly rules; leave it empty."
            if self.auto_resolve:
                errors["auto_resolve"] = "Only metric rules can resolve their alerts by themselves."
        elif self.type in METRIC_RULE_TYPES:
            if self.schedule:
                errors["schedule"] = "Only used by schedule rules; leave it empty."
            if not self.metric:
                errors["metric"] = "Required for metric_threshold and anomaly rules."
            if self.threshold is not None and not math.isfinite(self.threshold):
                errors["threshold"] = "Must be a finite number."
            elif self.threshold is not None and abs(self.threshold) > FLOAT_BOUND:
                errors["threshold"] = f"Must be between -{FLOAT_BOUND:g} and {FLOAT_BOUND:g}."
            elif self.type == RuleType.METRIC_THRESHOLD and self.threshold is None:
                errors["threshold"] = "Required for metric_threshold rules."
            elif self.type == RuleType.ANOMALY:
                if self.threshold is None:
                    self.threshold = DEFAULT_Z_THRESHOLD
                elif self.threshold <= 0:
                    errors["threshold"] = "The anomaly z-score threshold must be greater than 0."
            if self.window_days is None:  # stored, so the API shows the window the engine really reads
                self.window_days = DEFAULT_WINDOW_DAYS
        if errors:
            raise ValidationError(errors)


class MetricPoint(models.Model):
    """One datapoint of a tenant's custom metric. Built-in `usage.*` metrics live in billing."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="metric_points")
    metric = models.CharField(max_length=200, validators=[validate_metric_identifier])
    timestamp = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        constraints = [
            # Also the index behind "latest value" and "last N days": (tenant, metric) then time.
            models.UniqueConstraint(fields=["tenant", "metric", "timestamp"], name="metric_point_unique_per_time"),
            models.CheckConstraint(
                condition=Q(value__gte=-FLOAT_BOUND, value__lte=FLOAT_BOUND),
                name="metric_point_value_finite",
            ),
        ]

    def __str__(self):
        return f"{self.metric}@{self.timestamp:%Y-%m-%dT%H:%M:%SZ}={self.value}"
