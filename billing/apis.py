import logging
import time
from datetime import timedelta

import stripe
from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import BillingEventOutcome
from billing.selectors import billing_usage_summary
from billing.services.webhook import MAX_UNIX_TIME, billing_event_receive
from core.exceptions import ApplicationError
from core.openapi import error_response
from core.parsers import loads_request_json
from core.serializers import serializer_with_fields
from tenants.apis import TenantScopedApi

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class UsageTotalsOutputSerializer(serializers.Serializer):
    tokensUsed = serializers.IntegerField(source="tokens_used")
    tasksExecuted = serializers.IntegerField(source="tasks_executed")
    alertsTriggered = serializers.IntegerField(source="alerts_triggered")
    activeWidgets = serializers.IntegerField(source="active_widgets")


class BillingUsagePointOutputSerializer(UsageTotalsOutputSerializer):
    date = serializers.DateField(source="day")


BillingUsageOutputSerializer = serializer_with_fields(
    "BillingUsageOutputSerializer",
    {
        "tenantId": serializers.CharField(source="tenant_id"),
        "from": serializers.DateField(source="since"),
        "to": serializers.DateField(source="until"),
        "totals": UsageTotalsOutputSerializer(),
        "points": BillingUsagePointOutputSerializer(many=True),
    },
)


class BillingUsageApi(TenantScopedApi):
    @extend_schema(
        operation_id="billing_usage",
        summary="Your daily usage and its totals over a range of days",
        description="Counters (`tokensUsed`, `tasksExecuted`, `alertsTriggered`) total to their sum, the gauge "
        "`activeWidgets` to its peak day. Every day of the range is present; a day without usage is zeros.",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First UTC day; default 29 days before `to`"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last UTC day (inclusive); default today"),
        ],
        responses=BillingUsageOutputSerializer,
    )
    def get(self, request):
        problems = {}
        days = {}
        for name in ("from", "to"):
            try:
                days[name] = self._day(request, name)
            except serializers.ValidationError as exc:
                problems.update(exc.detail)
        if problems:
            raise serializers.ValidationError(problems)
        until = days["to"] or timezone.now().date()
        since = days["from"] or until - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"from": [f"Must be on or before 'to' ({until})."]})
        if (until - since).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": [f"The range may span at most {MAX_RANGE_DAYS} days; ask for several ranges."]}
            )
        return Response(
            BillingUsageOutputSerializer(billing_usage_summary(tenant=self.tenant, since=since, until=until)).data
        )

    @staticmethod
    def _day(request, name):
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            day = serializers.DateField(input_formats=["%Y-%m-%d"]).to_internal_value(raw)
        except serializers.ValidationError:
            raise serializers.ValidationError({name: [f"{raw!r} is not a day; use YYYY-MM-DD."]}) from None
        if not 2 <= day.year <= 9998:  # room for the default range arithmetic
            raise serializers.ValidationError({name: [f"{raw!r} is out of range (years 0002 to 9998)."]})
        return day


class InvalidSignature(ApplicationError):
    code = "invalid_signature"


def _signature_time(header: str) -> int:
    """The `t=` of a header Stripe's library has verified, read the way that library reads it."""
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


class BillingWebhookReceivedOutputSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=BillingEventOutcome.values)
    duplicate = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)


class StripeWebhookApi(APIView):
    """
    Stripe calls this. Verify the signature, then record the event once and apply its usage.
    Authentication is the signature, so DRF's authentication and CSRF do not apply.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="billing_webhook",
        summary="Receive a Stripe event (signed)",
        description="Stripe (or anything that signs the same way) posts events here; the `Stripe-Signature` "
        "header is the authentication. Each event is stored once by its `id`: a redelivery answers 200 with "
        "`duplicate: true` and changes nothing.",
        request=inline_serializer(
            "StripeEvent",
            {
                "id": serializers.CharField(max_length=255),
                "type": serializers.CharField(max_length=255),
                "created": serializers.IntegerField(required=False, min_value=0, max_value=MAX_UNIX_TIME),
                "data": inline_serializer(
                    "StripeEventData",
                    {"object": serializers.DictField(help_text="Usage deltas are read from its `metadata`.")},
                    required=False,
                ),
            },
        ),
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                str,
                location=OpenApiParameter.HEADER,
                required=True,
                description='t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>" with the webhook secret>',
            )
        ],
        responses={
            200: BillingWebhookReceivedOutputSerializer,
            400: error_response(
                "A missing, wrong or stale signature (nothing is stored), or an event that cannot be stored.",
                (
                    "invalid_signature",
                    {"Stripe-Signature": ["No signatures found matching the expected signature for payload"]},
                ),
                ("validation_error", {"id": ["Required: the event id, a string (evt_…)."]}),
                ("parse_error", "JSON parse error - Expecting value: line 1 column 1 (char 0)"),
            ),
        },
        auth=[],
    )
    def post(self, request):
        body = request.body
        self._verify(body, request.headers.get("Stripe-Signature"))
        event = loads_request_json(body)
        received = billing_event_receive(event=event)
        record = received.event
        # BillingWebhookReceivedOutputSerializer's shape (the schema's), built directly: its plain
        # fields would copy these values through, at a cost Stripe's deliveries pay on every event.
        return Response(
            {
                "received": True,
                "id": record.event_id,
                "outcome": str(record.outcome),
                "duplicate": received.duplicate,
                "reason": record.reason,
            }
        )

    @staticmethod
    def _verify(body: bytes, header: str | None) -> None:
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            if settings.DEBUG and settings.STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED:
                logger.warning(
                    "INSECURE: accepting a billing event WITHOUT verifying it "
                    "(STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED is on and STRIPE_WEBHOOK_SECRET is not set)"
                )
                return
            raise InvalidSignature(
                "Webhook secret not configured.",
                detail={
                    "Stripe-Signature": [
                        "This server has no STRIPE_WEBHOOK_SECRET, so it cannot verify an event, and accepts none."
                    ]
                },
            )
        tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature("Bad signature.", detail={"Stripe-Signature": [str(exc)]}) from None
        except UnicodeDecodeError:
            raise InvalidSignature("Bad body.", detail={"Stripe-Signature": ["The body is not UTF-8."]}) from None
        # Stripe's library refuses signatures that are too old; one from the future is as stale.
        signed_at = _signature_time(header)
        if signed_at > time.time() + tolerance:
            raise InvalidSignature(
                "Signature from the future.",
                detail={
                    "Stripe-Signature": [
                        f"Timestamp outside the tolerance zone ({signed_at}): more than {tolerance} s in the future."
                    ]
                },
            )
