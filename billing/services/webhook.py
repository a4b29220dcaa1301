"""
Billing events (the Stripe webhook): check an event's shape, work out what it means for usage (the
plan), record it once by its id with its effect, and replay the ones no tenant matched yet.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from billing.models import USAGE_API_FIELDS, USAGE_FIELDS, BillingEvent, BillingEventOutcome, BillingUsage
from billing.services.usage import UsageDelta, usage_apply, usage_day
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
    changes nothing.
    """
    _validate_event_shape(event)
    now = now or timezone.now()
    plan = billing_event_plan(event=event, received_at=now)
    created = event.get("created")
    record = BillingEvent(
        event_id=event["id"],
        type=event["type"],
        payload=event,
        received_at=now,
        created=datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None,
    )
    _describe(record=record, plan=plan, now=now)
    with transaction.atomic():
        if not _insert_once(record):
            return ReceivedEvent(event=BillingEvent.objects.get(event_id=event["id"]), duplicate=True)
        if plan.outcome == BillingEventOutcome.APPLIED and _reject(record, _apply_usage(plan)):
            record.save(update_fields=["outcome", "reason", "applied_at"])
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
