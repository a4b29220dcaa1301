"""
What an alert's `payload` holds: the engine's evidence for the rule's type, and why it fired.
These serializers describe the JSON (the OpenAPI schema, and with it every generated client);
the payload itself is stored and returned as the engine wrote it.
"""

import json

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from alerts.models import Alert, AlertEvent, AlertStatus, AlertType, Severity
from core.outputs import SQLOutput
from core.serializers import ClosedSerializer, EmptyAsNullChoiceField, UtcDateTimeField, serializer_with_fields


class PendingEvidenceOutputSerializer(ClosedSerializer):
    """Present when the rule has a pending period (forEvaluations > 1)."""

    breachingEvaluations = serializers.IntegerField(
        required=False, min_value=1, help_text="Breaching evaluations in a row so far (counted up to forEvaluations)."
    )
    forEvaluations = serializers.IntegerField(required=False, min_value=2)


class ThresholdEvidenceOutputSerializer(PendingEvidenceOutputSerializer):
    """The guide's four keys; the others are present only for the options that produce them."""

    metric = serializers.CharField()
    value = serializers.FloatField(help_text="The value compared: the latest in the window, or the aggregate.")
    threshold = serializers.FloatField()
    observedAt = UtcDateTimeField(help_text="When the (latest) value was measured.")
    comparison = serializers.CharField(required=False, help_text="Present unless it is `above`.")
    thresholdHigh = serializers.FloatField(required=False, help_text="outside / inside: the range's upper bound.")
    aggregate = serializers.CharField(required=False, help_text="avg, sum, min, max or count; absent for last.")
    aggregateMinutes = serializers.IntegerField(required=False, min_value=1)
    points = serializers.IntegerField(required=False, min_value=0, help_text="The points the aggregate reduced.")
    baseline = serializers.FloatField(required=False, help_text="changeAbove / changeBelow: the value compared with.")
    baselineAt = UtcDateTimeField(required=False)
    compareDays = serializers.IntegerField(required=False, min_value=1)
    changePercent = serializers.FloatField(required=False, help_text="(value − baseline) / |baseline| × 100.")


class NoDataEvidenceOutputSerializer(PendingEvidenceOutputSerializer):
    """A rule with `noData: alert` found no datapoints (too few, for an anomaly)."""

    metric = serializers.CharField()
    noData = serializers.BooleanField(help_text="Always true.")
    windowDays = serializers.IntegerField(required=False, min_value=1, help_text="The window it looked at…")
    aggregateMinutes = serializers.IntegerField(required=False, min_value=1, help_text="…or the aggregate's minutes.")


DIRECTIONS = ["up", "down"]


class AnomalyEvidenceOutputSerializer(PendingEvidenceOutputSerializer):
    """The z-score method (the guide's)."""

    metric = serializers.CharField()
    direction = serializers.ChoiceField(
        choices=DIRECTIONS, required=False, help_text="Present unless both: the only direction that fires."
    )
    value = serializers.FloatField(help_text="The latest value.")
    mean = serializers.FloatField(help_text="Mean of the earlier points of the window.")
    std = serializers.FloatField(help_text="Their (population) standard deviation.")
    zScore = serializers.FloatField(
        allow_null=True, help_text="(value − mean) / std; null when the history is constant and the value differs."
    )
    threshold = serializers.FloatField(help_text="The |z| at which the rule fires.")
    windowDays = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=0, help_text="How many points the window held.")
    observedAt = UtcDateTimeField()
    constantHistory = serializers.BooleanField(required=False, help_text="Present (true) when std is 0.")


class RobustAnomalyEvidenceOutputSerializer(PendingEvidenceOutputSerializer):
    """The robust and seasonal methods: the median and MAD of the earlier points (of the season)."""

    metric = serializers.CharField()
    method = serializers.ChoiceField(choices=["robust", "seasonal"])
    direction = serializers.ChoiceField(
        choices=DIRECTIONS, required=False, help_text="Present unless both: the only direction that fires."
    )
    value = serializers.FloatField(help_text="The latest value.")
    median = serializers.FloatField(help_text="Median of the earlier points (seasonal: of the season's).")
    mad = serializers.FloatField(min_value=0, help_text="Their median absolute deviation from the median.")
    spread = serializers.FloatField(
        min_value=0,
        help_text="The σ estimated from the MAD (MAD / 0.6745), or from the mean absolute deviation (× 1.2533) "
        "where the MAD is 0.",
    )
    score = serializers.FloatField(
        allow_null=True, help_text="(value − median) / spread; null when the spread is 0 and the value differs."
    )
    threshold = serializers.FloatField(help_text="The score at which the rule fires.")
    windowDays = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=0, help_text="How many points the window held.")
    observedAt = UtcDateTimeField()
    constantHistory = serializers.BooleanField(required=False, help_text="Present (true) when the spread is 0.")
    seasonWeekday = serializers.ChoiceField(
        choices=["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
        allow_null=True,
        required=False,
        help_text="Seasonal: the weekday compared; null when too few points fell on it and the hour of any day was.",
    )
    seasonHour = serializers.IntegerField(
        min_value=0,
        max_value=23,
        allow_null=True,
        required=False,
        help_text="Seasonal: the hour; null for a daily metric.",
    )
    seasonPoints = serializers.IntegerField(min_value=0, required=False, help_text="Seasonal: the points compared.")
    timezone = serializers.CharField(required=False, help_text="Seasonal: the zone the hours are read in.")


class ScheduleEvidenceOutputSerializer(ClosedSerializer):
    schedule = serializers.CharField(help_text="The rule's cron expression, read in `timezone` (UTC when absent).")
    scheduledFor = UtcDateTimeField(help_text="The occurrence that fired, in UTC.")
    timezone = serializers.CharField(
        required=False, help_text="Present when the cron was read in a zone other than UTC: its IANA name."
    )
    scheduledForLocal = UtcDateTimeField(
        required=False,
        help_text="Present with `timezone`: the occurrence with the zone's offset (2026-03-30T09:00:00+02:00).",
    )


class _PayloadFieldsOutputSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the rule fired, in one sentence.")
    seeded = serializers.BooleanField(required=False, help_text="Present (true) on the demo's example alerts.")


class ThresholdAlertPayloadOutputSerializer(ThresholdEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


class AnomalyAlertPayloadOutputSerializer(AnomalyEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


class RobustAnomalyAlertPayloadOutputSerializer(RobustAnomalyEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


class ScheduleAlertPayloadOutputSerializer(ScheduleEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


class NoDataAlertPayloadOutputSerializer(NoDataEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


class BudgetRuleOutputSerializer(ClosedSerializer):
    ruleId = serializers.IntegerField()
    ruleName = serializers.CharField()


class BudgetOverflowAlertPayloadOutputSerializer(ClosedSerializer):
    """The payload of a tenant's overflow alert (ruleType alert_budget): the firings its hour's budget kept back."""

    reason = serializers.CharField(help_text="What was kept back, in one sentence.")
    budget = serializers.IntegerField(min_value=0, help_text="Alerts the tenant's rules may raise in an hour.")
    hour = UtcDateTimeField(help_text="The start of the UTC hour whose budget is spent.")
    suppressed = serializers.IntegerField(
        min_value=1, help_text="Firings in that hour that raised no alert (a rule still breaching alerts again later)."
    )
    rules = BudgetRuleOutputSerializer(many=True, help_text="The rules kept back, the first 20 of them.")
    moreRules = serializers.BooleanField(help_text="True when more rules were kept back than `rules` names.")


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="Evidence",
        serializers=[
            AnomalyEvidenceOutputSerializer,
            RobustAnomalyEvidenceOutputSerializer,
            ThresholdEvidenceOutputSerializer,
            ScheduleEvidenceOutputSerializer,
            NoDataEvidenceOutputSerializer,
        ],
        resource_type_field_name=None,
    )
)
class EvidenceField(serializers.JSONField):
    """The evidence of one evaluation: anomaly, threshold, schedule or no-data keys."""


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="AlertPayload",
        serializers=[
            AnomalyAlertPayloadOutputSerializer,
            RobustAnomalyAlertPayloadOutputSerializer,
            ThresholdAlertPayloadOutputSerializer,
            ScheduleAlertPayloadOutputSerializer,
            NoDataAlertPayloadOutputSerializer,
            BudgetOverflowAlertPayloadOutputSerializer,
        ],
        resource_type_field_name=None,
    )
)
class AlertPayloadField(serializers.JSONField):
    """An alert's payload: its rule type's evidence (or a no-data alert's), plus `reason`; or an overflow alert's."""


AlertEventOutputSerializer = serializer_with_fields(
    "AlertEventOutputSerializer",
    {
        "from": EmptyAsNullChoiceField(source="from_status", choices=AlertStatus.choices, allow_null=True),
        "to": serializers.ChoiceField(source="to_status", choices=AlertStatus.choices),
        "at": UtcDateTimeField(),
        "by": serializers.CharField(source="actor"),
        "reason": serializers.CharField(),
    },
)


class AlertOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ruleId = serializers.IntegerField(source="rule_id", allow_null=True)
    ruleName = serializers.CharField(source="rule_name")
    ruleType = serializers.ChoiceField(
        source="rule_type",
        choices=AlertType.choices,
        help_text="The rule's type; alert_budget: the tenant's overflow alert for an hour (no rule).",
    )
    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    payload = AlertPayloadField(help_text="The evidence: why it fired (its keys depend on ruleType).")
    triggeredAt = UtcDateTimeField(source="triggered_at")
    acknowledgedAt = UtcDateTimeField(source="acknowledged_at", allow_null=True)
    resolvedAt = UtcDateTimeField(source="resolved_at", allow_null=True)
    snoozedUntil = UtcDateTimeField(source="snoozed_until", allow_null=True)
    history = AlertEventOutputSerializer(many=True)


# Every alert body the API returns: what AlertOutputSerializer renders, made by the database (core.outputs).
# Its history is read from the alert's `history_json`, which alerts.services keeps (KEPT_HISTORY).
ALERT_BODY = SQLOutput(AlertOutputSerializer, model=Alert, kept={"history": "history_json"})


def first_history_json(*, at, actor: str) -> str:
    """The `history_json` of an alert just raised at `at`: its one entry, as AlertEventOutputSerializer renders it."""
    event = AlertEvent(from_status="", to_status=AlertStatus.PENDING, at=at, actor=actor, reason="")
    # Spaced and escaped as PostgreSQL writes the same array (json_build_object, array_to_json).
    return json.dumps([AlertEventOutputSerializer(event).data], ensure_ascii=False, separators=(", ", " : "))
