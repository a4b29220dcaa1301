"""
Usage bookkeeping. Every change to a usage row is an atomic statement in the database
(INSERT … ON CONFLICT DO UPDATE SET x = x + delta), never a read-modify-write in Python, and the
tables' check constraints refuse a counter below zero.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing.models import (
    USAGE_API_FIELDS,
    USAGE_FIELDS,
    BillingEvent,
    BillingEventOutcome,
    BillingUsage,
    UsageSnapshot,
)
from core.exceptions import NON_FIELD_ERRORS, InvalidInput
from core.validators import json_problem
from tenants.models import Tenant

USAGE_TABLES = (UsageSnapshot, BillingUsage)
MAX_DELTA = 10**15
MAX_BACKFILL_DAYS = 366
MAX_UNIX_TIME = 253402300799  # 9999-12-31T23:59:59Z
_BATCH = 500


# --- Dates and points --------------------------------------------------------------------------


def usage_day(value: date | datetime | str | int | float) -> date:
    """
    The UTC day of `value`: a date; a datetime (aware ones converted to UTC, naive ones taken as
    UTC); an ISO 8601 string of either; or a Unix timestamp in seconds. Raises ValueError.
    """
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC).date()
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed_day = parse_date(text)
            if parsed_day is not None and len(text) == 10:
                return parsed_day
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return usage_day(parsed)
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD or ISO 8601)")


def usage_point(row, day: date | None = None) -> dict:
    """A usage row (or None: a day without usage) as the API's BillingUsagePoint."""
    return {
        "date": (day or row.day).isoformat(),
        **{
            api: (getattr(row, model) if row is not None else 0)
            for api, model in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True)
        },
    }


# --- Atomic increments -------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageDelta:
    tenant_id: str
    day: date
    tokens_used: int = 0
    tasks_executed: int = 0
    alerts_triggered: int = 0
    active_widgets: int = 0

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in USAGE_FIELDS)


def _quoted(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def usage_rows_ensure(*, keys: Iterable[tuple[str, date]]) -> None:
    """
    Give each (tenant, day) a row in both tables if it has none, with zero counters and the gauge
    (`active_widgets`) carried forward from the tenant's latest earlier day.
    """
    keys = sorted(set(keys))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for model in USAGE_TABLES:
        table = _quoted(model)
        carried = (
            f"COALESCE((SELECT p.active_widgets FROM {table} p WHERE p.tenant_id = %s AND p.day < %s "
            "ORDER BY p.day DESC LIMIT 1), 0)"
        )
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            rows, params = [], []
            for tenant_id, day in batch:
                day_value = connection.ops.adapt_datefield_value(day)
                rows.append(f"(%s, %s, 0, 0, 0, {carried}, %s)")
                params += [tenant_id, day_value, tenant_id, day_value, now]
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (tenant_id, day, tokens_used, tasks_executed, alerts_triggered, "
                    f"active_widgets, updated_at) VALUES {', '.join(rows)} "
                    "ON CONFLICT (tenant_id, day) DO NOTHING",
                    params,
                )


def usage_apply(*, deltas: Sequence[UsageDelta]) -> None:
    """
    Add `deltas` to both usage tables: rows are made if missing, then one UPDATE … SET x = x + delta
    per table and batch. Raises IntegrityError (the tables' check constraints) when a value would
    drop below zero; the caller's transaction then rolls back and nothing changes.
    """
    totals: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0] * len(USAGE_FIELDS))
    for delta in deltas:
        for index, value in enumerate(delta.values()):
            totals[(delta.tenant_id, delta.day)][index] += value
    totals = {key: values for key, values in totals.items() if any(values)}
    if not totals:
        return
    # Sorted keys: concurrent transactions lock rows in the same order and cannot deadlock.
    keys = sorted(totals)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # No savepoint: inside a caller's transaction a failure here fails the caller too.
    with transaction.atomic(savepoint=False):
        usage_rows_ensure(keys=keys)
        for model in USAGE_TABLES:
            table = _quoted(model)
            increments = ", ".join(f"{name} = {table}.{name} + v.{name}" for name in USAGE_FIELDS)
            row = "SELECT %s AS tenant_id, %s AS day, " + ", ".join(f"%s AS {name}" for name in USAGE_FIELDS)
            for start in range(0, len(keys), _BATCH):
                batch = keys[start : start + _BATCH]
                params = [now]
                for tenant_id, day in batch:
                    params += [tenant_id, connection.ops.adapt_datefield_value(day), *totals[(tenant_id, day)]]
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {increments}, updated_at = %s "
                        f"FROM ({' UNION ALL '.join([row] * len(batch))}) AS v "
                        f"WHERE {table}.tenant_id = v.tenant_id AND {table}.day = v.day",
                        params,
                    )


def record_alert_impacts(*, impacts: Iterable[tuple[str, datetime]]) -> None:
    """One more alert in both tables for each (tenant id, firing time), for the firing's UTC day."""
    usage_apply(
        deltas=[UsageDelta(tenant_id=tenant_id, day=usage_day(when), alerts_triggered=1) for tenant_id, when in impacts]
    )


def record_alert_impact(*, tenant: Tenant, when: datetime) -> None:
    record_alert_impacts(impacts=[(tenant.id, when)])


def usage_set_active_widgets(*, tenant_id: str, day: date, count: int) -> None:
    """
    Set the day's gauge in both tables. The caller counts under a lock that serializes the
    tenant's changes (marketplace locks the tenant row), so no concurrent change can write a stale count.
    """
    day_value = connection.ops.adapt_datefield_value(day)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic():
        for model in USAGE_TABLES:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {_quoted(model)} (tenant_id, day, tokens_used, tasks_executed, alerts_triggered, "
                    "active_widgets, updated_at) VALUES (%s, %s, 0, 0, 0, %s, %s) "
                    "ON CONFLICT (tenant_id, day) DO UPDATE SET active_widgets = EXCLUDED.active_widgets, "
                    "updated_at = EXCLUDED.updated_at",
                    [tenant_id, day_value, count, now],
                )


# --- The daily rollup --------------------------------------------------------------------------


def usage_rollup(*, today: date | None = None) -> int:
    """
    Make sure every tenant has a row for every day up to `today` since its latest row (at most
    MAX_BACKFILL_DAYS back), gauges carried forward. Idempotent; running it late fills the gap.
    Returns how many (tenant, day) keys it looked at.
    """
    today = today or timezone.now().date()
    # Only days up to today: a row dated in the future must not hide the days before it.
    latest = dict(
        BillingUsage.objects.filter(day__lte=today)
        .values("tenant_id")
        .annotate(latest=Max("day"))
        .values_list("tenant_id", "latest")
    )
    keys = []
    for tenant_id in Tenant.objects.values_list("id", flat=True):
        first = max(
            (latest[tenant_id] + timedelta(days=1)) if tenant_id in latest else today,
            today - timedelta(days=MAX_BACKFILL_DAYS),
        )
        keys += [(tenant_id, first + timedelta(days=n)) for n in range((today - first).days + 1)]
    with transaction.atomic():
        usage_rows_ensure(keys=keys)
    return len(keys)


# --- Billing events (the Stripe webhook) -------------------------------------------------------


@dataclass
class EventPlan:
    """What an event means for usage, worked out before anything is written."""

    tenant: Tenant | None
    outcome: str
    reason: str = ""
    day: date | None = None
    deltas: dict[str, int] = field(default_factory=dict)


_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")


def _parse_deltas(metadata: dict) -> tuple[dict[str, int], list[str]]:
    deltas, problems = {}, []
    for api_name, model_name in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True):
        if api_name not in metadata:
            continue
        raw = metadata[api_name]
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif isinstance(raw, str) and _WHOLE_NUMBER.match(raw.strip()):
            value = int(raw.strip())
        else:
            problems.append(f"{api_name} must be a whole number, got {raw!r}")
            continue
        if abs(value) > MAX_DELTA:
            problems.append(f"{api_name} is out of range ({value})")
        elif value:
            deltas[model_name] = value
    return deltas, problems


def _resolve_tenant(obj: dict) -> Tenant | None:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    tenant_id = metadata.get("tenantId")
    if isinstance(tenant_id, str) and tenant_id:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is not None:
            return tenant
    customer = obj.get("customer")
    if isinstance(customer, dict):  # an expanded customer object
        customer = customer.get("id")
    if isinstance(customer, str) and customer:
        return Tenant.objects.filter(stripe_customer_id=customer).first()
    return None


def billing_event_plan(*, event: dict, received_at: datetime) -> EventPlan:
    obj = event.get("data", {}).get("object", {})
    obj = obj if isinstance(obj, dict) else {}
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    tenant = _resolve_tenant(obj)
    deltas, problems = _parse_deltas(metadata)
    if not deltas and not problems:
        return EventPlan(tenant=tenant, outcome=BillingEventOutcome.NO_USAGE)

    try:
        if metadata.get("usageDate") not in (None, ""):
            day = usage_day(metadata["usageDate"])
        elif event.get("created") is not None:
            day = usage_day(event["created"])
        else:
            day = received_at.date()
    except (ValueError, OverflowError, OSError) as exc:
        problems.append(f"usageDate: {exc}")
        day = None
    if day is not None and day > received_at.date() + timedelta(days=1):
        problems.append(f"usage day {day} is in the future")

    if problems:
        return EventPlan(
            tenant=tenant, outcome=BillingEventOutcome.REJECTED, reason="; ".join(problems), deltas=deltas, day=day
        )
    if tenant is None:
        return EventPlan(
            tenant=None,
            outcome=BillingEventOutcome.UNMATCHED,
            day=day,
            deltas=deltas,
            reason="No tenant with this metadata.tenantId or Stripe customer id (yet).",
        )
    return EventPlan(tenant=tenant, outcome=BillingEventOutcome.APPLIED, day=day, deltas=deltas)


def _apply_plan(*, record: BillingEvent, plan: EventPlan, now: datetime) -> None:
    """Apply a plan's deltas in a savepoint; a counter that would go below zero rejects the event."""
    record.tenant = plan.tenant
    record.usage_day = plan.day
    record.deltas = {
        api: plan.deltas[model]
        for api, model in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True)
        if model in plan.deltas
    }
    record.outcome = plan.outcome
    record.reason = plan.reason
    if plan.outcome == BillingEventOutcome.APPLIED:
        try:
            with transaction.atomic():
                usage_apply(deltas=[UsageDelta(tenant_id=plan.tenant.id, day=plan.day, **plan.deltas)])
        except IntegrityError:
            record.outcome = BillingEventOutcome.REJECTED
            record.reason = _below_zero_reason(plan)
            record.applied_at = None
        except DataError:  # a counter would leave the 64-bit range
            record.outcome = BillingEventOutcome.REJECTED
            record.reason = f"Would take usage out of range on {plan.day}."
            record.applied_at = None
        else:
            record.applied_at = now


def _below_zero_reason(plan: EventPlan) -> str:
    row = BillingUsage.objects.filter(tenant=plan.tenant, day=plan.day).first()
    current = {name: getattr(row, name) if row else 0 for name in USAGE_FIELDS}
    negative = [
        f"{api} {current[model]} {plan.deltas[model]:+d}"
        for api, model in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True)
        if model in plan.deltas and current[model] + plan.deltas[model] < 0
    ]
    return "Would take usage below zero on {}: {}.".format(plan.day, ", ".join(negative) or "a counter")


@dataclass(frozen=True)
class ReceivedEvent:
    event: BillingEvent
    duplicate: bool


def _validate_event_shape(event) -> None:
    if not isinstance(event, dict):
        raise InvalidInput("Not an event.", detail={NON_FIELD_ERRORS: ["The body must be a JSON object."]})
    problems = {}
    for name, example in (("id", "evt_…"), ("type", "e.g. invoice.paid")):
        value = event.get(name)
        if not isinstance(value, str) or not value.strip():
            problems[name] = [f"Required: the event {name}, a string ({example})."]
        elif len(value) > 255:
            problems[name] = [f"At most 255 characters (got {len(value)})."]
    created = event.get("created")
    if created is not None and (
        isinstance(created, bool) or not isinstance(created, int) or not 0 <= created <= MAX_UNIX_TIME
    ):
        problems["created"] = ["Must be a Unix timestamp in seconds."]
    if "data" in event and (
        not isinstance(event["data"], dict) or not isinstance(event["data"].get("object", {}), dict)
    ):
        problems["data"] = ['Must be an object with an `object` object, e.g. {"object": {"metadata": {...}}}.']
    unstorable = json_problem(event)
    if not problems and unstorable:
        problems[NON_FIELD_ERRORS] = [f"The event cannot be stored: {unstorable[0].lower()}{unstorable[1:]}"]
    if problems:
        raise InvalidInput("Malformed event.", detail=problems)


def billing_event_receive(*, event: dict, now: datetime | None = None) -> ReceivedEvent:
    """
    Record the event once by its id and apply its usage deltas, in one transaction. A redelivery
    (also a concurrent one) finds the stored event and changes nothing.
    """
    _validate_event_shape(event)
    now = now or timezone.now()
    existing = BillingEvent.objects.filter(event_id=event["id"]).first()
    if existing is not None:
        return ReceivedEvent(event=existing, duplicate=True)
    plan = billing_event_plan(event=event, received_at=now)
    created = event.get("created")
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = BillingEvent.objects.create(
                    event_id=event["id"],
                    type=event["type"],
                    payload=event,
                    received_at=now,
                    created=datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None,
                    tenant=plan.tenant,
                    outcome=plan.outcome,
                    applied_at=now if plan.outcome == BillingEventOutcome.APPLIED else None,
                )
        except IntegrityError:
            duplicate = BillingEvent.objects.filter(event_id=event["id"]).first()
            if duplicate is None:
                raise
            return ReceivedEvent(event=duplicate, duplicate=True)  # a concurrent delivery won
        _apply_plan(record=record, plan=plan, now=now)
        record.save()
    return ReceivedEvent(event=record, duplicate=False)


def billing_event_replay(*, event: BillingEvent, now: datetime | None = None) -> BillingEvent:
    """Try an unmatched event again (its tenant may exist now). Anything else is left as it is."""
    now = now or timezone.now()
    with transaction.atomic():
        record = BillingEvent.objects.select_for_update().get(pk=event.pk)
        if record.outcome != BillingEventOutcome.UNMATCHED:
            return record
        plan = billing_event_plan(event=record.payload, received_at=record.received_at)
        _apply_plan(record=record, plan=plan, now=now)
        record.save()
    return record


def usage_insert_if_missing(*, tenant_id: str, day: date, values: dict[str, int]) -> bool:
    """
    Give a (tenant, day) these usage values in each table that has no row for it yet; a row that
    exists — with live counts, or a correction — is left exactly as it is. For demo data. Returns
    whether any row was inserted. One INSERT … ON CONFLICT DO NOTHING per table.
    """
    if set(values) != set(USAGE_FIELDS):
        raise TypeError(f"Give all of {USAGE_FIELDS}, got {sorted(values)}")
    day_value = connection.ops.adapt_datefield_value(day)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    inserted = False
    with transaction.atomic(savepoint=False):
        for model in USAGE_TABLES:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {_quoted(model)} (tenant_id, day, {', '.join(USAGE_FIELDS)}, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, day) DO NOTHING",
                    [tenant_id, day_value, *(values[name] for name in USAGE_FIELDS), now],
                )
                inserted |= cursor.rowcount > 0
    return inserted
