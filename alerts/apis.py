from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from alerts.deliveries import channel_send_test
from alerts.models import (
    AlertStatus,
    ChannelDigest,
    ChannelEvent,
    ChannelKind,
    DeliveryEvent,
    DeliveryStatus,
    Severity,
)
from alerts.selectors import (
    alert_body_get,
    alert_body_page,
    alert_get,
    channel_get,
    channel_list,
    delivery_list,
    notification_get,
    notification_list,
)
from alerts.serializers import ALERT_BODY, AlertOutputSerializer
from alerts.services import (
    MAX_SNOOZE,
    alert_acknowledge,
    alert_resolve,
    alert_snooze,
    channel_create,
    channel_delete,
    channel_update,
    notification_mark_read,
)
from core.openapi import error_response
from core.outputs import SQLOutput
from core.pagination import NewestFirstCursorPagination
from core.renderers import RawJSON
from core.serializers import (
    AwareDateTimeField,
    StrictInputSerializer,
    UtcDateTimeField,
    choice_field,
    serializer_with_fields,
)
from tenants.apis import TenantScopedApi
from tenants.principals import actor_label


def _csv_choices(name: str, choices: list[str]):
    class CsvChoicesField(serializers.CharField):
        """`a,b` → ["a", "b"], each one of `choices`."""

        def to_internal_value(self, data):
            values = [part.strip() for part in super().to_internal_value(data).split(",") if part.strip()]
            bad = [value for value in values if value not in choices]
            if bad:
                raise serializers.ValidationError(
                    f"{', '.join(repr(b) for b in bad)} is not a valid {name}; allowed: {', '.join(choices)}."
                )
            return values

    return CsvChoicesField(required=False)


class AlertListApi(TenantScopedApi):
    class FilterSerializer(serializers.Serializer):
        status = _csv_choices("status", AlertStatus.values)
        severity = _csv_choices("severity", Severity.values)
        ruleId = serializers.IntegerField(source="rule_id", required=False, min_value=1, max_value=2**63 - 1)

    class Pagination(NewestFirstCursorPagination):
        ordering = ("-triggered_at", "-id")
        position_key = "position"  # alert_body_page's rows

    pagination_class = Pagination

    @extend_schema(
        operation_id="alerts_list",
        summary="List alerts, newest first",
        parameters=[
            OpenApiParameter(
                "status", str, description="One or more of pending, acknowledged, resolved, snoozed, comma-separated"
            ),
            OpenApiParameter("severity", str, description="One or more of info, warning, critical, comma-separated"),
            OpenApiParameter(
                "ruleId",
                {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                description="Only the alerts of this rule",
            ),
        ],
        responses=AlertOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.query(self.FilterSerializer)

        def fetch(after: tuple[str, int] | None, reverse: bool, limit: int) -> list[dict]:
            return alert_body_page(
                tenant=self.tenant, body=ALERT_BODY, filters=filters, after=after, reverse=reverse, limit=limit
            )

        return self.page(fetch=fetch, represent=SQLOutput.texts)


class _AlertApi(TenantScopedApi):
    def get_alert(self, alert_id: int):
        return self.get_or_404(alert_get, tenant=self.tenant, alert_id=alert_id)

    def respond(self, alert):
        return Response(RawJSON(alert_body_get(tenant=self.tenant, alert_id=alert.pk, body=ALERT_BODY)))


class AlertDetailApi(_AlertApi):
    @extend_schema(
        operation_id="alerts_retrieve", summary="Get an alert with its history", responses=AlertOutputSerializer
    )
    def get(self, request, alert_id: int):
        return Response(
            RawJSON(self.get_or_404(alert_body_get, tenant=self.tenant, alert_id=alert_id, body=ALERT_BODY))
        )


class AlertAcknowledgeApi(_AlertApi):
    @extend_schema(
        operation_id="alerts_acknowledge",
        summary="Acknowledge an alert",
        description="Acknowledging twice changes nothing (same `acknowledgedAt`); a snoozed alert's snooze ends.",
        request=None,
        responses={
            200: AlertOutputSerializer,
            409: error_response("The alert is resolved.", ("conflict", "A resolved alert cannot be acknowledged.")),
        },
    )
    def post(self, request, alert_id: int):
        alert = alert_acknowledge(alert=self.get_alert(alert_id), actor=actor_label(request.user))
        return self.respond(alert)


class AlertResolveApi(_AlertApi):
    @extend_schema(
        operation_id="alerts_resolve",
        summary="Resolve an alert",
        description="Resolving a resolved alert changes nothing. The rule may then raise a new alert.",
        request=None,
        responses=AlertOutputSerializer,
    )
    def post(self, request, alert_id: int):
        alert = alert_resolve(alert=self.get_alert(alert_id), actor=actor_label(request.user))
        return self.respond(alert)


class AlertSnoozeApi(_AlertApi):
    class SnoozeInputSerializer(StrictInputSerializer):
        until = AwareDateTimeField(required=False)
        minutes = serializers.IntegerField(required=False, min_value=1, max_value=int(MAX_SNOOZE.total_seconds() // 60))

        def validate(self, attrs):
            if ("until" in attrs) == ("minutes" in attrs):
                raise serializers.ValidationError(
                    {"until": ["Give either 'until' (a time) or 'minutes', not both and not neither."]}
                )
            return attrs

    @extend_schema(
        operation_id="alerts_snooze",
        summary="Snooze an alert for some minutes or until a time",
        description="The alert returns to `pending` within a minute of `snoozedUntil`.",
        request=SnoozeInputSerializer,
        responses={
            200: AlertOutputSerializer,
            409: error_response("The alert is resolved.", ("conflict", "A resolved alert cannot be snoozed.")),
        },
    )
    def post(self, request, alert_id: int):
        alert = self.get_alert(alert_id)
        data = self.SnoozeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        until = data.validated_data.get("until") or now + timedelta(minutes=data.validated_data["minutes"])
        alert = alert_snooze(alert=alert, until=until, actor=actor_label(request.user), now=now)
        return self.respond(alert)


class NotificationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    alertId = serializers.IntegerField(source="alert_id")
    title = serializers.CharField()
    body = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    alertStatus = serializers.ChoiceField(source="alert_status", choices=AlertStatus.choices)
    read = serializers.SerializerMethodField()
    readAt = UtcDateTimeField(source="read_at", allow_null=True)
    createdAt = UtcDateTimeField(source="created_at")

    def get_read(self, notification) -> bool:
        return notification.read_at is not None


class NotificationListApi(TenantScopedApi):
    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, help_text="true: only unread; false: only read")

    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="notifications_list",
        summary="List in-app notifications, newest first",
        parameters=[FilterSerializer],
        responses=NotificationOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.query(self.FilterSerializer)
        return self.page(
            notification_list(tenant=self.tenant, unread=filters.get("unread")),
            serializer_class=NotificationOutputSerializer,
        )


class NotificationReadApi(TenantScopedApi):
    @extend_schema(
        operation_id="notifications_read",
        summary="Mark a notification read",
        description="Reading twice keeps the first `readAt`.",
        request=None,
        responses=NotificationOutputSerializer,
    )
    def post(self, request, notification_id: int):
        notification = self.get_or_404(notification_get, tenant=self.tenant, notification_id=notification_id)
        return Response(NotificationOutputSerializer(notification_mark_read(notification=notification)).data)


# --- Channels and deliveries -------------------------------------------------------------------


QUIET_TIME_FORMAT = "%H:%M"


@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "example": "22:00"})
class WallTimeField(serializers.TimeField):
    """A time of day on a clock, HH:MM (no seconds, no offset: the tenant's zone says which clock)."""

    def __init__(self, **kwargs):
        super().__init__(format=QUIET_TIME_FORMAT, input_formats=[QUIET_TIME_FORMAT], **kwargs)


QUIET_HOURS_HELP = (
    "HH:MM on the tenant's clock (its `timezone`), with quietHoursEnd (excluded; past midnight when it comes "
    "first, 22:00–07:00). Notices below critical that fall inside wait and go as one digest when they end. Both "
    "null: no quiet hours."
)
DIGEST_HELP = (
    "`off`: each notice when it happens (quiet hours aside). `daily`: every notice waits for one message a day at "
    "digestHour on the tenant's clock, listing what happened and what is still open. Not for PagerDuty."
)


class ChannelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    target = serializers.CharField(
        source="target_shown",
        help_text="email: the addresses; webhook: the URL; slack: the start of its (secret) URL; pagerduty: empty.",
    )
    secretHint = serializers.CharField(
        source="secret_hint", allow_null=True, help_text="The secret's first characters; it is never returned."
    )
    minSeverity = serializers.ChoiceField(source="min_severity", choices=Severity.choices)
    events = serializers.ListField(child=serializers.ChoiceField(choices=ChannelEvent.choices))
    enabled = serializers.BooleanField()
    quietHoursStart = WallTimeField(source="quiet_hours_start", allow_null=True, help_text=QUIET_HOURS_HELP)
    quietHoursEnd = WallTimeField(source="quiet_hours_end", allow_null=True)
    digest = serializers.ChoiceField(choices=ChannelDigest.choices, help_text=DIGEST_HELP)
    digestHour = serializers.IntegerField(
        source="digest_hour", help_text="Daily digest: the hour, 0–23, on the tenant's clock."
    )
    nextDigestAt = UtcDateTimeField(
        source="next_digest_at",
        allow_null=True,
        help_text="When the next daily digest goes; null unless `digest` is daily.",
    )
    createdAt = UtcDateTimeField(source="created_at")
    updatedAt = UtcDateTimeField(source="updated_at")


class ChannelSavedOutputSerializer(ChannelOutputSerializer):
    secret = serializers.CharField(
        allow_null=True,
        help_text="Shown this once: on create, the webhook's signing secret (generated unless given) or the routing "
        "key; on a change, the secret generated for it (a channel turned into a webhook), else null.",
    )

    def to_representation(self, channel):
        shown = self.context["secret"] if "secret" in self.context else channel.secret
        return {**super().to_representation(channel), "secret": shown or None}


class ChannelInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    kind = choice_field(ChannelKind.choices, noun="kind")
    target = serializers.CharField(max_length=2000, required=False, allow_blank=True, trim_whitespace=False)
    secret = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True, trim_whitespace=False, write_only=True
    )
    minSeverity = choice_field(Severity.choices, noun="minSeverity", source="min_severity", required=False)
    events = serializers.ListField(
        child=choice_field(ChannelEvent.choices, noun="event"), required=False, min_length=1, max_length=4
    )
    enabled = serializers.BooleanField(required=False)
    quietHoursStart = WallTimeField(
        source="quiet_hours_start", required=False, allow_null=True, help_text=QUIET_HOURS_HELP
    )
    quietHoursEnd = WallTimeField(source="quiet_hours_end", required=False, allow_null=True)
    digest = choice_field(ChannelDigest.choices, noun="digest", required=False, help_text=DIGEST_HELP)
    digestHour = serializers.IntegerField(source="digest_hour", required=False, min_value=0, max_value=23)


class ChannelListCreateApi(TenantScopedApi):
    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="channels_list", summary="List the tenant's channels", responses=ChannelOutputSerializer(many=True)
    )
    def get(self, request):
        return self.page(channel_list(tenant=self.tenant), serializer_class=ChannelOutputSerializer)

    @extend_schema(
        operation_id="channels_create",
        summary="Create a channel",
        description="A webhook without a `secret` gets a generated `whsec_` one: the response is the only time "
        "it is shown.",
        request=ChannelInputSerializer,
        responses={201: ChannelSavedOutputSerializer},
    )
    def post(self, request):
        data = ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = channel_create(tenant=self.tenant, **data.validated_data)
        return Response(ChannelSavedOutputSerializer(channel).data, status=status.HTTP_201_CREATED)


class _ChannelApi(TenantScopedApi):
    def get_channel(self, channel_id: int):
        return self.get_or_404(channel_get, tenant=self.tenant, channel_id=channel_id)


class ChannelDetailApi(_ChannelApi):
    @extend_schema(operation_id="channels_retrieve", summary="Get a channel", responses=ChannelOutputSerializer)
    def get(self, request, channel_id: int):
        return Response(ChannelOutputSerializer(self.get_channel(channel_id)).data)

    @extend_schema(
        operation_id="channels_partial_update",
        summary="Change some fields of a channel",
        description="Only the fields sent change; a `secret` left out or empty stays as it is, unless `kind` "
        "changes: then it is dropped (a new webhook gets a generated one, returned in `secret` this once).",
        request=ChannelInputSerializer(partial=True),
        responses=ChannelSavedOutputSerializer,
    )
    def patch(self, request, channel_id: int):
        channel = self.get_channel(channel_id)
        data = ChannelInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = channel_update(channel=channel, **data.validated_data)
        generated = (
            updated.secret if updated.secret != channel.secret and not data.validated_data.get("secret") else None
        )
        return Response(ChannelSavedOutputSerializer(updated, context={"secret": generated}).data)

    @extend_schema(
        operation_id="channels_destroy",
        summary="Delete a channel",
        description="Its deliveries go with it. A channel a rule names is not deleted (409): remove it from the "
        "rule's `channels` first, so the rule does not fall back to every channel of the tenant.",
        responses={
            204: None,
            409: error_response(
                "A rule names the channel.",
                (
                    "conflict",
                    "The channel 'Ops room' is named by 1 rule(s): Checkout errors. Remove it from them first "
                    "(PATCH /triggers/{id} channels).",
                ),
            ),
        },
    )
    def delete(self, request, channel_id: int):
        channel_delete(channel=self.get_channel(channel_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


DeliveryAttemptOutputSerializer = serializer_with_fields(
    "DeliveryAttemptOutputSerializer",
    {
        "at": UtcDateTimeField(),
        "statusCode": serializers.IntegerField(source="status_code", allow_null=True),
        "durationMs": serializers.FloatField(source="duration_ms"),
        "error": serializers.CharField(),
    },
)


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    channelId = serializers.IntegerField(source="channel_id")
    alertId = serializers.IntegerField(source="alert_id", allow_null=True, help_text="Null for a digest.")
    event = serializers.ChoiceField(
        choices=DeliveryEvent.choices, help_text="An alert event, or `digest`: the notices held for this channel."
    )
    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        help_text="`pending` (to be sent; retried at nextAttemptAt), `held` (waiting for quiet hours to end or the "
        "daily digest, at nextAttemptAt), `digested` (went out in the digest digestId), `sent`, `failed`.",
    )
    digestId = serializers.IntegerField(
        source="digest_id", allow_null=True, help_text="The digest delivery that carried this held notice."
    )
    attempts = serializers.IntegerField()
    nextAttemptAt = UtcDateTimeField(source="next_attempt_at", allow_null=True)
    sentAt = UtcDateTimeField(source="sent_at", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    createdAt = UtcDateTimeField(source="created_at")
    attemptLog = DeliveryAttemptOutputSerializer(source="attempt_log", many=True)


class DeliveryListApi(TenantScopedApi):
    class FilterSerializer(serializers.Serializer):
        channel = serializers.IntegerField(source="channel_id", required=False, min_value=1, max_value=2**63 - 1)
        status = choice_field(DeliveryStatus.choices, noun="status", required=False)
        digest = serializers.IntegerField(
            source="digest_id", required=False, min_value=1, max_value=2**63 - 1, help_text="The items of a digest."
        )

    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="deliveries_list",
        summary="List deliveries to the tenant's channels, newest first",
        parameters=[FilterSerializer],
        responses=DeliveryOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.query(self.FilterSerializer)
        return self.page(delivery_list(tenant=self.tenant, filters=filters), serializer_class=DeliveryOutputSerializer)


ChannelTestOutputSerializer = serializer_with_fields(
    "ChannelTestOutputSerializer",
    {
        "ok": serializers.BooleanField(help_text="The receiver accepted it."),
        "statusCode": serializers.IntegerField(
            source="status_code", allow_null=True, help_text="The receiver's answer (email: 250); null if none came."
        ),
        "durationMs": serializers.FloatField(source="duration_ms"),
        "error": serializers.CharField(help_text="What went wrong; empty when ok."),
    },
)


class ChannelTestApi(_ChannelApi):
    @extend_schema(
        operation_id="channels_test",
        summary="Send a test notification",
        description="Sent now, answered now: whether the receiver accepted it. PagerDuty gets a trigger and its "
        "resolve. Nothing is stored.",
        request=None,
        responses=ChannelTestOutputSerializer,
    )
    def post(self, request, channel_id: int):
        return Response(ChannelTestOutputSerializer(channel_send_test(channel=self.get_channel(channel_id))).data)
