"""
Billing events (the Stripe webhook): check an event's shape, work out what it means for usage (the
plan), record it once by its id with its effect, and replay the ones no tenant matched yet.
"""

import hashlib
import json
import re
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import DataError, IntegrityError, NotSupportedError, ProgrammingError, connection, transaction
from django.utils import timezone

from billing.models import (
    USAGE_API_FIELDS,
    USAGE_COUNTERS,
    USAGE_FIELDS,
    USAGE_GAUGE,
    BillingEvent,
    BillingEventOutcome,
    BillingUsage,
)
from billing.services.usage import (
    UsageDelta,
    usage_apply,
    usage_change_announced,
    usage_changed,
    usage_counters_upsert_ctes,
    usage_day,
)
from core.db import insert_rows
from core.exceptions import NON_FIELD_ERRORS, InvalidInput
from core.validators import json_problem
from tenants.models import Tenant

MAX_DELTA = 10**15
MAX_UNIX_TIME = 253402300799  # 9999-12-31T23:59:59Z


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


def _event_object(event: dict) -> tuple[dict, dict]:
    """The event's data.object and that object's metadata ({} where either is not an object)."""
    obj = event.get("data", {}).get("object", {})
    obj = obj if isinstance(obj, dict) else {}
    metadata = obj.get("metadata")
    return obj, metadata if isinstance(metadata, dict) else {}


def _tenant_keys(obj: dict, metadata: dict) -> tuple[str | None, str | None]:
    """What names the event's tenant: metadata.tenantId, else the Stripe customer (its id if expanded)."""
    tenant_id = metadata.get("tenantId")
    customer = obj.get("customer")
    if isinstance(customer, dict):  # an expanded customer object
        customer = customer.get("id")
    return (
        tenant_id if isinstance(tenant_id, str) and tenant_id else None,
        customer if isinstance(customer, str) and customer else None,
    )


def _resolve_tenant(obj: dict, metadata: dict) -> Tenant | None:
    tenant_id, customer = _tenant_keys(obj, metadata)
    if tenant_id is not None:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is not None:
            return tenant
    if customer is not None:
        return Tenant.objects.filter(stripe_customer_id=customer).first()
    return None


_UNMATCHED_REASON = "No tenant with this metadata.tenantId or Stripe customer id (yet)."


def billing_event_plan(*, event: dict, received_at: datetime) -> EventPlan:
    obj, metadata = _event_object(event)
    tenant = _resolve_tenant(obj, metadata)
    plan = _usage_plan(event=event, metadata=metadata, received_at=received_at)
    if tenant is None:
        return _without_tenant(plan)
    plan.tenant = tenant
    return plan


def _usage_plan(*, event: dict, metadata: dict, received_at: datetime) -> EventPlan:
    """The plan as it is when the event's tenant exists (its `tenant` left None)."""
    deltas, problems = _parse_deltas(metadata)
    if not deltas and not problems:
        return EventPlan(tenant=None, outcome=BillingEventOutcome.NO_USAGE)

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
            tenant=None, outcome=BillingEventOutcome.REJECTED, reason="; ".join(problems), deltas=deltas, day=day
        )
    return EventPlan(tenant=None, outcome=BillingEventOutcome.APPLIED, day=day, deltas=deltas)


def _without_tenant(plan: EventPlan) -> EventPlan:
    """The plan when no tenant matches the event: usage it would apply waits, unmatched, for a replay."""
    if plan.outcome != BillingEventOutcome.APPLIED:
        return plan
    return EventPlan(
        tenant=None, outcome=BillingEventOutcome.UNMATCHED, day=plan.day, deltas=plan.deltas, reason=_UNMATCHED_REASON
    )


def _describe(*, record: BillingEvent, plan: EventPlan, now: datetime) -> None:
    """Write the plan into the record: its tenant, day, deltas and outcome (applied: as of `now`)."""
    record.tenant = plan.tenant
    record.usage_day = plan.day
    record.deltas = {
        api: plan.deltas[model]
        for api, model in zip(USAGE_API_FIELDS, USAGE_FIELDS, strict=True)
        if model in plan.deltas
    }
    record.outcome = plan.outcome
    record.reason = plan.reason
    record.applied_at = now if plan.outcome == BillingEventOutcome.APPLIED else None


def _apply_usage(plan: EventPlan) -> str | None:
    """Apply an applied plan's deltas in a savepoint; why it was refused (a counter out of range), or None."""
    try:
        with transaction.atomic():
            usage_apply(deltas=[UsageDelta(tenant_id=plan.tenant.id, day=plan.day, **plan.deltas)])
    except IntegrityError:
        return _below_zero_reason(plan)
    except DataError:  # a counter would leave the 64-bit range
        return f"Would take usage out of range on {plan.day}."
    return None


def _apply_plan(*, record: BillingEvent, plan: EventPlan, now: datetime) -> None:
    """Describe the plan in the record and apply its deltas; a counter that would go below zero rejects it."""
    _describe(record=record, plan=plan, now=now)
    if plan.outcome == BillingEventOutcome.APPLIED:
        _reject(record, _apply_usage(plan))


def _reject(record: BillingEvent, reason: str | None) -> bool:
    if reason is None:
        return False
    record.outcome, record.reason, record.applied_at = BillingEventOutcome.REJECTED, reason, None
    return True


_RECORD_COLUMNS = (
    "event_id",
    "type",
    "created",
    "tenant_id",
    "payload",
    "received_at",
    "outcome",
    "reason",
    "usage_day",
    "deltas",
    "applied_at",
)


def _insert_once(record: BillingEvent) -> bool:
    """INSERT the record unless an event with its id is stored (a redelivery, also a concurrent one)."""
    inserted = insert_rows(
        model=BillingEvent,
        columns=_RECORD_COLUMNS,
        rows=[[getattr(record, column) for column in _RECORD_COLUMNS]],
        suffix="ON CONFLICT (event_id) DO NOTHING",
        returning=["id"],
    )
    if not inserted:
        return False
    record.pk = inserted[0][0]
    record._state.adding = False
    return True


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
    Record the event once by its id, as what it means for usage, and apply its deltas, in one
    transaction: an INSERT … ON CONFLICT DO NOTHING of the final record, then the usage statements.
    A redelivery (also a concurrent one: the insert waits for it) finds the stored event and
    changes nothing. On PostgreSQL most events take one statement (_receive_in_one_statement).
    """
    _validate_event_shape(event)
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        received = _receive_in_one_statement(event=event, now=now)
        if received is not None:
            return received
    plan = billing_event_plan(event=event, received_at=now)
    record = _new_record(event=event, now=now)
    _describe(record=record, plan=plan, now=now)
    with transaction.atomic():
        if not _insert_once(record):
            return ReceivedEvent(event=BillingEvent.objects.get(event_id=event["id"]), duplicate=True)
        if plan.outcome == BillingEventOutcome.APPLIED and _reject(record, _apply_usage(plan)):
            record.save(update_fields=["outcome", "reason", "applied_at"])
    return ReceivedEvent(event=record, duplicate=False)


def _new_record(*, event: dict, now: datetime) -> BillingEvent:
    created = event.get("created")
    return BillingEvent(
        event_id=event["id"],
        type=event["type"],
        payload=event,
        received_at=now,
        created=datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None,
    )


def _receive_in_one_statement(*, event: dict, now: datetime) -> ReceivedEvent | None:
    """
    The tenant's lookup, the event's INSERT … ON CONFLICT DO NOTHING and the upsert of its usage
    counters as one prepared statement, with no savepoint: the whole of an event's work in one
    round trip (the general path takes eight), or three when a completed day's usage changes and
    the usage hooks must hear of it in the same transaction. The statement carries the record as
    it is with the tenant found and as it is without one; the database picks. None, with nothing
    changed, for what the general path must do: a change the upsert cannot make (a negative delta:
    a counter may go below zero; the gauge), or a statement the database refused (a counter leaving
    the 64-bit range, the tenant deleted meanwhile), which the general path records as rejected or
    unmatched.
    """
    obj, metadata = _event_object(event)
    found = _usage_plan(event=event, metadata=metadata, received_at=now)
    if found.outcome == BillingEventOutcome.APPLIED and (
        USAGE_GAUGE in found.deltas or any(value < 0 for value in found.deltas.values())
    ):
        return None
    missing = _without_tenant(found)
    record = _new_record(event=event, now=now)
    _describe(record=record, plan=found, now=now)
    tenant_id, customer = _tenant_keys(obj, metadata)
    counters = [found.deltas.get(name, 0) for name in USAGE_COUNTERS]
    rows_sql = (
        "SELECT received.tenant_id AS tenant_id, %s::date AS day, "
        + ", ".join(f"%s::bigint AS {name}" for name in USAGE_COUNTERS)
        + " FROM received WHERE received.outcome = %s"
    )
    usage_sql, usage_params = usage_counters_upsert_ctes(
        rows_sql=rows_sql, rows_params=[found.day, *counters, BillingEventOutcome.APPLIED], now=now
    )
    params = [
        tenant_id,
        customer,
        record.event_id,
        record.type,
        record.created,
        json.dumps(event, allow_nan=False),
        now,
        missing.outcome,
        found.outcome,
        missing.reason,
        found.reason,
        record.usage_day,
        json.dumps(record.deltas),
        record.applied_at,
        *usage_params,
    ]
    # A change the usage hooks hear of (a completed day's) is announced in the statement's
    # transaction: BEGIN, the statement, the hooks, COMMIT. Any other event's statement is a
    # transaction of its own (autocommit): one round trip. In a caller's transaction, a savepoint.
    # Today's usage committed after midnight is a completed day's: in the day's last minute the
    # statement also takes the transaction, and usage_changed decides after it whether to announce.
    may_announce = found.outcome == BillingEventOutcome.APPLIED and usage_change_announced(
        day=found.day, now=now + _LAST_MINUTE
    )
    alone = not may_announce and connection.get_autocommit()
    try:
        with nullcontext() if alone else transaction.atomic(), connection.cursor() as cursor:
            _execute_prepared(cursor, _ONE_STATEMENT.format(usage=usage_sql), params)
            row = cursor.fetchone()
            if may_announce and row is not None and row[2] == BillingEventOutcome.APPLIED:
                usage_changed(keys=[(row[1], found.day)])  # it announces completed days only
    except (IntegrityError, DataError):
        return None
    except (ProgrammingError, NotSupportedError) as exc:
        state = getattr(exc.__cause__, "sqlstate", None)
        if state not in _PREPARED_STATEMENT_TROUBLE:
            raise
        # The general path takes this event; the next one finds the session's statement in order.
        _prepared_trouble(connection.connection, state, _ONE_STATEMENT.format(usage=usage_sql))
        return None
    if row is None:
        return ReceivedEvent(event=BillingEvent.objects.get(event_id=record.event_id), duplicate=True)
    record.pk, record.tenant_id = row[0], row[1]
    if row[1] is None:
        _describe(record=record, plan=missing, now=now)
    record._state.adding = False
    return ReceivedEvent(event=record, duplicate=False)


_LAST_MINUTE = timedelta(minutes=1)

# The database sessions (psycopg connections) that prepared the statement, and its name.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NO_SUCH_STATEMENT, _STATEMENT_EXISTS, _PLAN_CHANGED = "26000", "42P05", "0A000"
_PREPARED_STATEMENT_TROUBLE = (_NO_SUCH_STATEMENT, _STATEMENT_EXISTS, _PLAN_CHANGED)


def _prepared_name(sql: str) -> str:
    """Named after its text: a session another version of the code prepared never runs this one's."""
    return "billing_event_receive_" + hashlib.sha1(sql.encode()).hexdigest()[:16]


def _prepared_trouble(session, state: str, sql: str) -> None:
    """
    What the session's statement is after EXECUTE or PREPARE failed with `state`: gone (DISCARD
    ALL, a pooler's other session: prepare it again), there already under its name (the same
    text: use it), or planned for columns a migration changed ("cached plan must not change result
    type": deallocate it and prepare it again).
    """
    if state == _NO_SUCH_STATEMENT:
        _prepared.pop(session, None)
    elif state == _STATEMENT_EXISTS:
        _prepared[session] = _prepared_name(sql)
    else:
        _prepared[session] = None  # prepared, but stale: deallocated before the next PREPARE


def _execute_prepared(cursor, sql: str, params: list) -> None:
    """
    Run `sql` as a prepared statement of the database session: PREPARE it once per session, then
    EXECUTE it with the parameters. PostgreSQL parses and plans it once instead of for every event
    (two thirds of the statement's CPU there). Django's connections prepare nothing (its psycopg
    prepare_threshold is off, for connection poolers), hence SQL's PREPARE; a session that lost it
    raises, and the caller falls back.
    """
    session = connection.connection
    name = _prepared_name(sql)
    if _prepared.get(session) != name:
        parts = sql.split("%s")
        numbered = "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, start=1))
        if session in _prepared:  # a stale one (None: this one's, planned for other columns)
            cursor.execute(f"DEALLOCATE {_prepared[session] or name}")
        cursor.execute(f"PREPARE {name} AS {numbered}")
        _prepared[session] = name
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


# The parameters: the tenant id and customer to look up; the record's columns, its outcome, reason
# and applied_at each as without a tenant and with one; then the usage CTEs' (`{usage}`).
_ONE_STATEMENT = f"""
WITH tenant AS MATERIALIZED (
    SELECT COALESCE(
        (SELECT id FROM {Tenant._meta.db_table} WHERE id = %s),
        (SELECT id FROM {Tenant._meta.db_table} WHERE stripe_customer_id = %s)
    ) AS id
),
received AS (
    INSERT INTO {BillingEvent._meta.db_table} ({", ".join(_RECORD_COLUMNS)})
    SELECT %s, %s, %s::timestamptz, tenant.id, %s::jsonb, %s::timestamptz,
           CASE WHEN tenant.id IS NULL THEN %s ELSE %s END,
           CASE WHEN tenant.id IS NULL THEN %s ELSE %s END,
           %s::date, %s::jsonb,
           CASE WHEN tenant.id IS NOT NULL THEN %s::timestamptz END
    FROM tenant
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id, tenant_id, outcome
),
{{usage}}
SELECT id, tenant_id, outcome FROM received
""".strip()


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
