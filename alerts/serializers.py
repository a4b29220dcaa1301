"""
What an alert's `payload` holds: the engine's evidence for the rule's type, and why it fired.
These serializers describe the JSON (the OpenAPI schema, and with it every generated client);
the payload itself is stored and returned as the engine wrote it.
"""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from core.serializers import ClosedSerializer


class ThresholdEvidenceOutputSerializer(ClosedSerializer):
    metric = serializers.CharField()
    value = serializers.FloatField(help_text="The metric's latest value in the window.")
    threshold = serializers.FloatField()
    observedAt = serializers.DateTimeField(help_text="When that value was measured.")


class AnomalyEvidenceOutputSerializer(ClosedSerializer):
    metric = serializers.CharField()
    value = serializers.FloatField(help_text="The latest value.")
    mean = serializers.FloatField(help_text="Mean of the earlier points of the window.")
    std = serializers.FloatField(help_text="Their (population) standard deviation.")
    zScore = serializers.FloatField(
        allow_null=True, help_text="(value − mean) / std; null when the history is constant and the value differs."
    )
    threshold = serializers.FloatField(help_text="The |z| at which the rule fires.")
    windowDays = serializers.IntegerField(min_value=1)
    points = serializers.IntegerField(min_value=0, help_text="How many points the window held.")
    observedAt = serializers.DateTimeField()
    constantHistory = serializers.BooleanField(required=False, help_text="Present (true) when std is 0.")


class ScheduleEvidenceOutputSerializer(ClosedSerializer):
    schedule = serializers.CharField(help_text="The rule's cron expression, read in `timezone` (UTC when absent).")
    scheduledFor = serializers.DateTimeField(help_text="The occurrence that fired, in UTC.")
    timezone = serializers.CharField(
        required=False, help_text="Present when the cron was read in a zone other than UTC: its IANA name."
    )
    scheduledForLocal = serializers.DateTimeField(
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


class ScheduleAlertPayloadOutputSerializer(ScheduleEvidenceOutputSerializer, _PayloadFieldsOutputSerializer):
    pass


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="Evidence",
        serializers=[
            AnomalyEvidenceOutputSerializer,
            ThresholdEvidenceOutputSerializer,
            ScheduleEvidenceOutputSerializer,
        ],
        resource_type_field_name=None,
    )
)
class EvidenceField(serializers.JSONField):
    """The evidence of one evaluation: anomaly, threshold or schedule keys."""


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="AlertPayload",
        serializers=[
            AnomalyAlertPayloadOutputSerializer,
            ThresholdAlertPayloadOutputSerializer,
            ScheduleAlertPayloadOutputSerializer,
        ],
        resource_type_field_name=None,
    )
)
class AlertPayloadField(serializers.JSONField):
    """An alert's payload: its rule type's evidence, plus `reason`."""
