from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, URLValidator, validate_email
from django.db import models
from django.db.models import F, Q

from alerts.quiet_hours import next_daily_at, quiet_until
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


class AlertType(models.TextChoices):
    """What an alert is of: its rule's type, or (no rule) its tenant's alert budget running over for an hour."""

    SCHEDULE = "schedule"
    METRIC_THRESHOLD = "metric_threshold"
    ANOMALY = "anomaly"
    ALERT_BUDGET = "alert_budget"


class AlertStatus(models.TextChoices):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


class Alert(models.Model):
    # The composite indexes below lead with the tenant and serve its foreign key.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alerts", db_index=False)
    # A deleted rule leaves its alerts readable: rule becomes NULL, the name stays. alert_rule_recent
    # leads with the rule and serves its foreign key. Never turn db_index off in an AlterField: Django
    # would drop every single-column index on rule_id, alert_one_open_per_rule included (core.schema
    # dropped the plain one by name).
    rule = models.ForeignKey(
        "proactive.TriggerRule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        db_index=False,
    )
    rule_name = models.CharField(max_length=200)
    rule_type = models.CharField(max_length=20, choices=AlertType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.PENDING)
    payload = models.JSONField(default=dict, blank=True)
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Where its rule sent it when it fired; empty: every channel of the tenant that wants it.
    channel_ids = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Its history as the API shows it (a JSON array), kept by whoever writes its AlertEvents, in the
    # same transaction (alerts.services): a page of 50 alerts reads it instead of 50 subqueries.
    # NULL (alerts from before it): the API reads the events.
    history_json = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001 (NULL: not kept)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        # GET /alerts pages newest first by (triggered_at, id): each filter has an index in that order
        # (docs/performance.md, "The API under load"). Open alerts (at most one per rule) have their
        # own, so that any mix of open statuses reads only them.
        indexes = [
            models.Index(fields=["tenant", "-triggered_at", "-id"], name="alert_tenant_recent"),
            models.Index(fields=["tenant", "status", "-triggered_at", "-id"], name="alert_tenant_status_recent"),
            models.Index(fields=["tenant", "severity", "-triggered_at", "-id"], name="alert_tenant_severity_recent"),
            models.Index(
                fields=["tenant", "-triggered_at", "-id"],
                condition=~Q(status="resolved"),
                name="alert_tenant_open_recent",
            ),
            models.Index(fields=["rule", "-triggered_at", "-id"], name="alert_rule_recent"),
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


class AlertBudget(models.Model):
    """
    A tenant's alerts in one UTC hour against its budget (`Tenant.alert_budget_per_hour`, else
    ALERT_BUDGET_PER_HOUR). Firings over it raise no alert: they are counted here and summed up
    in the hour's one overflow alert. Changed only by `alerts.services.alerts_raise`, under the
    row's lock.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_budgets", db_index=False)
    hour = models.DateTimeField(help_text="The start of the UTC hour.")
    budget = models.PositiveIntegerField(help_text="Alerts the tenant's rules may raise in the hour.")
    admitted = models.PositiveIntegerField(default=0, help_text="Alerts raised in the hour.")
    suppressed = models.PositiveIntegerField(default=0, help_text="Firings over the budget: no alert raised.")
    overflow_alert = models.OneToOneField(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="budget_overflow"
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-hour", "tenant_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour"], name="alert_budget_one_per_tenant_and_hour"),
            models.CheckConstraint(condition=Q(admitted__gte=0), name="alert_budget_admitted_not_negative"),
            models.CheckConstraint(condition=Q(suppressed__gte=0), name="alert_budget_suppressed_not_negative"),
        ]

    def __str__(self):
        return (
            f"{self.tenant_id} {self.hour:%Y-%m-%d %H:00}: {self.admitted}/{self.budget}, {self.suppressed} suppressed"
        )


class AlertEvent(models.Model):
    """One state change of an alert: who, when, from, to (and why, when the system did it)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="history", db_index=False)
    from_status = models.CharField(max_length=12, choices=AlertStatus.choices, blank=True, default="")
    to_status = models.CharField(max_length=12, choices=AlertStatus.choices)
    at = models.DateTimeField()
    actor = models.CharField(max_length=200, help_text="user:<name>, api-key:<prefix>, engine or system")
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["at", "id"]
        # An alert's history in its order (the nested list of every alert body), and its foreign key.
        indexes = [models.Index(fields=["alert", "at", "id"], name="alert_event_alert_at")]

    def __str__(self):
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor}"


class Notification(models.Model):
    """An in-app notification of an alert, kept in step with the alert's status."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="notifications", db_index=False)
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
                fields=["tenant", "-created_at", "-id"],
                condition=Q(read_at__isnull=True),
                name="notification_tenant_unread",
            ),
        ]

    def __str__(self):
        return self.title


class ChannelKind(models.TextChoices):
    EMAIL = "email"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    WEBHOOK = "webhook"


class ChannelEvent(models.TextChoices):
    """The alert events a channel can be told of."""

    FIRED = "fired"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SNOOZE_ENDED = "snoozeEnded"


class ChannelDigest(models.TextChoices):
    OFF = "off"  # each notice when it happens (quiet hours aside)
    DAILY = "daily"  # one message a day, at digest_hour on the tenant's clock


def hint(secret: str) -> str | None:
    return f"{secret[:10]}…" if secret else None


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Channel(models.Model):
    """Where a tenant's alerts are delivered: an email list, a Slack or PagerDuty integration, or a webhook."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="channels", db_index=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    # email: the addresses, comma-separated; slack: the incoming-webhook URL; webhook: the URL;
    # pagerduty: empty (the Events API v2 endpoint).
    target = models.CharField(max_length=2000, blank=True, default="")
    # webhook: the `whsec_` signing secret; pagerduty: the routing key. Never shown in full again.
    secret = models.CharField(max_length=200, blank=True, default="")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    events = models.JSONField(default=list, help_text="fired, acknowledged, resolved, snoozeEnded")
    enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(
        null=True,
        blank=True,
        help_text="On the tenant's clock. Non-critical notices wait until the end, then go as one digest.",
    )
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="On the tenant's clock (excluded).")
    digest = models.CharField(max_length=5, choices=ChannelDigest.choices, default=ChannelDigest.OFF)
    digest_hour = models.PositiveSmallIntegerField(
        default=9, validators=[MaxValueValidator(23)], help_text="Daily digest: the hour (0–23) on the tenant's clock."
    )
    next_digest_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="channel_tenant_recent"),
            models.Index(fields=["next_digest_at"], condition=Q(digest="daily"), name="channel_daily_digest_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="channel_name_unique_per_tenant"),
            models.CheckConstraint(condition=Q(kind__in=ChannelKind.values), name="channel_kind_valid"),
            models.CheckConstraint(condition=Q(min_severity__in=Severity.values), name="channel_min_severity_valid"),
            models.CheckConstraint(condition=Q(digest__in=ChannelDigest.values), name="channel_digest_valid"),
            models.CheckConstraint(condition=Q(digest_hour__lte=23), name="channel_digest_hour_valid"),
            models.CheckConstraint(
                condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | (
                    Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False)
                    & ~Q(quiet_hours_start=F("quiet_hours_end"))
                ),
                name="channel_quiet_hours_start_and_end",
            ),
            models.CheckConstraint(
                condition=Q(digest="off") | Q(quiet_hours_start__isnull=True),
                name="channel_daily_digest_without_quiet_hours",
            ),
            models.CheckConstraint(
                condition=Q(digest="off") | Q(next_digest_at__isnull=False), name="channel_daily_digest_scheduled"
            ),
            models.CheckConstraint(
                condition=~Q(kind="pagerduty") | Q(digest="off", quiet_hours_start__isnull=True),
                name="channel_pagerduty_sends_at_once",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def clean(self):
        errors = {}
        if self.kind == ChannelKind.EMAIL:
            addresses = self.email_addresses
            if not addresses:
                errors["target"] = "An email channel needs at least one address (comma-separated)."
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    errors["target"] = f"{address!r} is not an email address."
        elif self.kind in (ChannelKind.SLACK, ChannelKind.WEBHOOK):
            try:
                URLValidator(schemes=["https", "http"])(self.target)
            except ValidationError:
                errors["target"] = f"A {self.kind} channel needs an http(s) URL."
        elif self.target:
            errors["target"] = "A PagerDuty channel sends to the Events API; leave it empty."
        if self.kind == ChannelKind.PAGERDUTY and not self.secret:
            errors["secret"] = "A PagerDuty channel needs its integration's routing key."
        if self.kind == ChannelKind.WEBHOOK and self.secret and not self.secret.startswith("whsec_"):
            errors["secret"] = "A webhook secret starts with whsec_ (leave it empty to have one generated)."
        if self.kind in (ChannelKind.EMAIL, ChannelKind.SLACK) and self.secret:
            errors["secret"] = f"An {self.kind} channel has no secret; leave it empty."
        unknown = [event for event in self.events or [] if event not in ChannelEvent.values]
        if not isinstance(self.events, list) or not self.events or unknown:
            errors["events"] = f"A list of one or more of: {', '.join(ChannelEvent.values)}."
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            missing = "quiet_hours_end" if self.quiet_hours_end is None else "quiet_hours_start"
            errors[missing] = "Quiet hours need both a start and an end (HH:MM on the tenant's clock)."
        elif self.quiet_hours_start is not None and self.quiet_hours_start == self.quiet_hours_end:
            errors["quiet_hours_end"] = "Quiet hours end at another time than they start."
        if self.kind == ChannelKind.PAGERDUTY and (self.digest != ChannelDigest.OFF or self.quiet_hours_start):
            errors["digest" if self.digest != ChannelDigest.OFF else "quiet_hours_start"] = (
                "A PagerDuty channel sends at once: PagerDuty opens an incident per alert and keeps its own on-call "
                "hours and urgency rules."
            )
        elif self.digest == ChannelDigest.DAILY and self.quiet_hours_start is not None:
            errors["quiet_hours_start"] = (
                "A daily digest channel sends once a day, at its digest hour; quiet hours are for channels that "
                "send at once."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def secret_hint(self) -> str | None:
        """What is shown of the secret once saved: enough to tell two apart, never enough to use."""
        return hint(self.secret)

    @property
    def target_shown(self) -> str:
        """A Slack incoming-webhook URL is itself a secret: only its start is shown back."""
        return hint(self.target) if self.kind == ChannelKind.SLACK else self.target

    def wants(self, *, event: str, severity: str) -> bool:
        return self.enabled and event in self.events and SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]

    @property
    def email_addresses(self) -> list[str]:
        """An email channel's `target`: addresses, comma-separated."""
        return [address.strip() for address in self.target.split(",") if address.strip()]

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_hours_start is not None and self.quiet_hours_end is not None

    def held_until(self, *, severity: str, at: datetime, zone: str) -> datetime | None:
        """When a notice at `at` may go: None for now, else the digest's time or the end of quiet hours."""
        if self.digest == ChannelDigest.DAILY:
            return self.next_digest_at or next_daily_at(at, hour=self.digest_hour, zone=zone)
        if self.has_quiet_hours and severity != Severity.CRITICAL:
            return quiet_until(at, start=self.quiet_hours_start, end=self.quiet_hours_end, zone=zone)
        return None


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # not sent yet, or waiting for its next attempt
    HELD = "held"  # waiting for quiet hours to end or for the daily digest (next_attempt_at: when)
    DIGESTED = "digested"  # went into a digest (see `digest`), which is sent and retried in its stead
    SENT = "sent"
    FAILED = "failed"  # a final answer, or out of attempts


# What a delivery carries: one alert event (a ChannelEvent), or a digest of held ones.
DeliveryEvent = models.TextChoices(
    "DeliveryEvent", [(event.name, event.value) for event in ChannelEvent] + [("DIGEST", "digest")]
)


class Delivery(models.Model):
    """One alert event for one channel: created with the event, sent after commit, retried until done."""

    # The foreign keys used in lists lead the composite indexes below, which serve them.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    # Empty for a digest, which carries the deliveries it bundled (its `items`).
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries")
    alert_event = models.ForeignKey(  # delivery_one_per_event_and_channel leads with it
        AlertEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries", db_index=False
    )
    event = models.CharField(max_length=12, choices=DeliveryEvent.choices)
    # RESTRICT: a digest goes only with its channel (which takes its items too), never alone.
    digest = models.ForeignKey(
        "self",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="items",
        limit_choices_to={"event": "digest"},
        db_index=False,
    )
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="delivery_tenant_recent"),
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="delivery_tenant_status_recent"),
            models.Index(fields=["channel", "-created_at", "-id"], name="delivery_channel_recent"),
            models.Index(fields=["digest", "-created_at", "-id"], name="delivery_digest_recent"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_due"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="held"), name="delivery_held_due"),
        ]
        constraints = [
            # Nothing is delivered twice: one delivery per (alert event, channel), whoever creates it.
            models.UniqueConstraint(fields=["alert_event", "channel"], name="delivery_one_per_event_and_channel"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=Q(event__in=DeliveryEvent.values), name="delivery_event_valid"),
            models.CheckConstraint(
                condition=Q(event="digest", alert__isnull=True, alert_event__isnull=True)
                | (~Q(event="digest") & Q(alert__isnull=False, alert_event__isnull=False)),
                name="delivery_of_an_alert_event_or_a_digest",
            ),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(next_attempt_at__isnull=False), name="delivery_held_until"
            ),
            models.CheckConstraint(
                condition=~Q(status="digested") | Q(digest__isnull=False), name="delivery_digested_into_a_digest"
            ),
            models.CheckConstraint(
                condition=~Q(event="digest") | Q(status__in=["pending", "sent", "failed"]),
                name="delivery_digest_is_sent_not_held",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="delivery_sent_has_time"
            ),
        ]

    def __str__(self):
        if self.event == DeliveryEvent.DIGEST:
            return f"digest #{self.pk} to {self.channel_id} ({self.status})"
        return f"{self.event} of alert #{self.alert_id} to {self.channel_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: what the receiver answered, how long it took, or what went wrong."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField()
    error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.status_code or self.error[:40]} in {self.duration_ms:.0f} ms"
