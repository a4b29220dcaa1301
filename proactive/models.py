import math

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import F, IntegerField, OuterRef, Q, Value

from alerts.models import RuleType, Severity
from core.validators import FLOAT_BOUND, validate_timezone
from proactive.engine.conditions import DEFAULT_WINDOW_DAYS, DEFAULT_Z_THRESHOLD
from proactive.validators import validate_cron, validate_metric_identifier
from tenants.models import Tenant

MAX_WINDOW_DAYS = 365


METRIC_RULE_TYPES = (RuleType.METRIC_THRESHOLD, RuleType.ANOMALY)
MAX_EVALUATIONS = 1440  # a pending period or a hysteresis of at most a day of one-minute evaluations


class Comparison(models.TextChoices):
    """How a metric_threshold rule compares its value with `threshold` (and `thresholdHigh`)."""

    ABOVE = "above", "above threshold"
    BELOW = "below", "below threshold"
    OUTSIDE = "outside", "outside threshold…thresholdHigh"
    INSIDE = "inside", "inside threshold…thresholdHigh"
    CHANGE_ABOVE = "changeAbove", "% change above threshold"
    CHANGE_BELOW = "changeBelow", "% change below threshold"


RANGE_COMPARISONS = (Comparison.OUTSIDE, Comparison.INSIDE)
CHANGE_COMPARISONS = (Comparison.CHANGE_ABOVE, Comparison.CHANGE_BELOW)


class Aggregate(models.TextChoices):
    """What a metric_threshold rule compares: the latest value, or a reduction of the last minutes."""

    LAST = "last", "latest value"
    AVG = "avg", "average"
    SUM = "sum", "sum"
    MIN = "min", "minimum"
    MAX = "max", "maximum"
    COUNT = "count", "number of points"


class NoData(models.TextChoices):
    """What a metric rule does when its window holds no datapoints (too few, for an anomaly)."""

    OK = "ok", "treat as OK"
    ALERT = "alert", "raise a no-data alert"
    KEEP = "keep", "keep the current state"


class AnomalyMethod(models.TextChoices):
    ZSCORE = "zscore", "z-score (mean, standard deviation)"
    ROBUST = "robust", "robust (median, MAD)"
    SEASONAL = "seasonal", "seasonal (same hour and weekday)"


class Direction(models.TextChoices):
    BOTH = "both", "up or down"
    UP = "up", "up only"
    DOWN = "down", "down only"


# The condition fields each type uses; the others must be empty (these values) on a rule of that type.
METRIC_FIELDS = (
    "metric",
    "threshold",
    "window_days",
    "auto_resolve",
    "for_evaluations",
    "clear_evaluations",
    "no_data",
)
FIELDS_OF_TYPE = {
    RuleType.SCHEDULE: ("schedule", "timezone"),
    RuleType.METRIC_THRESHOLD: (
        *METRIC_FIELDS,
        "comparison",
        "threshold_high",
        "compare_days",
        "aggregate",
        "aggregate_minutes",
    ),
    RuleType.ANOMALY: (*METRIC_FIELDS, "method", "direction"),
}
# Fields that only some options of a metric_threshold rule use (an empty option is the default).
FIELDS_OF_OPTION = {
    "comparison": {
        **{value: [] for value in ("", Comparison.ABOVE, Comparison.BELOW)},
        **{value: ["threshold_high"] for value in RANGE_COMPARISONS},
        **{value: ["compare_days"] for value in CHANGE_COMPARISONS},
    },
    "aggregate": {
        "": [],
        Aggregate.LAST: [],
        **{value: ["aggregate_minutes"] for value in Aggregate.values if value != Aggregate.LAST},
    },
}


def fields_in_use(*, type: str, comparison: str = "", aggregate: str = "") -> set[str]:
    """The condition fields a rule of this type and these options reads; the others stay empty."""
    used = set(FIELDS_OF_TYPE.get(type, ()))
    for option, chosen in (("comparison", comparison), ("aggregate", aggregate)):
        governed = {name for names in FIELDS_OF_OPTION[option].values() for name in names}
        used -= governed - set(FIELDS_OF_OPTION[option].get(chosen, []))
    return used


UNUSED_FIELD_VALUES = {
    "schedule": "",
    "timezone": "",
    "metric": "",
    "threshold": None,
    "window_days": None,
    "auto_resolve": False,
    "for_evaluations": None,
    "clear_evaluations": None,
    "no_data": "",
    "comparison": "",
    "threshold_high": None,
    "compare_days": None,
    "aggregate": "",
    "aggregate_minutes": None,
    "method": "",
    "direction": "",
}
# What a rule of the type stores when the field is not given: the guide's behaviour.
DEFAULTS_OF_TYPE = {
    RuleType.METRIC_THRESHOLD: {
        "comparison": Comparison.ABOVE,
        "aggregate": Aggregate.LAST,
        "for_evaluations": 1,
        "clear_evaluations": 1,
        "no_data": NoData.OK,
    },
    RuleType.ANOMALY: {
        "method": AnomalyMethod.ZSCORE,
        "direction": Direction.BOTH,
        "for_evaluations": 1,
        "clear_evaluations": 1,
        "no_data": NoData.OK,
    },
}


class RuleHealth(models.TextChoices):
    """What the rule's last evaluation could see (the values are the API's)."""

    UNKNOWN = "unknown", "Not evaluated yet"
    OK = "ok", "OK"
    NO_DATA = "noData", "No data"
    ERROR = "error", "Error"


class TriggerRuleQuerySet(models.QuerySet):
    def with_tenant_timezone(self) -> "TriggerRuleQuerySet":
        """Rules with their tenant's zone joined in, so `schedule_timezone` reads it without a query per rule."""
        return self.annotate(tenant_timezone=F("tenant__timezone"))

    def with_channel_ids(self) -> "TriggerRuleQuerySet":
        """
        Rules with the channels they name as `channel_ids`, ids ascending, only their own tenant's
        (a link to another tenant's channel is never followed nor shown): on PostgreSQL an array
        in the rules' own query, where a query of its own or a prefetch costs more; elsewhere None
        (`proactive.selectors.named_channel_ids` reads them).
        """
        if connection.vendor != "postgresql":
            return self.annotate(channel_ids=Value(None, output_field=IntegerField()))
        links = RuleChannel.objects.filter(rule_id=OuterRef("pk"), channel__tenant_id=OuterRef("tenant_id"))
        return self.annotate(channel_ids=ArraySubquery(links.order_by("channel_id").values("channel_id")))


class TriggerRule(models.Model):
    # Served by trigger_rule_tenant_recent, which leads with the tenant: a plain index of its own (and
    # Django's `_like` twin) would be two more entries to write on every evaluation's new row version.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="trigger_rules", db_index=False)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=RuleType.choices)
    schedule = models.CharField(
        max_length=100,
        blank=True,
        default="",
        validators=[validate_cron],
        help_text="Cron expression, five fields (schedule rules), e.g. 0 13 * * 1; read in the rule's time zone.",
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
    channels = models.ManyToManyField(
        "alerts.Channel",
        through="RuleChannel",
        blank=True,
        related_name="rules",
        help_text="Where this rule's alerts go. None chosen: every channel of the tenant that wants them.",
    )
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_timezone],
        help_text="Schedule rules: the IANA zone the cron is read in; empty: the tenant's zone.",
    )
    comparison = models.CharField(
        max_length=12,
        choices=Comparison.choices,
        blank=True,
        default="",
        help_text="metric_threshold: how the value is compared (default above).",
    )
    threshold_high = models.FloatField(
        null=True,
        blank=True,
        help_text="outside / inside comparisons: the range's upper bound (threshold is the lower).",
    )
    compare_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)],
        help_text="changeAbove / changeBelow: the percent change against the value this many days earlier.",
    )
    aggregate = models.CharField(
        max_length=8,
        choices=Aggregate.choices,
        blank=True,
        default="",
        help_text="metric_threshold: the latest value (default) or a reduction over aggregate_minutes.",
    )
    aggregate_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS * 1440)],
        help_text="The minutes the aggregate reduces (required unless aggregate is last).",
    )
    for_evaluations = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_EVALUATIONS)],
        help_text="Metric rules: fire only after this many breaching evaluations in a row (default 1).",
    )
    clear_evaluations = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_EVALUATIONS)],
        help_text="Metric rules: auto-resolve only after this many clear evaluations in a row (default 1).",
    )
    no_data = models.CharField(
        max_length=8,
        choices=NoData.choices,
        blank=True,
        default="",
        help_text="Metric rules without data: ok (default: not an alert), alert, or keep the current state.",
    )
    method = models.CharField(
        max_length=10,
        choices=AnomalyMethod.choices,
        blank=True,
        default="",
        help_text="anomaly: zscore (default), robust (median and MAD) or seasonal (same hour and weekday).",
    )
    direction = models.CharField(
        max_length=6,
        choices=Direction.choices,
        blank=True,
        default="",
        help_text="anomaly: which deviations fire — both (default), up or down.",
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
    # Consecutive breaching and clear evaluations, for forEvaluations and clearEvaluations.
    breaching_streak = models.PositiveIntegerField(default=0, editable=False)
    clear_streak = models.PositiveIntegerField(default=0, editable=False)

    objects = TriggerRuleQuerySet.as_manager()

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
            models.CheckConstraint(
                condition=Q(comparison="") | Q(comparison__in=Comparison.values), name="trigger_rule_comparison_valid"
            ),
            models.CheckConstraint(
                condition=Q(aggregate="") | Q(aggregate__in=Aggregate.values), name="trigger_rule_aggregate_valid"
            ),
            models.CheckConstraint(
                condition=Q(no_data="") | Q(no_data__in=NoData.values), name="trigger_rule_no_data_valid"
            ),
            models.CheckConstraint(
                condition=Q(method="") | Q(method__in=AnomalyMethod.values), name="trigger_rule_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(direction="") | Q(direction__in=Direction.values), name="trigger_rule_direction_valid"
            ),
            models.CheckConstraint(
                condition=Q(threshold_high__isnull=True) | Q(threshold_high__gt=F("threshold")),
                name="trigger_rule_range_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(comparison__in=RANGE_COMPARISONS) | Q(threshold_high__isnull=False),
                name="trigger_rule_range_has_upper_bound",
            ),
            models.CheckConstraint(
                condition=~Q(comparison__in=CHANGE_COMPARISONS) | Q(compare_days__isnull=False),
                name="trigger_rule_change_has_compare_days",
            ),
            models.CheckConstraint(
                condition=Q(aggregate__in=["", Aggregate.LAST]) | Q(aggregate_minutes__isnull=False),
                name="trigger_rule_aggregate_has_minutes",
            ),
            models.CheckConstraint(
                condition=Q(for_evaluations__isnull=True)
                | Q(for_evaluations__gte=1, for_evaluations__lte=MAX_EVALUATIONS),
                name="trigger_rule_for_evaluations_range",
            ),
            models.CheckConstraint(
                condition=Q(clear_evaluations__isnull=True)
                | Q(clear_evaluations__gte=1, clear_evaluations__lte=MAX_EVALUATIONS),
                name="trigger_rule_clear_evaluations_range",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.type})"

    @property
    def is_metric_rule(self) -> bool:
        return self.type in METRIC_RULE_TYPES

    @property
    def schedule_timezone(self) -> str | None:
        """The zone a schedule rule's cron is read in: its own, else its tenant's. None for metric rules."""
        if self.type != RuleType.SCHEDULE:
            return None
        return self.timezone or self.local_timezone

    @property
    def local_timezone(self) -> str:
        """The tenant's zone: where a seasonal anomaly's hours of day and weekdays are read."""
        # Loaded `with_tenant_timezone()`: an annotation, cheaper than a Tenant per row (the engine's hot path).
        return getattr(self, "tenant_timezone", None) or self.tenant.timezone

    def clean(self):
        """Cross-field rules; the admin form and the API (through the services) both run them."""
        errors: dict[str, str] = {}
        used = FIELDS_OF_TYPE.get(self.type, ())
        for name, empty in UNUSED_FIELD_VALUES.items():
            if name not in used and getattr(self, name) not in (empty, None, ""):
                users = [kind for kind, fields in FIELDS_OF_TYPE.items() if name in fields]
                errors[name] = f"Only used by {' and '.join(users)} rules; leave it empty."
        if self.type == RuleType.SCHEDULE:
            if not self.schedule:
                errors["schedule"] = "Required for schedule rules (a cron expression)."
            if self.auto_resolve:
                errors["auto_resolve"] = "Only metric rules can resolve their alerts by themselves."
        elif self.type in METRIC_RULE_TYPES:
            for name, default in DEFAULTS_OF_TYPE[self.type].items():
                if getattr(self, name) in (None, ""):
                    setattr(self, name, default)
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
            if self.type == RuleType.METRIC_THRESHOLD:
                errors.update(self._comparison_errors(errors))
        if errors:
            raise ValidationError(errors)

    def _comparison_errors(self, errors: dict) -> dict[str, str]:
        found = {}
        ranged = self.comparison in RANGE_COMPARISONS
        if ranged and self.threshold_high is None:
            found["threshold_high"] = f"Required for the {self.comparison} comparison (the range's upper bound)."
        elif ranged and self.threshold_high is not None:
            if not math.isfinite(self.threshold_high) or abs(self.threshold_high) > FLOAT_BOUND:
                found["threshold_high"] = f"Must be a finite number between -{FLOAT_BOUND:g} and {FLOAT_BOUND:g}."
            elif "threshold" not in errors and self.threshold is not None and self.threshold_high <= self.threshold:
                found["threshold_high"] = "Must be greater than threshold (the range is threshold to thresholdHigh)."
        elif self.threshold_high is not None:
            found["threshold_high"] = "Only used by the outside and inside comparisons; leave it empty."
        if self.comparison in CHANGE_COMPARISONS and self.compare_days is None:
            found["compare_days"] = (
                f"Required for the {self.comparison} comparison: how many days back the value compared with is."
            )
        elif self.comparison not in CHANGE_COMPARISONS and self.compare_days is not None:
            found["compare_days"] = "Only used by the changeAbove and changeBelow comparisons; leave it empty."
        if self.aggregate != Aggregate.LAST and self.aggregate_minutes is None:
            found["aggregate_minutes"] = f"Required for the {self.aggregate} aggregate: the minutes it reduces."
        elif self.aggregate == Aggregate.LAST and self.aggregate_minutes is not None:
            found["aggregate_minutes"] = "Only used by the avg, sum, min, max and count aggregates; leave it empty."
        elif (
            self.aggregate_minutes is not None and self.window_days and self.aggregate_minutes > self.window_days * 1440
        ):
            found["aggregate_minutes"] = f"At most windowDays × 1440 ({self.window_days * 1440}): the window bounds it."
        return found


class RuleChannel(models.Model):
    """
    A rule naming a channel. A named channel cannot be deleted while a rule names it (RESTRICT): a
    rule meant for one private channel must not fall back, silently, to every channel of the tenant.
    """

    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="channel_links", db_index=False)
    channel = models.ForeignKey("alerts.Channel", on_delete=models.RESTRICT, related_name="rule_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "channel"], name="rule_channel_unique")]

    def __str__(self):
        return f"rule {self.rule_id} → channel {self.channel_id}"


class MetricPoint(models.Model):
    """One datapoint of a tenant's custom metric. Built-in `usage.*` metrics live in billing."""

    # Served by metric_point_unique_per_time, which leads with the tenant.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="metric_points", db_index=False)
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


class MetricWake(models.Model):
    """
    A tenant's metric changed (or will, for a point stamped ahead): at `at`, the rules reading it
    are due again. Written with the points, in their transaction; the engine's tick turns due wakes
    into due rules and deletes them. Rules whose inputs did not change sleep until their window
    moves (see proactive.engine.runner), so a tick's work follows what changed.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="metric_wakes", db_index=False)
    metric = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["at"], name="metric_wake_due")]
        constraints = [models.UniqueConstraint(fields=["tenant", "metric", "at"], name="metric_wake_unique")]

    def __str__(self):
        return f"{self.tenant_id}:{self.metric} at {self.at:%Y-%m-%dT%H:%M:%SZ}"


class RuleWake(models.Model):
    """
    A person resolved the open alert of a schedule rule that sleeps on it (see
    proactive.engine.runner): at the tick after `at`, the rule is due again at its first occurrence
    after `at`, as if it had been looked at every minute. Written in the resolve's transaction; the
    tick turns due wakes into due rules and deletes them.
    """

    # No foreign key in the database: checking one at the resolve's commit would lock the rule row
    # (FOR KEY SHARE), which a chunk may hold while it raises an alert the resolve holds. A wake of
    # a deleted rule wakes nothing and is deleted by the next tick.
    rule = models.ForeignKey(
        TriggerRule, on_delete=models.CASCADE, related_name="wakes", db_constraint=False, db_index=False
    )
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["at"], name="rule_wake_due")]
        constraints = [models.UniqueConstraint(fields=["rule", "at"], name="rule_wake_unique")]

    def __str__(self):
        return f"rule {self.rule_id} at {self.at:%Y-%m-%dT%H:%M:%SZ}"
