from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.db.models.functions import Least
from django.utils import timezone

from alerts.selectors import channel_list
from billing.metrics import UsageSnapshotMetricProvider
from core.db import update_rows
from core.exceptions import InvalidInput
from core.validators import reject_unknown_fields
from proactive.engine.conditions import next_occurrence
from proactive.metric_providers import builtin_provider_for, namespace_noun
from proactive.models import (
    CHANGE_COMPARISONS,
    FIELDS_OF_TYPE,
    RANGE_COMPARISONS,
    UNUSED_FIELD_VALUES,
    Aggregate,
    MetricPoint,
    MetricWake,
    RuleHealth,
    RuleType,
    RuleWake,
    TriggerRule,
)
from proactive.validators import validate_metric_identifier
from tenants.models import Tenant

RULE_FIELDS = (
    "name",
    "type",
    "severity",
    "enabled",
    *UNUSED_FIELD_VALUES,  # every type's condition fields: schedule, metric, threshold, comparison, …
)
# Metric rules are looked at on every tick; the engine's tick runs every minute.
METRIC_EVALUATION_INTERVAL = timedelta(minutes=1)


def next_tick_after(moment: datetime) -> datetime:
    """The engine's first tick (beat fires on the minute) after `moment`."""
    return moment.replace(second=0, microsecond=0) + METRIC_EVALUATION_INTERVAL


SCHEDULING_FIELDS = {"type", "schedule", "timezone", "enabled"}
# Changing what a rule reads makes its last evaluation's health say nothing about it any more.
EVALUATED_FIELDS = {"type", "schedule", "timezone", "metric", "window_days", "aggregate", "aggregate_minutes"}
# Changing what counts as breaching restarts the count of breaching (and clear) evaluations.
STREAK_FIELDS = EVALUATED_FIELDS | {
    "threshold",
    "threshold_high",
    "comparison",
    "compare_days",
    "method",
    "direction",
    "no_data",
}
MAX_POINTS_PER_REQUEST = 1000
WAKES_PER_BATCH = 10_000


def next_run_after(*, rule: TriggerRule, now: datetime) -> datetime | None:
    """When the engine should next look at `rule`: its next cron occurrence, or now for metric rules."""
    if not rule.enabled:
        return None
    if rule.type == RuleType.SCHEDULE:
        return next_occurrence(rule.schedule, now, rule.schedule_timezone)
    return now


def _normalize(fields: dict) -> dict:
    # The API and the admin send null or "" for "not set"; the columns store "".
    for text_field in ("schedule", "timezone", "metric", "comparison", "aggregate", "no_data", "method", "direction"):
        if text_field in fields and fields[text_field] is None:
            fields[text_field] = ""
    if isinstance(fields.get("schedule"), str):
        fields["schedule"] = " ".join(fields["schedule"].split())
    return fields


def trigger_rule_build(*, tenant: Tenant, **fields) -> TriggerRule:
    """The rule create would store, validated the same way, not saved (what a backtest replays)."""
    reject_unknown_fields(fields, allowed=RULE_FIELDS, what="rule")
    rule = TriggerRule(tenant=tenant, **_normalize(fields))
    rule.full_clean(exclude=["tenant"])
    return rule


def _channels_of_tenant(*, tenant: Tenant, channel_ids) -> list:
    """The tenant's channels with these ids; an id of no channel of the tenant is a 400 on `channels`."""
    wanted = list(dict.fromkeys(channel_ids))
    found = {channel.pk: channel for channel in channel_list(tenant=tenant).filter(pk__in=wanted)}
    missing = [channel_id for channel_id in wanted if channel_id not in found]
    if missing:
        raise ValidationError({"channels": f"No channel with id {missing[0]} in this tenant (see GET /channels)."})
    return [found[channel_id] for channel_id in wanted]


@transaction.atomic
def trigger_rule_create(
    *, tenant: Tenant, now: datetime | None = None, channels: list[int] | None = None, **fields
) -> TriggerRule:
    named_channels = _channels_of_tenant(tenant=tenant, channel_ids=channels or [])
    rule = trigger_rule_build(tenant=tenant, **fields)
    rule.next_run_at = next_run_after(rule=rule, now=now or timezone.now())
    rule.save()
    rule.channels.set(named_channels)
    return rule


@transaction.atomic
def trigger_rule_update(
    *, rule: TriggerRule, now: datetime | None = None, channels: list[int] | None = None, **fields
) -> TriggerRule:
    """Only the fields given change; `channels` (ids) replaces the rule's channels when given."""
    reject_unknown_fields(fields, allowed=RULE_FIELDS, what="rule")
    named_channels = None if channels is None else _channels_of_tenant(tenant=rule.tenant, channel_ids=channels)
    rule = TriggerRule.objects.select_for_update().get(pk=rule.pk)
    changed = {name for name, value in _normalize(fields).items() if getattr(rule, name) != value}
    for name in changed:
        setattr(rule, name, fields[name])
    # A change that leaves a field unused drops it (unless it was sent) instead of failing on it.
    if "type" in changed and rule.type in FIELDS_OF_TYPE:
        for name, empty in UNUSED_FIELD_VALUES.items():
            if name not in FIELDS_OF_TYPE[rule.type] and name not in fields:
                setattr(rule, name, empty)
    for name, still_used in (
        ("threshold_high", rule.comparison in RANGE_COMPARISONS),
        ("compare_days", rule.comparison in CHANGE_COMPARISONS),
        ("aggregate_minutes", rule.aggregate not in ("", Aggregate.LAST)),
    ):
        if {"type", "comparison", "aggregate"} & changed and not still_used and name not in fields:
            setattr(rule, name, None)
    rule.full_clean(exclude=["tenant"])
    if changed & SCHEDULING_FIELDS or (changed and rule.is_metric_rule):  # a sleeping metric rule wakes
        rule.next_run_at = next_run_after(rule=rule, now=now or timezone.now())
    if changed & EVALUATED_FIELDS:
        rule.health = RuleHealth.UNKNOWN
    if changed & STREAK_FIELDS:
        rule.breaching_streak = rule.clear_streak = 0
    rule.save()
    if named_channels is not None:
        rule.channels.set(named_channels)
    return rule


@transaction.atomic
def trigger_rule_delete(*, rule: TriggerRule) -> None:
    """Alerts of the rule stay readable: they keep the rule's name, and their ruleId becomes null."""
    # Lock the rule before Django's SET NULL touches its alerts: the engine locks in the same
    # order (rule, then alerts), so a delete and an evaluation cannot deadlock.
    TriggerRule.objects.select_for_update().get(pk=rule.pk).delete()


def trigger_rules_set_enabled(*, rules, enabled: bool, now: datetime | None = None) -> int:
    """Enable or disable many rules at once (the admin's bulk actions), in one UPDATE."""
    now = now or timezone.now()
    with transaction.atomic():
        changing = list(rules.select_for_update(of=("self",)).filter(enabled=not enabled).with_tenant_timezone())
        for rule in changing:
            rule.enabled = enabled
            rule.next_run_at = next_run_after(rule=rule, now=now)
            rule.updated_at = now
        TriggerRule.objects.bulk_update(changing, ["enabled", "next_run_at", "updated_at"], batch_size=1000)
    return len(changing)


def trigger_rules_reschedule_for_tenant(*, tenant: Tenant, changed: frozenset[str], now: datetime) -> int:
    """
    The tenant's time zone changed (a hook settings.TENANT_SETTINGS_CHANGED_HOOKS names, called inside
    the tenant's update): its enabled schedule rules that read their cron in the tenant's zone get their
    next run from the new zone. Returns how many.
    """
    if "timezone" not in changed:
        return 0
    # A seasonal anomaly reads its seasons on the tenant's clock: sleeping metric rules wake (a rule
    # a chunk holds is updated once that chunk commits).
    TriggerRule.objects.filter(tenant=tenant, enabled=True).exclude(type=RuleType.SCHEDULE).update(
        next_run_at=Least(F("next_run_at"), Value(now))
    )
    rules = list(
        TriggerRule.objects.select_for_update()
        .filter(tenant=tenant, type=RuleType.SCHEDULE, timezone="", enabled=True)
        .only("id", "type", "schedule", "timezone", "enabled")
    )
    for rule in rules:
        rule.tenant = tenant  # its new zone, without reading it again
        rule.next_run_at = next_run_after(rule=rule, now=now)
    TriggerRule.objects.bulk_update(rules, ["next_run_at"], batch_size=1000)
    return len(rules)


@transaction.atomic  # the points and their wake together
def metric_points_write(
    *, tenant: Tenant, metric: str, points: list[tuple[datetime, float]], now: datetime | None = None
) -> int:
    """
    Upsert datapoints: a point at a timestamp that already has one replaces its value, so a client
    that retries a request does not double its data. Returns how many points were written. (What a
    client may send — finite values, times at most an hour ahead — the API's input checks.)
    """
    try:
        validate_metric_identifier(metric)
    except ValidationError as exc:
        raise ValidationError({"metric": exc.messages}) from None
    provider = builtin_provider_for(metric)
    if provider is not None:
        noun = namespace_noun(provider)
        raise InvalidInput(
            f"Built-in {noun} metrics are read-only.",
            detail={"metric": [f"{metric!r} is a built-in {noun} metric and cannot be written."]},
        )
    # The last value wins when a request repeats a timestamp.
    deduplicated = {timestamp: value for timestamp, value in points}
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(tenant=tenant, metric=metric, timestamp=timestamp, value=value)
            for timestamp, value in deduplicated.items()
        ],
        update_conflicts=True,
        unique_fields=["tenant", "metric", "timestamp"],
        update_fields=["value"],
    )
    metric_wakes_record(tenant=tenant, metric=metric, timestamps=deduplicated, now=now or timezone.now())
    return len(deduplicated)


def _first_tick_at_or_after(now: datetime) -> datetime:
    # Rounded up: a tick that already chose its moment, before this write, must not use the wake up.
    return now if now == now.replace(second=0, microsecond=0) else next_tick_after(now)


def metric_wakes_record(*, tenant: Tenant, metric: str, timestamps, now: datetime) -> None:
    """
    The rules reading `metric` are due at the next tick, and again when a point stamped ahead
    arrives. The wake for now is on the next minute, so a busy metric's writes share a row a minute.
    """
    moments = {_first_tick_at_or_after(now)} | {timestamp for timestamp in timestamps if timestamp > now}
    MetricWake.objects.bulk_create(
        [MetricWake(tenant=tenant, metric=metric, at=at) for at in moments], ignore_conflicts=True
    )


def usage_metric_wakes_record(*, keys, now: datetime | None = None) -> None:
    """
    A settings.USAGE_CHANGED_HOOKS hook: the usage of these (tenant id, completed day)s changed
    (billing announces no other). The rules that sleep on usage metrics (anomalies, which compare
    completed days) wake.
    """
    now = now or timezone.now()
    tenant_ids = sorted({tenant_id for tenant_id, _day in keys})
    if not tenant_ids:
        return
    first_tick = _first_tick_at_or_after(now)
    MetricWake.objects.bulk_create(
        [
            MetricWake(tenant_id=tenant_id, metric=metric, at=first_tick)
            for tenant_id in tenant_ids
            for metric in UsageSnapshotMetricProvider.metric_names
        ],
        ignore_conflicts=True,
    )


def rules_wake(*, now: datetime, batch_size: int = WAKES_PER_BATCH) -> int:
    """
    Due wakes make the rules reading their metrics due now (the tick's first step), batch after
    batch until every due wake was looked at; then the schedule rules whose alert a person resolved
    are due at their next occurrence. A rule a chunk holds right now is left alone, and so is the
    wake for it: the next tick wakes it, after that chunk — which may have read older data and put
    it to sleep — committed. So a wake is never lost, and the tick never waits for a chunk.
    Returns how many rules woke.
    """
    return _metric_rules_wake(now=now, batch_size=batch_size) + _schedule_rules_wake(now=now, batch_size=batch_size)


_WAKE_METRIC_RULES_SQL = f"""
WITH wakes AS MATERIALIZED (
    SELECT id, tenant_id, metric FROM {MetricWake._meta.db_table}
    WHERE at <= %(now)s AND id > %(after)s ORDER BY id LIMIT %(batch_size)s
), reading AS MATERIALIZED (
    SELECT rule.id, rule.tenant_id, rule.metric FROM {TriggerRule._meta.db_table} AS rule
    WHERE rule.enabled
      AND EXISTS (SELECT 1 FROM wakes WHERE wakes.tenant_id = rule.tenant_id AND wakes.metric = rule.metric)
), free AS MATERIALIZED (
    SELECT id FROM {TriggerRule._meta.db_table} WHERE id IN (SELECT id FROM reading) FOR UPDATE SKIP LOCKED
), woken AS (
    UPDATE {TriggerRule._meta.db_table} SET next_run_at = LEAST(next_run_at, %(now)s)
    WHERE id IN (SELECT id FROM free) RETURNING id
), held AS (
    SELECT DISTINCT tenant_id, metric FROM reading WHERE id NOT IN (SELECT id FROM free)
), done AS (
    DELETE FROM {MetricWake._meta.db_table} WHERE id IN (
        SELECT id FROM wakes WHERE (tenant_id, metric) NOT IN (SELECT tenant_id, metric FROM held)
    )
)
SELECT (SELECT count(*) FROM wakes), (SELECT max(id) FROM wakes), (SELECT count(*) FROM woken)
"""


def _due_wakes_in_batches(*, model, columns: tuple[str, ...], now: datetime, batch_size: int, wake) -> int:
    """
    `model`'s due wakes, oldest first, a batch per transaction as (pk, *columns) rows: `wake(batch)`
    wakes the free rules they concern and returns how many woke and the pks of the wakes to keep
    (those of rules a chunk holds); the others are deleted. Returns how many rules woke.
    """
    woken, after = 0, 0
    while True:
        with transaction.atomic():
            wakes = list(
                model.objects.filter(at__lte=now, pk__gt=after).order_by("pk").values_list("pk", *columns)[:batch_size]
            )
            if not wakes:
                return woken
            after = wakes[-1][0]
            woke, kept = wake(wakes)
            woken += woke
            model.objects.filter(pk__in=[pk for pk, *_ in wakes if pk not in kept]).delete()


def _metric_rules_wake(*, now: datetime, batch_size: int) -> int:
    if connection.vendor == "postgresql":
        return _metric_rules_wake_in_one_statement(now=now, batch_size=batch_size)

    def wake(wakes):
        reading = TriggerRule.objects.filter(enabled=True).filter(
            Exists(
                MetricWake.objects.filter(
                    pk__in=[pk for pk, _, _ in wakes], tenant_id=OuterRef("tenant_id"), metric=OuterRef("metric")
                )
            )
        )
        free = list(reading.select_for_update(skip_locked=True).values_list("pk", flat=True))
        woke = TriggerRule.objects.filter(pk__in=free).update(next_run_at=Least(F("next_run_at"), Value(now)))
        held = set(reading.exclude(pk__in=free).values_list("tenant_id", "metric"))
        return woke, {pk for pk, tenant_id, metric in wakes if (tenant_id, metric) in held}

    return _due_wakes_in_batches(
        model=MetricWake, columns=("tenant_id", "metric"), now=now, batch_size=batch_size, wake=wake
    )


def _metric_rules_wake_in_one_statement(*, now: datetime, batch_size: int) -> int:
    """The same on PostgreSQL, a batch per statement: select, lock, wake, and delete what was not held."""
    woken, after = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_WAKE_METRIC_RULES_SQL, {"now": now, "after": after, "batch_size": batch_size})
            handled, last, woke = cursor.fetchone()
        woken += woke
        if handled < batch_size:
            return woken
        after = last


def _schedule_rules_wake(*, now: datetime, batch_size: int) -> int:
    """
    A schedule rule sleeps while its alert is open; once a person resolved it, the rule is due at
    its first occurrence after the resolve — the one that would have raised a new alert had the
    rule been looked at every minute.
    """

    def wake(wakes):
        resolved_at: dict[int, datetime] = {}
        for _, rule_id, at in wakes:
            resolved_at[rule_id] = min(at, resolved_at.get(rule_id, at))
        waking = TriggerRule.objects.filter(pk__in=resolved_at, enabled=True, type=RuleType.SCHEDULE)
        free = list(
            waking.with_tenant_timezone()
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "schedule", "timezone", "tenant_timezone", "next_run_at")
        )
        due = []
        for pk, schedule, zone, tenant_zone, next_run_at in free:
            occurrence = next_occurrence(schedule, resolved_at[pk], zone or tenant_zone)
            if next_run_at is None or occurrence < next_run_at:
                due.append((pk, occurrence))
        update_rows(model=TriggerRule, columns=("next_run_at",), rows=due)
        held = set(waking.exclude(pk__in=[pk for pk, *_ in free]).values_list("pk", flat=True))
        return len(due), {pk for pk, rule_id, _ in wakes if rule_id in held}

    return _due_wakes_in_batches(model=RuleWake, columns=("rule_id", "at"), now=now, batch_size=batch_size, wake=wake)
