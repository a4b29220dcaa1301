from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from alerts.serializers import EvidenceField
from core.openapi import error_response
from core.pagination import NewestFirstCursorPagination
from core.serializers import (
    AwareDateTimeField,
    EmptyAsNullCharField,
    FiniteFloatField,
    StrictInputSerializer,
    UtcDateTimeField,
    choice_field,
)
from proactive.engine.backtest import DEFAULT_BACKTEST_DAYS, MAX_BACKTEST_DAYS, trigger_rule_backtest
from proactive.engine.runner import trigger_rule_evaluate
from proactive.engine.schedules import describe_schedule, next_occurrences
from proactive.metric_providers import is_builtin_metric
from proactive.metrics import metric_series
from proactive.models import (
    MAX_EVALUATIONS,
    MAX_WINDOW_DAYS,
    Aggregate,
    AnomalyMethod,
    Comparison,
    Direction,
    NoData,
    RuleHealth,
    RuleType,
    Severity,
)
from proactive.selectors import metric_point_list, trigger_rule_get, trigger_rule_list
from proactive.services import (
    MAX_POINTS_PER_REQUEST,
    metric_points_write,
    trigger_rule_build,
    trigger_rule_create,
    trigger_rule_delete,
    trigger_rule_update,
)
from proactive.validators import (
    METRIC_PATTERN,
    validate_metric_identifier,
    validate_point_time,
)
from tenants.apis import TenantScopedApi
from tenants.principals import actor_label

NEXT_OCCURRENCES = 5
COMPARISONS_HELP = (
    "above (default) or below threshold; outside or inside threshold…thresholdHigh; changeAbove or changeBelow: "
    "the percent change against the value compareDays earlier, compared with threshold (a percentage)."
)
AGGREGATES_HELP = "last (default: the latest value), or avg, sum, min, max or count over the last aggregateMinutes."
NO_DATA_HELP = (
    "ok (default: no data is not an alert, and may clear one), alert (raise a no-data alert) or keep (change nothing)."
)
METHODS_HELP = (
    "zscore (default: mean and standard deviation), robust (median and MAD) or seasonal (against the same hour "
    "of day and day of week)."
)


# An ISO 8601 time with its zone's offset, never Z: 2026-11-27T09:00:00+01:00.
LOCAL_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"


def _occurrences_schema(**item) -> dict:
    return {
        "type": ["array", "null"],
        "items": {"type": "string", "format": "date-time", **item},
        "minItems": NEXT_OCCURRENCES,
        "maxItems": NEXT_OCCURRENCES,
    }


CHANNELS_HELP = (
    "Ids of the tenant's channels this rule's alerts go to (each channel's minimum severity and events still "
    "apply). Empty: every channel of the tenant that wants them."
)


_UTC_TIME = UtcDateTimeField()  # one field for every next occurrence: a field costs more to make than to use


class TriggerRuleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=RuleType.choices)
    schedule = EmptyAsNullCharField(allow_null=True)
    metric = EmptyAsNullCharField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    windowDays = serializers.IntegerField(source="window_days", allow_null=True)
    severity = serializers.ChoiceField(choices=Severity.choices)
    enabled = serializers.BooleanField()
    autoResolve = serializers.BooleanField(source="auto_resolve")
    channels = serializers.SerializerMethodField(method_name="get_channels", help_text=CHANNELS_HELP)
    comparison = EmptyAsNullCharField(allow_null=True, help_text="metric_threshold rules: " + COMPARISONS_HELP)
    thresholdHigh = serializers.FloatField(source="threshold_high", allow_null=True)
    compareDays = serializers.IntegerField(source="compare_days", allow_null=True)
    aggregate = EmptyAsNullCharField(allow_null=True, help_text="metric_threshold rules: " + AGGREGATES_HELP)
    aggregateMinutes = serializers.IntegerField(source="aggregate_minutes", allow_null=True)
    forEvaluations = serializers.IntegerField(source="for_evaluations", allow_null=True)
    clearEvaluations = serializers.IntegerField(source="clear_evaluations", allow_null=True)
    noData = EmptyAsNullCharField(source="no_data", allow_null=True, help_text="Metric rules: " + NO_DATA_HELP)
    method = EmptyAsNullCharField(allow_null=True, help_text="anomaly rules: " + METHODS_HELP)
    direction = EmptyAsNullCharField(allow_null=True, help_text="anomaly rules: up, down or both.")
    timezone = EmptyAsNullCharField(
        allow_null=True, help_text="Schedule rules: the IANA zone its cron is read in; null: the tenant's zone."
    )
    createdAt = UtcDateTimeField(source="created_at")
    updatedAt = UtcDateTimeField(source="updated_at")
    nextRunAt = UtcDateTimeField(source="next_run_at", allow_null=True)
    lastEvaluatedAt = UtcDateTimeField(source="last_evaluated_at", allow_null=True)
    lastFiredAt = UtcDateTimeField(source="last_fired_at", allow_null=True)
    lastError = EmptyAsNullCharField(source="last_error", allow_null=True)
    lastErrorAt = UtcDateTimeField(source="last_error_at", allow_null=True)
    health = serializers.ChoiceField(
        choices=RuleHealth.choices,
        help_text="What the last evaluation saw: `ok`; `noData` (no datapoints in the window, or fewer than an "
        "anomaly rule needs: the rule cannot tell, which is not all clear); `error` (see lastError); `unknown` "
        "(not evaluated since it was created or its metric, schedule or window changed).",
    )
    scheduleTimezone = serializers.CharField(
        source="schedule_timezone",
        allow_null=True,
        help_text="Schedule rules: the IANA zone the cron is read in — `timezone`, else the tenant's. Null for "
        "metric rules.",
    )
    scheduleDescription = serializers.SerializerMethodField(
        method_name="get_schedule_description",
        help_text='Schedule rules: what `schedule` means, in plain English and in scheduleTimezone, e.g. "At 09:00, '
        'Monday through Friday (Europe/Berlin)". Null for metric rules and for a schedule that is not standard '
        "cron (see lastError).",
    )
    nextOccurrences = serializers.SerializerMethodField(
        method_name="get_next_occurrences",
        help_text=f"Schedule rules: the next {NEXT_OCCURRENCES} times the schedule occurs after now, in UTC: the "
        "times the engine runs the rule (also shown while it is disabled). Null for metric rules.",
    )
    nextOccurrencesLocal = serializers.SerializerMethodField(
        method_name="get_next_occurrences_local",
        help_text="Schedule rules: the same instants as nextOccurrences with scheduleTimezone's offset "
        "(2026-11-27T09:00:00+01:00). Null for metric rules.",
    )

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_channels(self, rule) -> list[int]:
        if (ids := getattr(rule, "channel_ids", None)) is not None:  # read with the rule (with_channel_ids)
            return list(ids)
        return sorted(channel.pk for channel in rule.channels.all() if channel.tenant_id == rule.tenant_id)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_schedule_description(self, rule) -> str | None:
        if rule.type != RuleType.SCHEDULE:
            return None
        try:
            return describe_schedule(rule.schedule, rule.schedule_timezone)
        except ValueError:
            return None

    @extend_schema_field(_occurrences_schema())
    def get_next_occurrences(self, rule) -> list[str] | None:
        occurrences = self._next_occurrences(rule)
        if occurrences is None:
            return None
        return [_UTC_TIME.to_representation(moment) for moment in occurrences]

    @extend_schema_field(_occurrences_schema(pattern=LOCAL_TIME_PATTERN))
    def get_next_occurrences_local(self, rule) -> list[str] | None:
        occurrences = self._next_occurrences(rule)
        if occurrences is None:
            return None
        zone = ZoneInfo(rule.schedule_timezone)
        return [moment.astimezone(zone).isoformat() for moment in occurrences]

    def _next_occurrences(self, rule) -> list[datetime] | None:
        if rule.type != RuleType.SCHEDULE:
            return None
        # One "now" for the whole response: every rule of a page counts from the same moment.
        now = self.context.setdefault("now", timezone.now())
        try:
            return next_occurrences(rule.schedule, after=now, count=NEXT_OCCURRENCES, timezone=rule.schedule_timezone)
        except ValueError:  # croniter finds none: a schedule that never occurs, which only an old rule can have
            return None


class TriggerRuleInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200)
    type = choice_field(RuleType.choices, noun="type")
    schedule = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    metric = serializers.CharField(  # an identifier, taken as sent: "m\n" is not quietly "m"
        max_length=200, required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    threshold = FiniteFloatField(required=False, allow_null=True)
    windowDays = serializers.IntegerField(
        source="window_days", required=False, allow_null=True, min_value=1, max_value=MAX_WINDOW_DAYS
    )
    severity = choice_field(Severity.choices, noun="severity", required=False)
    enabled = serializers.BooleanField(required=False)
    autoResolve = serializers.BooleanField(source="auto_resolve", required=False)
    channels = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=50, help_text=CHANNELS_HELP
    )
    comparison = choice_field(Comparison.choices, noun="comparison", required=False, allow_null=True)
    thresholdHigh = FiniteFloatField(source="threshold_high", required=False, allow_null=True)
    compareDays = serializers.IntegerField(
        source="compare_days", required=False, allow_null=True, min_value=1, max_value=MAX_WINDOW_DAYS
    )
    aggregate = choice_field(Aggregate.choices, noun="aggregate", required=False, allow_null=True)
    aggregateMinutes = serializers.IntegerField(
        source="aggregate_minutes", required=False, allow_null=True, min_value=1, max_value=MAX_WINDOW_DAYS * 1440
    )
    forEvaluations = serializers.IntegerField(
        source="for_evaluations", required=False, allow_null=True, min_value=1, max_value=MAX_EVALUATIONS
    )
    clearEvaluations = serializers.IntegerField(
        source="clear_evaluations", required=False, allow_null=True, min_value=1, max_value=MAX_EVALUATIONS
    )
    noData = choice_field(NoData.choices, noun="noData", source="no_data", required=False, allow_null=True)
    method = choice_field(AnomalyMethod.choices, noun="method", required=False, allow_null=True)
    direction = choice_field(Direction.choices, noun="direction", required=False, allow_null=True)
    timezone = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


class TriggerRuleListCreateApi(TenantScopedApi):
    class FilterSerializer(serializers.Serializer):
        type = choice_field(RuleType.choices, noun="type", required=False)
        severity = choice_field(Severity.choices, noun="severity", required=False)
        enabled = serializers.BooleanField(required=False)

    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        operation_id="triggers_list",
        summary="List trigger rules, newest first",
        parameters=[FilterSerializer],
        responses=TriggerRuleOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.query(self.FilterSerializer)
        return self.page(
            trigger_rule_list(tenant=self.tenant, filters=filters), serializer_class=TriggerRuleOutputSerializer
        )

    @extend_schema(
        operation_id="triggers_create",
        summary="Create a trigger rule",
        request=TriggerRuleInputSerializer,
        responses={201: TriggerRuleOutputSerializer},
    )
    def post(self, request):
        data = TriggerRuleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = trigger_rule_create(tenant=self.tenant, **data.validated_data)
        return Response(TriggerRuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


class TriggerRuleDetailApi(TenantScopedApi):
    def get_rule(self, rule_id: int):
        return self.get_or_404(trigger_rule_get, tenant=self.tenant, rule_id=rule_id)

    @extend_schema(
        operation_id="triggers_retrieve", summary="Get a trigger rule", responses=TriggerRuleOutputSerializer
    )
    def get(self, request, rule_id: int):
        return Response(TriggerRuleOutputSerializer(self.get_rule(rule_id)).data)

    @extend_schema(
        operation_id="triggers_partial_update",
        summary="Change some fields of a trigger rule",
        description="Only the fields sent change. Changing `type` drops the fields the new type does not use.",
        request=TriggerRuleInputSerializer(partial=True),
        responses=TriggerRuleOutputSerializer,
    )
    def patch(self, request, rule_id: int):
        rule = self.get_rule(rule_id)
        data = TriggerRuleInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = trigger_rule_update(rule=rule, **data.validated_data)
        return Response(TriggerRuleOutputSerializer(rule).data)

    @extend_schema(
        operation_id="triggers_destroy",
        summary="Delete a trigger rule",
        description="Its alerts stay, with their `ruleName`; their `ruleId` becomes null.",
        responses={204: None},
    )
    def delete(self, request, rule_id: int):
        trigger_rule_delete(rule=self.get_rule(rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetricPointOutputSerializer(serializers.Serializer):
    timestamp = UtcDateTimeField()
    value = serializers.FloatField()


class MetricPointInputSerializer(StrictInputSerializer):
    timestamp = AwareDateTimeField(help_text="ISO 8601 with an offset; at most an hour in the future.")
    value = FiniteFloatField()

    def validate_timestamp(self, timestamp):
        try:
            validate_point_time(timestamp, now=timezone.now())
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return timestamp


class MetricPointsApi(TenantScopedApi):
    class MetricPointsInputSerializer(StrictInputSerializer):
        points = serializers.ListField(
            child=MetricPointInputSerializer(), allow_empty=False, min_length=1, max_length=MAX_POINTS_PER_REQUEST
        )

        def validate_points(self, points):
            return [(point["timestamp"], point["value"]) for point in points]

    class MetricPointsWrittenOutputSerializer(serializers.Serializer):
        metric = serializers.CharField()
        written = serializers.IntegerField(min_value=1)

    class FilterSerializer(serializers.Serializer):
        # `from` is a Python keyword; the query parameter names are mapped in the view.
        since = AwareDateTimeField(required=False)
        until = AwareDateTimeField(required=False)

    class Pagination(NewestFirstCursorPagination):
        ordering = ("-timestamp",)
        page_size = 500
        max_page_size = 1000
        envelope_fields = {"metric": {"type": "string", "description": "The metric these points belong to."}}

    pagination_class = Pagination
    metric_parameter = OpenApiParameter(
        "metric",
        {"type": "string", "pattern": f"^{METRIC_PATTERN.pattern}$", "maxLength": 200},
        OpenApiParameter.PATH,
        description="A metric identifier, e.g. analytics.mql.delta, or a built-in usage.* metric",
    )

    def validate_metric(self, metric: str) -> str:
        try:
            validate_metric_identifier(metric)
        except ValidationError as exc:
            raise ValidationError({"metric": exc.messages}) from None
        return metric

    @extend_schema(
        operation_id="metric_points_list",
        summary="List a metric's datapoints, newest first",
        parameters=[
            metric_parameter,
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="ISO 8601 with an offset; default 30 days before `to`"
            ),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="ISO 8601 with an offset; default now"),
        ],
        responses=MetricPointOutputSerializer(many=True),
    )
    def get(self, request, metric: str):
        metric = self.validate_metric(metric)
        params = {"since": request.query_params.get("from"), "until": request.query_params.get("to")}
        filters = self.FilterSerializer(data={k: v for k, v in params.items() if v is not None})
        if not filters.is_valid():
            names = {"since": "from", "until": "to"}
            raise serializers.ValidationError({names[k]: v for k, v in filters.errors.items()})
        until = filters.validated_data.get("until") or timezone.now()
        since = filters.validated_data.get("since") or until - timedelta(days=30)
        if since > until:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})

        if is_builtin_metric(metric):  # e.g. a daily usage series from billing: paged in memory
            points = list(reversed(metric_series(tenant_id=self.tenant.id, metric=metric, since=since, until=until)))
            paginator = self.pagination_class()
            page = paginator.paginate_sequence(points, request, key=lambda point: point.timestamp)
            return paginator.get_paginated_response(MetricPointOutputSerializer(page, many=True).data, metric=metric)
        return self.page(
            metric_point_list(tenant=self.tenant, metric=metric, since=since, until=until),
            serializer_class=MetricPointOutputSerializer,
            envelope={"metric": metric},
        )

    @extend_schema(
        operation_id="metric_points_create",
        summary="Write datapoints of a custom metric",
        description="A point at a timestamp that already has one replaces its value, so retrying never doubles "
        "data. One bad point rejects the whole request, naming each bad point by its index.",
        parameters=[metric_parameter],
        request=MetricPointsInputSerializer,
        responses={201: MetricPointsWrittenOutputSerializer},
    )
    def post(self, request, metric: str):
        metric = self.validate_metric(metric)  # the path first, as GET does (the service checks it too)
        data = self.MetricPointsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        written = metric_points_write(tenant=self.tenant, metric=metric, points=data.validated_data["points"])
        return Response(
            self.MetricPointsWrittenOutputSerializer({"metric": metric, "written": written}).data,
            status=status.HTTP_201_CREATED,
        )


class TriggerEvaluationOutputSerializer(serializers.Serializer):
    ruleId = serializers.IntegerField(source="rule_id")
    evaluatedAt = UtcDateTimeField(source="evaluated_at")
    dryRun = serializers.BooleanField(source="dry_run")
    fired = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True, help_text="What the engine decided and why; null on an error.")
    evidence = EvidenceField(
        allow_null=True, help_text="What the decision rests on; null when there was nothing to compare (no data)."
    )
    error = serializers.CharField(allow_null=True)
    alertId = serializers.IntegerField(
        source="alert_id", allow_null=True, help_text="The alert raised, or the open one this firing met."
    )
    alertCreated = serializers.BooleanField(source="alert_created")
    resolvedAlertId = serializers.IntegerField(
        source="resolved_alert_id", allow_null=True, help_text="The alert auto-resolve closed, if any."
    )
    rule = TriggerRuleOutputSerializer(help_text="The rule after the evaluation (its bookkeeping updated).")


class TriggerRuleEvaluateApi(TenantScopedApi):
    """Evaluate one rule now: what happened and why. `dryRun` evaluates and writes nothing."""

    class EvaluateInputSerializer(StrictInputSerializer):
        dryRun = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="triggers_evaluate",
        summary="Evaluate a rule now and say what happened and why",
        description="With `dryRun` (in the body or the query) the rule is evaluated and nothing is written; "
        "a disabled rule can only be evaluated that way.",
        request=EvaluateInputSerializer,
        parameters=[OpenApiParameter("dryRun", bool, description="Evaluate without writing anything")],
        responses={
            200: TriggerEvaluationOutputSerializer,
            409: error_response(
                "The rule is disabled (evaluate it with dryRun), or the engine is evaluating it right now.",
                ("conflict", "The rule is disabled: enable it, or evaluate with dryRun."),
            ),
        },
    )
    def post(self, request, rule_id: int):
        rule = self.get_or_404(trigger_rule_get, tenant=self.tenant, rule_id=rule_id)
        data = self.EvaluateInputSerializer(data=request.data)  # no body parses as {}
        data.is_valid(raise_exception=True)
        try:
            query = serializers.BooleanField().to_internal_value(request.query_params.get("dryRun", "false"))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"dryRun": exc.detail}) from None
        evaluation = trigger_rule_evaluate(
            rule=rule, dry_run=data.validated_data["dryRun"] or query, actor=actor_label(request.user)
        )
        return Response(TriggerEvaluationOutputSerializer(evaluation).data)


class BacktestFiringOutputSerializer(serializers.Serializer):
    at = UtcDateTimeField(help_text="The minute it fired (an occurrence, for a schedule).")
    minutes = serializers.IntegerField(
        min_value=1, help_text="One-minute evaluations in a row with nothing new to read, all firing, from `at`."
    )
    value = serializers.FloatField(allow_null=True, help_text="The latest value the rule saw.")
    zScore = serializers.FloatField(
        source="z_score",
        allow_null=True,
        help_text="Anomaly rules: the method's score (z, or robust); null if unbounded.",
    )


class BacktestAlertOutputSerializer(serializers.Serializer):
    openedAt = UtcDateTimeField(source="opened_at")
    resolvedAt = UtcDateTimeField(
        source="resolved_at", allow_null=True, help_text="When auto-resolve would have closed it; null: still open."
    )
    reason = serializers.CharField()
    evidence = EvidenceField(help_text="What the engine would have put in the alert's payload.")


class BacktestBandOutputSerializer(serializers.Serializer):
    timestamp = UtcDateTimeField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class BacktestOutputSerializer(serializers.Serializer):
    since = UtcDateTimeField(help_text="The first minute replayed is the one after this.")
    until = UtcDateTimeField()
    evaluations = serializers.IntegerField(help_text="Evaluations replayed one by one.")
    minutes = serializers.IntegerField(
        help_text="One-minute evaluations they stand for (metric rules: minutes with nothing new to read share "
        "the decision of the last change), or the occurrences of a schedule."
    )
    pointsRead = serializers.IntegerField(source="points_read", help_text="Datapoints read, the window included.")
    series = MetricPointOutputSerializer(
        many=True, help_text="The metric over the span, for a chart: at most 2,000 points (each bucket's low and high)."
    )
    band = BacktestBandOutputSerializer(
        many=True,
        allow_null=True,
        help_text="Anomaly rules: the expected value ± threshold·σ across the span (mean and std; robust and "
        "seasonal: median and robust σ).",
    )
    firings = BacktestFiringOutputSerializer(many=True, help_text="The first 1,000 evaluations that fired.")
    firingsTruncated = serializers.BooleanField(source="firings_truncated")
    firingCount = serializers.IntegerField(
        source="firing_count", help_text="One-minute evaluations (or occurrences) that fired, over the whole span."
    )
    alerts = BacktestAlertOutputSerializer(
        many=True,
        help_text="The first 1,000 alerts one open alert per rule and auto-resolve would have made, nobody acting "
        "meanwhile.",
    )
    alertCount = serializers.IntegerField(source="alert_count", help_text="All the alerts it would have made.")
    alertsTruncated = serializers.BooleanField(source="alerts_truncated")
    flaps = serializers.IntegerField(
        help_text="Alerts (of all of them) that re-opened within an hour of the previous one resolving."
    )


class BacktestDaysInputSerializer(StrictInputSerializer):
    days = serializers.IntegerField(
        required=False,
        default=DEFAULT_BACKTEST_DAYS,
        min_value=1,
        max_value=MAX_BACKTEST_DAYS,
        help_text=f"How far back to replay (default {DEFAULT_BACKTEST_DAYS}).",
    )


class TriggerRuleBacktestInputSerializer(TriggerRuleInputSerializer, BacktestDaysInputSerializer):
    pass


BACKTEST_DESCRIPTION = (
    "Replays the engine's own conditions over the tenant's history at the rule's cadence (every minute for "
    "metric rules, each occurrence for a schedule) and says what would have fired, the alerts one open alert "
    "per rule and auto-resolve would have made, and how often they flapped. Writes nothing."
)


class TriggerRuleDraftBacktestApi(TenantScopedApi):
    @extend_schema(
        operation_id="triggers_backtest_draft",
        summary="Backtest an unsaved rule over the last days",
        description=BACKTEST_DESCRIPTION + " The rule is validated exactly as creating it would be.",
        request=TriggerRuleBacktestInputSerializer,
        responses=BacktestOutputSerializer,
    )
    def post(self, request):
        data = TriggerRuleBacktestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        days = fields.pop("days")
        fields.pop("channels", None)  # where alerts would go does not change what fires
        rule = trigger_rule_build(tenant=self.tenant, **fields)
        return Response(BacktestOutputSerializer(trigger_rule_backtest(rule=rule, days=days)).data)


class TriggerRuleBacktestApi(TenantScopedApi):
    @extend_schema(
        operation_id="triggers_backtest",
        summary="Backtest a saved rule over the last days",
        description=BACKTEST_DESCRIPTION,
        request=BacktestDaysInputSerializer,
        responses=BacktestOutputSerializer,
    )
    def post(self, request, rule_id: int):
        rule = self.get_or_404(trigger_rule_get, tenant=self.tenant, rule_id=rule_id)
        data = BacktestDaysInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            BacktestOutputSerializer(trigger_rule_backtest(rule=rule, days=data.validated_data["days"])).data
        )
