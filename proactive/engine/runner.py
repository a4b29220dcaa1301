"""
Evaluating rules against the database: claim, read, decide, write — in one transaction per chunk.

A chunk's rules are claimed with SELECT … FOR UPDATE SKIP LOCKED and must still be due, so
overlapping ticks and several workers never evaluate a rule twice at once; a worker that dies
releases its claim when its transaction rolls back, and the rules stay due for the next tick.
Every step is batched: the number of queries for a chunk does not grow with its size.
"""

import gc
import logging
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Case, OuterRef, Subquery, Value, When
from django.utils import timezone

from alerts.models import Alert, AlertStatus
from alerts.services import ENGINE, Firing, alerts_raise, alerts_resolve_for_rules
from billing.services.usage import record_alert_impacts
from core.db import DATABASE_LOST, update_rows
from core.exceptions import Conflict
from core.telemetry import telemetry_capture
from proactive.engine.conditions import (
    Evaluation,
    Reading,
    evaluate_anomaly,
    evaluate_due_schedule,
    evaluate_reading,
    latest_occurrence,
    reading_of_points,
)
from proactive.engine.policy import Streaks, apply_policy
from proactive.metric_providers import builtin_provider_for, is_daily_metric
from proactive.metrics import AggregateRequest, SeriesRequest, metric_aggregates_batch, metric_series_batch
from proactive.models import (
    CHANGE_COMPARISONS,
    METRIC_RULE_TYPES,
    Aggregate,
    AnomalyMethod,
    Comparison,
    Direction,
    NoData,
    RuleHealth,
    RuleType,
    TriggerRule,
)
from proactive.selectors import named_channel_ids
from proactive.services import next_run_after, next_tick_after, rules_wake
from proactive.validators import nonstandard_cron_problem

logger = logging.getLogger(__name__)

# Rules per chunk (one transaction, one Celery task). A chunk's statements are as many whatever its
# size, so larger chunks cost fewer per rule: 2,000 took a full tick 5–10% and the hour's steady tick
# 10–25% less time than 1,000 did (4–5 statements per 1,000 rules instead of 8–9), at ~0.4 s a chunk
# of row locks (a person's edit of a rule the chunk holds waits that long) and ~5 MB more per worker.
CHUNK_SIZE = 2000
MAX_ERROR_LENGTH = 2000


@dataclass(slots=True)
class EngineRule:
    """
    A rule as the engine reads it: the columns evaluation needs, its tenant's zone and its open
    alert, from one row of the claim query. A plain object, not a model instance: building 1,000
    of those per chunk cost about as much as deciding them.
    """

    id: int
    tenant_id: str
    name: str
    type: str
    schedule: str
    timezone: str
    metric: str
    threshold: float | None
    window_days: int | None
    severity: str
    enabled: bool
    auto_resolve: bool
    schedule_due: bool  # a schedule rule whose next_run_at (the occurrence it is due for) has passed
    health: str
    comparison: str
    threshold_high: float | None
    compare_days: int | None
    aggregate: str
    aggregate_minutes: int | None
    for_evaluations: int | None
    clear_evaluations: int | None
    no_data: str
    method: str
    direction: str
    breaching_streak: int
    clear_streak: int
    tenant_timezone: str
    open_alert_id: int | None
    # The channels it names (its tenant's, ordered), read by the claim on PostgreSQL; None elsewhere,
    # where a chunk that raises alerts reads them in a query of its own.
    channel_ids: list[int] | None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def is_metric_rule(self) -> bool:
        return self.type in METRIC_RULE_TYPES

    @property
    def local_timezone(self) -> str:
        return self.tenant_timezone

    @property
    def schedule_timezone(self) -> str | None:
        if self.type != RuleType.SCHEDULE:
            return None
        return self.timezone or self.tenant_timezone


# The claim query's columns, in EngineRule's order; the rest of the row is not worth loading
# 100,000 times a minute.
ENGINE_RULE_COLUMNS = tuple(field.name for field in fields(EngineRule))
TELEMETRY_NAMESPACE = uuid.UUID("6f1c7f0e-3a5b-4d8e-9c61-2f4b8d7a1e90")


@dataclass
class RuleResult:
    rule: EngineRule
    evaluation: Evaluation | None = None
    fired: bool = False  # raise an alert, or keep the open one (after any pending period)
    clears: bool = False  # clear for long enough: an auto-resolving rule resolves its open alert
    streaks: Streaks | None = None  # consecutive breaching and clear evaluations after this one
    error: str = ""
    # A rule whose inputs cannot change before this moment unless its data does (a new point wakes
    # it, see rules_wake) sleeps until then; None: it is looked at again at the next tick.
    sleep_until: datetime | None = None
    alert_id: int | None = None
    alert_created: bool = False
    resolved_alert_id: int | None = None

    @property
    def health(self) -> str:
        if self.error:
            return RuleHealth.ERROR
        if self.evaluation is not None and self.evaluation.no_data:
            return RuleHealth.NO_DATA
        return RuleHealth.OK


@dataclass
class EngineReport:
    results: list[RuleResult] = field(default_factory=list)
    skipped: int = 0  # claimed by another worker, disabled, or no longer due

    @property
    def evaluated(self) -> int:
        return len(self.results)

    @property
    def fired(self) -> int:
        return sum(result.fired for result in self.results)

    @property
    def alerts_created(self) -> int:
        return sum(result.alert_created for result in self.results)

    @property
    def errors(self) -> int:
        return sum(bool(result.error) for result in self.results)

    @property
    def resolved(self) -> int:
        return sum(result.resolved_alert_id is not None for result in self.results)

    def merge(self, other: "EngineReport") -> "EngineReport":
        return EngineReport(results=self.results + other.results, skipped=self.skipped + other.skipped)


@dataclass(frozen=True)
class RuleEvaluation:
    """One rule evaluated on demand: what happened and why, and the rule as it is afterwards."""

    rule: TriggerRule
    evaluated_at: datetime
    dry_run: bool
    fired: bool
    reason: str | None
    evidence: dict | None  # None: nothing to compare (no data, a schedule not yet due)
    error: str | None
    alert_id: int | None
    alert_created: bool
    resolved_alert_id: int | None

    @property
    def rule_id(self) -> int:
        return self.rule.pk


def trigger_rule_evaluate(
    *, rule: TriggerRule, dry_run: bool, actor: str, now: datetime | None = None
) -> RuleEvaluation:
    """
    Evaluate one rule now, due or not. A dry run writes nothing and may look at a disabled rule;
    otherwise a disabled rule, or one the engine holds at this moment, is a Conflict.
    """
    if not dry_run and not rule.enabled:
        raise Conflict("The rule is disabled: enable it, or evaluate with dryRun.")
    now = now or timezone.now()
    report = evaluate_rules(
        rule_ids=[rule.pk], now=now, dry_run=dry_run, only_due=False, include_disabled=dry_run, actor=actor
    )
    if not report.results:
        raise Conflict("The rule is being evaluated by the engine right now; try again in a moment.")
    result = report.results[0]
    evaluation = result.evaluation
    return RuleEvaluation(
        rule=TriggerRule.objects.filter(pk=rule.pk).first() or rule,  # deleted meanwhile: as it was
        evaluated_at=now,
        dry_run=dry_run,
        fired=result.fired,
        reason=evaluation.reason if evaluation else None,
        evidence=(evaluation.evidence or None) if evaluation else None,
        error=result.error or None,
        alert_id=result.alert_id,
        alert_created=result.alert_created,
        resolved_alert_id=result.resolved_alert_id,
    )


def due_rule_ids(*, now: datetime, tenant_id: str | None = None, only_due: bool = True) -> list[int]:
    """Enabled rules that are due, grouped by tenant so a chunk reads few tenants' metrics."""
    queryset = TriggerRule.objects.filter(enabled=True)
    if only_due:
        queryset = queryset.filter(next_run_at__lte=now)
    if tenant_id is not None:
        queryset = queryset.filter(tenant_id=tenant_id)
    return list(queryset.order_by("tenant_id", "id").values_list("id", flat=True))


def tick_due_rule_ids(*, now: datetime) -> list[int]:
    """The tick's selection: the rules whose metrics changed wake, then every due rule."""
    rules_wake(now=now)
    return due_rule_ids(now=now)


def chunked(ids: Sequence[int], size: int = CHUNK_SIZE, *, slots: int = 1) -> Iterable[list[int]]:
    """
    Chunks of equal sizes, about `size` ids each (¾ to 1½ times it), as many as a multiple of
    `slots` (the chunks the workers evaluate at once, ENGINE_CONCURRENCY) so that the workers
    finish together: 2,666 ids on 2 slots are two chunks of 1,333 — not 888, 889 and 889, one
    worker evaluating two chunks while the other waits, nor four of 666 or 667, whose statements
    would be a third more. A tick smaller than that is cut into `slots` chunks.
    """
    slots = max(1, slots)
    count = min(len(ids), max(1, round(len(ids) / (size * slots))) * slots)
    for n in range(count):
        yield list(ids[n * len(ids) // count : (n + 1) * len(ids) // count])


def evaluate_rules(
    *,
    rule_ids: Sequence[int],
    now: datetime | None = None,
    dry_run: bool = False,
    only_due: bool = True,
    include_disabled: bool = False,
    actor: str = ENGINE,
    may_sleep: bool = True,
) -> EngineReport:
    """
    Evaluate the given rules. With `dry_run` nothing is written (no claim, no alert, no
    bookkeeping): the report says what would happen.
    """
    now = now or timezone.now()
    claim = {
        "rule_ids": rule_ids,
        "now": now,
        "dry_run": dry_run,
        "only_due": only_due,
        "include_disabled": include_disabled,
        "actor": actor,
        "may_sleep": may_sleep,
    }
    with _cycle_collector_paused():
        try:
            return _evaluate_claimed(**claim, isolate=False)
        except _AlertBatchFailed:
            return _evaluate_claimed(**claim, isolate=True)


@contextmanager
def _cycle_collector_paused():
    """
    A chunk allocates hundreds of thousands of short-lived objects that reference counting frees;
    the cycle collector would walk the worker's whole heap every few of them (a full collection
    cost ~50 ms a chunk, a quarter of its CPU). It runs again after the chunk, at its next threshold.
    """
    if not gc.isenabled():
        yield
        return
    try:
        gc.disable()
        yield
    finally:
        gc.enable()


def _evaluate_claimed(
    *,
    rule_ids: Sequence[int],
    now: datetime,
    dry_run: bool,
    only_due: bool,
    include_disabled: bool,
    actor: str,
    may_sleep: bool,
    isolate: bool,
) -> EngineReport:
    with transaction.atomic():
        open_alert = Alert.objects.filter(rule_id=OuterRef("pk")).exclude(status=AlertStatus.RESOLVED)
        queryset = (
            TriggerRule.objects.filter(pk__any=rule_ids)
            .with_tenant_timezone()
            .with_channel_ids()
            .annotate(
                open_alert_id=Subquery(open_alert.values("pk")[:1]),
                # Whether, not when: a timestamp costs more to load than anything else in the row.
                schedule_due=Case(
                    When(type=RuleType.SCHEDULE, next_run_at__lte=now, then=Value(True)),
                    default=Value(False),
                    output_field=BooleanField(),
                ),
            )
        )
        if not include_disabled:
            queryset = queryset.filter(enabled=True)
        if only_due:
            queryset = queryset.filter(next_run_at__lte=now)
        if not dry_run:
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        rows = queryset.order_by("pk").values_list(*ENGINE_RULE_COLUMNS)
        rules = [EngineRule(*row) for row in rows]
        results = evaluate_conditions(rules=rules, now=now)
        if not dry_run and results:
            _raise_alerts(results, now, actor, isolate)
            _auto_resolve(results, now, actor)
            _schedules_sleep_on_open_alerts(results, now)
            if not may_sleep:
                for result in results:
                    result.sleep_until = None
            _save_bookkeeping(results, now)
    return EngineReport(results=results, skipped=len(set(rule_ids)) - len(rules))


@dataclass(frozen=True)
class _Reads:
    """What one metric rule reads: a series or an aggregate of its window, and maybe a baseline."""

    current: SeriesRequest | AggregateRequest
    baseline: SeriesRequest | AggregateRequest | None = None

    @property
    def requests(self):
        return [request for request in (self.current, self.baseline) if request is not None]


def _reads(rule: EngineRule, now: datetime) -> _Reads:
    window = timedelta(days=rule.window_days)
    if rule.type == RuleType.ANOMALY:
        # An anomaly compares whole days of a daily metric, never today's running total.
        return _Reads(
            SeriesRequest(
                tenant_id=rule.tenant_id,
                metric=rule.metric,
                since=now - window,
                until=now,
                completed_periods_only=True,
            )
        )

    def read_until(until: datetime) -> SeriesRequest | AggregateRequest:
        if rule.aggregate in ("", Aggregate.LAST):
            return SeriesRequest(
                tenant_id=rule.tenant_id, metric=rule.metric, since=until - window, until=until, latest_only=True
            )
        since = until - timedelta(minutes=rule.aggregate_minutes)
        return AggregateRequest(
            tenant_id=rule.tenant_id, metric=rule.metric, since=since, until=until, aggregate=rule.aggregate
        )

    compared = rule.comparison in CHANGE_COMPARISONS
    return _Reads(read_until(now), read_until(now - timedelta(days=rule.compare_days)) if compared else None)


def evaluate_conditions(*, rules: Sequence[EngineRule], now: datetime) -> list[RuleResult]:
    """
    Read every metric rule's series and aggregates in one batch each, then run each rule's pure
    condition and the alerting policy (pending period, hysteresis, no data) on its streaks.
    """
    reads = {rule.pk: _reads(rule, now) for rule in rules if rule.is_metric_rule}
    requests = [request for read in reads.values() for request in read.requests]
    series, failures = metric_series_batch(requests=[r for r in requests if isinstance(r, SeriesRequest)])
    aggregates, aggregate_failures = metric_aggregates_batch(
        requests=[r for r in requests if isinstance(r, AggregateRequest)]
    )
    failures = {**failures, **aggregate_failures}

    results = []
    for rule in rules:
        result = RuleResult(rule=rule)
        try:
            if rule.type == RuleType.SCHEDULE:
                result.evaluation = evaluate_due_schedule(
                    schedule=rule.schedule, due=rule.schedule_due, now=now, timezone=rule.schedule_timezone
                )
                result.fired = result.evaluation.fired
                result.error = nonstandard_cron_problem(rule.schedule)
            elif failed := next((failures[r] for r in reads[rule.pk].requests if r in failures), None):
                result.error = failed
            else:
                _decide(result, rule, reads[rule.pk], series, aggregates, now)
        except Exception as exc:  # one rule's failure is recorded on it; the others still run
            logger.exception("rule %s failed to evaluate", rule.pk)
            result.error = f"{type(exc).__name__}: {exc}"
        results.append(result)
    return results


def _decide(result: RuleResult, rule: EngineRule, reads: _Reads, series, aggregates, now: datetime) -> None:
    def reading(request) -> Reading:
        if isinstance(request, AggregateRequest):
            aggregated = aggregates[request]  # observed over the window that ends at `until`
            return Reading(value=aggregated.value, observed_at=request.until, points=aggregated.points)
        return reading_of_points(series.get(request, []))

    if rule.type == RuleType.METRIC_THRESHOLD:
        evaluation = evaluate_reading(
            metric=rule.metric,
            reading=reading(reads.current),
            threshold=rule.threshold,
            comparison=rule.comparison or Comparison.ABOVE,
            threshold_high=rule.threshold_high,
            aggregate=rule.aggregate or Aggregate.LAST,
            aggregate_minutes=rule.aggregate_minutes,
            baseline=reading(reads.baseline) if reads.baseline is not None else None,
            compare_days=rule.compare_days,
        )
    else:
        method = rule.method or AnomalyMethod.ZSCORE
        evaluation = evaluate_anomaly(
            metric=rule.metric,
            points=series.get(reads.current, []),
            threshold=rule.threshold,
            window_days=rule.window_days,
            method=method,
            direction=rule.direction or Direction.BOTH,
            timezone=rule.local_timezone if method == AnomalyMethod.SEASONAL else "UTC",
            daily=method == AnomalyMethod.SEASONAL and is_daily_metric(rule.metric),
        )
    outcome = apply_policy(
        evaluation,
        streaks=Streaks(breaching=rule.breaching_streak, clear=rule.clear_streak),
        metric=rule.metric,
        window=_window_evidence(rule),
        for_evaluations=rule.for_evaluations or 1,
        clear_evaluations=rule.clear_evaluations or 1,
        no_data=rule.no_data or NoData.OK,
    )
    result.evaluation, result.fired, result.clears, result.streaks = (
        outcome.evaluation,
        outcome.fires,
        outcome.clears,
        outcome.streaks,
    )
    if _sleeps_when_steady(rule) and _steady(rule, outcome.streaks):
        result.sleep_until = _inputs_change_at(rule, series.get(reads.current, []), now)


def _sleeps_when_steady(rule: EngineRule) -> bool:
    """
    The rules whose next change in time the engine can tell from what it read: the latest value
    (or a whole window, for anomalies) of a custom metric, and the anomalies of a daily built-in
    metric whose provider announces every change of a completed day. Aggregates over minutes,
    comparisons with an earlier day and other built-in metrics are looked at every minute.
    """
    provider = builtin_provider_for(rule.metric)
    if provider is not None:
        announced = getattr(provider, "daily", False) and getattr(provider, "announces_changes", False)
        return rule.type == RuleType.ANOMALY and announced
    if rule.type == RuleType.ANOMALY:
        return True
    return rule.aggregate in ("", Aggregate.LAST) and rule.comparison not in CHANGE_COMPARISONS


def _steady(rule: EngineRule, streaks: Streaks) -> bool:
    """Not counting towards a pending period or a clear streak: each minute would change the counts."""
    pending = 0 < streaks.breaching < (rule.for_evaluations or 1)
    settling = 0 < streaks.clear < (rule.clear_evaluations or 1)
    return not pending and not settling


def _staleness_cap(now: datetime) -> datetime:
    """The latest a sleeping rule may be looked at again: ENGINE_MAX_STALENESS_MINUTES after this tick."""
    return now.replace(second=0, microsecond=0) + timedelta(minutes=settings.ENGINE_MAX_STALENESS_MINUTES)


def _inputs_change_at(rule: EngineRule, points, now: datetime) -> datetime:
    """
    When the window [now - windowDays, now] next loses a point it holds: the latest one for a
    last-value rule, the oldest for an anomaly. New points are the wakes' business. At most
    ENGINE_MAX_STALENESS_MINUTES ahead, whatever happens.
    """
    latest_allowed = _staleness_cap(now)
    if is_daily_metric(rule.metric):
        # Whole UTC days, the running one left out: at midnight one completes and the oldest leaves.
        midnight = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)
        return min(midnight, latest_allowed)
    if not points:
        return latest_allowed
    leaving = points[0][0] if rule.type == RuleType.ANOMALY else points[-1][0]
    return min(leaving + timedelta(days=rule.window_days), latest_allowed)


def _schedules_sleep_on_open_alerts(results: Sequence[RuleResult], now: datetime) -> None:
    """
    A schedule rule that fired and has its alert open decides nothing new at its next occurrences
    while the alert stays open (each would keep it), so it sleeps: for ENGINE_MAX_STALENESS_MINUTES
    at most, or until a person resolves the alert (a RuleWake: see proactive.alert_listeners). One
    whose firing failed, or raised nothing (over the tenant's budget), is looked at as before.
    """
    latest_allowed = _staleness_cap(now)
    for result in results:
        if result.rule.type == RuleType.SCHEDULE and result.fired and result.alert_id and not result.error:
            result.sleep_until = latest_allowed


def _window_evidence(rule: EngineRule) -> dict:
    if rule.type == RuleType.METRIC_THRESHOLD and rule.aggregate not in ("", Aggregate.LAST):
        return {"aggregateMinutes": rule.aggregate_minutes}
    return {"windowDays": rule.window_days}


def _raise_alerts(results: Sequence[RuleResult], now: datetime, actor: str, isolate: bool) -> None:
    fired = [result for result in results if result.fired]
    # A rule whose alert was open when the chunk was claimed keeps it — if it is still open now:
    # one cheap query, so an alert resolved meanwhile does not swallow this firing.
    claimed_open = {result.rule.open_alert_id for result in fired if result.rule.open_alert_id}
    # The status is filtered here, not in SQL: with it, PostgreSQL may walk the open alerts' partial
    # index and test each against the id array (1.2 s for 50,000 open alerts) instead of probing ids.
    still_open = (
        {
            pk
            for pk, status in Alert.objects.filter(pk__any=claimed_open).values_list("pk", "status")
            if status != AlertStatus.RESOLVED
        }
        if claimed_open
        else set()
    )
    for result in fired:
        if result.rule.open_alert_id in still_open:
            result.alert_id = result.rule.open_alert_id
    to_raise = [result for result in fired if result.alert_id is None]
    if not to_raise:
        return
    if connection.vendor == "postgresql":
        channels = {result.rule.pk: tuple(result.rule.channel_ids) for result in to_raise}
    else:
        channels = named_channel_ids([result.rule.pk for result in to_raise])
    created = _raise_isolating_failures(to_raise, now, actor, channels, isolate)
    # Usage bookkeeping in the same transaction as the alerts: exactly once per alert.
    record_alert_impacts(impacts=[(alert.tenant_id, alert.triggered_at) for alert in created])
    events = [_alert_triggered_event(alert) for alert in created]
    transaction.on_commit(lambda: _send_telemetry(events))


def _firing(result: RuleResult, now: datetime, channels: dict[int, tuple[int, ...]]) -> Firing:
    return Firing(
        rule=result.rule,
        payload={**result.evaluation.evidence, "reason": result.evaluation.reason},
        triggered_at=now,
        channel_ids=channels.get(result.rule.pk, ()),
    )


class _AlertBatchFailed(Exception):
    """The chunk's alerts could not be raised at once: its transaction is rolled back and redone."""


def _raise_isolating_failures(
    to_raise: Sequence[RuleResult], now: datetime, actor: str, channels: dict[int, tuple[int, ...]], isolate: bool
) -> list:
    """
    Raise the chunk's alerts in one batch, without a savepoint (two statements per chunk). If the
    batch fails for something in the data, the chunk is evaluated again with `isolate`: each alert
    raised in its own savepoint, so that one rule's failure is recorded on that rule and the
    others still alert.
    """
    if not isolate:
        try:
            raised = alerts_raise(firings=[_firing(result, now, channels) for result in to_raise], actor=actor)
        except DATABASE_LOST:
            raise  # the database itself failed (gone, a deadlock…): the whole chunk is retried
        except Exception as exc:
            logger.exception("raising %d alerts at once failed; evaluating the chunk again, one by one", len(to_raise))
            raise _AlertBatchFailed from exc
    else:
        raised = []
        for result in to_raise:
            try:
                with transaction.atomic():
                    raised += alerts_raise(firings=[_firing(result, now, channels)], actor=actor)
            except Exception as exc:
                logger.exception("raising the alert of rule %s failed", result.rule.pk)
                result.error = f"Raising the alert failed: {type(exc).__name__}: {exc}"
    by_rule = {item.alert.rule_id: item for item in raised}
    created = []
    for result in to_raise:
        item = by_rule.get(result.rule.pk)
        if item is not None:
            result.alert_id, result.alert_created = item.alert.pk, item.created
            if item.created:
                created.append(item.alert)
    return created


def _alert_triggered_event(alert) -> dict:
    return {
        "tenant_id": alert.tenant_id,
        "uuid": str(uuid.uuid5(TELEMETRY_NAMESPACE, f"alert.triggered:{alert.pk}")),
        "properties": {
            "ruleId": alert.rule_id,
            "ruleName": alert.rule_name,
            "alertId": alert.pk,
            "type": alert.rule_type,
            "severity": alert.severity,
            "evidence": alert.payload,
        },
    }


def _send_telemetry(events: list[dict]) -> None:
    for event in events:
        telemetry_capture(event="alert.triggered", **event)


def _auto_resolve(results: Sequence[RuleResult], now: datetime, actor: str) -> None:
    cleared = {
        result.rule.pk: result
        for result in results
        if result.rule.auto_resolve and result.rule.open_alert_id and result.clears
    }
    if not cleared:
        return
    resolved = alerts_resolve_for_rules(
        rule_ids=list(cleared),
        actor=actor,
        reasons={rule_id: f"Condition cleared: {result.evaluation.reason}" for rule_id, result in cleared.items()},
        now=now,
    )
    for alert in resolved:
        cleared[alert.rule_id].resolved_alert_id = alert.pk


def _next_run_at(rule: EngineRule, now: datetime, result: RuleResult) -> datetime:
    if rule.type == RuleType.SCHEDULE:
        next_occurrence = next_run_after(rule=rule, now=now)
        if result.sleep_until is None:
            return next_occurrence
        # Asleep: its last occurrence before the wake-up time, if that is later than the next one.
        return max(next_occurrence, latest_occurrence(rule.schedule, result.sleep_until, rule.schedule_timezone))
    # On the minute, so the next tick (beat fires at :00) finds the rule due, not a second early.
    next_tick = next_tick_after(now)
    if result.error or result.sleep_until is None:  # a failure (even raising its alert) is tried again
        return next_tick
    return max(next_tick, result.sleep_until)


BOOKKEEPING_COLUMNS = (
    "last_evaluated_at",
    "next_run_at",
    "last_error",
    "last_error_at",
    "last_fired_at",
    "health",
    "breaching_streak",
    "clear_streak",
)


def _save_bookkeeping(results: Sequence[RuleResult], now: datetime) -> None:
    """Record what happened on every rule of the chunk, in one statement."""
    rows = []
    for result in results:
        rule = result.rule
        # An error or a schedule leaves the counts as they were.
        streaks = result.streaks or Streaks(breaching=rule.breaching_streak, clear=rule.clear_streak)
        rows.append(
            (
                rule.id,
                now,
                _next_run_at(rule, now, result),
                result.error[:MAX_ERROR_LENGTH],
                now if result.error else None,
                now if result.alert_created else None,  # None: as it was
                result.health,
                streaks.breaching,
                streaks.clear,
            )
        )
    update_rows(model=TriggerRule, columns=BOOKKEEPING_COLUMNS, rows=rows, keep_if_none=("last_fired_at",))
