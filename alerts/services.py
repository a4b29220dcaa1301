import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.deletion import RestrictedError
from django.utils import timezone

from alerts.budget import budget_admit, budget_give_back, budget_overflow
from alerts.channel_messages import new_webhook_secret
from alerts.deliveries import held_reschedule
from alerts.models import (
    Alert,
    AlertEvent,
    AlertStatus,
    Channel,
    ChannelDigest,
    ChannelEvent,
    ChannelKind,
    Notification,
)
from alerts.notifications import notify_alert_changed, notify_alerts_changed, notify_alerts_raised
from alerts.quiet_hours import next_daily_at
from alerts.serializers import ALERT_BODY, first_history_json
from core.db import insert_rows
from core.exceptions import Conflict
from core.timeutils import iso_utc
from core.validators import reject_unknown_fields
from tenants.models import Tenant

ENGINE = "engine"
SYSTEM = "system"
MAX_SNOOZE = timedelta(days=30)

# An alert's `history_json` as its events make it (core.outputs.SQLOutput.kept_text).
KEPT_HISTORY = ALERT_BODY.kept_text("history")


class AlertingRule(Protocol):
    """What raising an alert reads of the rule that fired (proactive's TriggerRule is one)."""

    pk: int
    tenant_id: str
    name: str
    type: str
    severity: str


@dataclass(frozen=True)
class Firing:
    """A rule fired: the evidence goes into the alert's payload."""

    rule: AlertingRule
    payload: dict
    triggered_at: datetime
    channel_ids: tuple[int, ...] = ()  # the channels the rule names; empty: the tenant's channels decide


@dataclass(frozen=True)
class RaisedAlert:
    alert: Alert
    created: bool  # False: the rule already had an open alert, which is returned instead


def alert_raise(
    *, rule: AlertingRule, payload: dict, triggered_at: datetime | None = None, actor: str = ENGINE
) -> RaisedAlert:
    firing = Firing(rule=rule, payload=payload, triggered_at=triggered_at or timezone.now())
    return alerts_raise(firings=[firing], actor=actor)[0]


def alerts_raise(*, firings: Sequence[Firing], actor: str = ENGINE) -> list[RaisedAlert]:
    """
    Raise an alert for each firing, with its history entry and notifications, in one transaction.
    A rule that already has an open alert gets that alert back instead of a duplicate: the
    database's partial unique index decides, so concurrent engines cannot both create one.
    Each tenant has an alert budget per hour (`alerts.budget`): firings over it raise no alert
    and are left out of the result; they are summed up in the hour's one overflow alert, which
    is notified once, when it is created. The result is in the order of `firings`; several
    firings of one rule share one alert.
    """
    by_rule = {}
    for firing in firings:
        by_rule.setdefault(firing.rule.pk, firing)

    created: dict[int, Alert] = {}
    existing: dict[int, Alert] = {}
    now = timezone.now()
    # No savepoint: inside a caller's transaction a failure here fails the caller too.
    with transaction.atomic(savepoint=False):
        admission = budget_admit(firings=list(by_rule.values()), now=now)
        pending = admission.admitted
        # The insert is the authority. An open alert it ran into may be resolved before we read
        # it; then we try again.
        for _attempt in range(3):
            if not pending:
                break
            created.update(_insert_ignoring_open_duplicates(pending, actor))
            existing.update(_open_alerts_by_rule([f.rule.pk for f in pending if f.rule.pk not in created]))
            pending = [f for f in pending if f.rule.pk not in created and f.rule.pk not in existing]
        already_open = _open_alerts_by_rule([f.rule.pk for f in admission.suppressed])
        existing.update(already_open)
        budget_give_back(
            admission=admission,
            unused=[f for f in admission.admitted if f.rule.pk not in created],
            already_open=[f for f in admission.suppressed if f.rule.pk in already_open],
            now=now,
        )
        overflow = budget_overflow(admission=admission, now=now, actor=actor)
        notify_alerts_raised(list(created.values()) + overflow)

    return [
        RaisedAlert(alert=created[f.rule.pk], created=True)
        if f.rule.pk in created
        else RaisedAlert(alert=existing[f.rule.pk], created=False)
        for f in firings
        if f.rule.pk in created or f.rule.pk in existing
    ]


def _open_alerts_by_rule(rule_ids: list[int]) -> dict[int, Alert]:
    if not rule_ids:
        return {}
    open_alerts = Alert.objects.filter(rule_id__in=rule_ids).exclude(status=AlertStatus.RESOLVED).defer("payload")
    return {alert.rule_id: alert for alert in open_alerts}


_INSERT_COLUMNS = (
    "tenant_id",
    "rule_id",
    "rule_name",
    "rule_type",
    "severity",
    "status",
    "payload",
    "triggered_at",
    "channel_ids",
    "updated_at",
    "history_json",
)


_HISTORY_COLUMNS = ("alert_id", "from_status", "to_status", "at", "actor", "reason")
# The first history entry of each alert the insert created, in the same statement.
_FIRST_HISTORY_SQL = (
    f"INSERT INTO {AlertEvent._meta.db_table} ({', '.join(_HISTORY_COLUMNS)}) "
    "SELECT id, '', %s, triggered_at, %s, '' FROM inserted"
)


def _insert_ignoring_open_duplicates(firings: Sequence[Firing], actor: str) -> dict[int, Alert]:
    """
    INSERT … ON CONFLICT DO NOTHING RETURNING: only the alerts that were really created, each
    with its first history entry (one statement on PostgreSQL).
    """
    now = timezone.now()
    first_history = {}  # by the firing's moment: one per chunk, as the engine raises its alerts at one
    for f in firings:
        if f.triggered_at not in first_history:
            first_history[f.triggered_at] = first_history_json(at=f.triggered_at, actor=actor)
    rows = [
        (
            f.rule.tenant_id,
            f.rule.pk,
            f.rule.name,
            f.rule.type,
            f.rule.severity,
            AlertStatus.PENDING,
            f.payload,
            f.triggered_at,
            list(f.channel_ids),
            now,
            first_history[f.triggered_at],
        )
        for f in firings
    ]
    returning = ("id", "rule_id", "triggered_at")
    if connection.vendor == "postgresql":
        then = (_FIRST_HISTORY_SQL, [AlertStatus.PENDING, actor])
        returned = insert_rows(
            model=Alert,
            columns=_INSERT_COLUMNS,
            rows=rows,
            suffix="ON CONFLICT DO NOTHING",
            returning=returning,
            then=then,
        )
    else:
        returned = insert_rows(
            model=Alert, columns=_INSERT_COLUMNS, rows=rows, suffix="ON CONFLICT DO NOTHING", returning=returning
        )
        triggered = {f.rule.pk: f.triggered_at for f in firings}
        insert_rows(
            model=AlertEvent,
            columns=_HISTORY_COLUMNS,
            rows=[
                (alert_id, "", AlertStatus.PENDING, triggered[rule_id], actor, "") for alert_id, rule_id, _ in returned
            ],
        )
    inserted = {rule_id: alert_id for alert_id, rule_id, _ in returned}
    return {
        f.rule.pk: _stored_alert(
            id=inserted[f.rule.pk],
            tenant_id=f.rule.tenant_id,
            rule_id=f.rule.pk,
            rule_name=f.rule.name,
            rule_type=f.rule.type,
            severity=f.rule.severity,
            status=AlertStatus.PENDING,
            payload=f.payload,
            triggered_at=f.triggered_at,
            channel_ids=list(f.channel_ids),
            updated_at=now,
            history_json=first_history[f.triggered_at],
        )
        for f in firings
        if f.rule.pk in inserted
    }


_ALERT_COLUMNS = tuple(field.attname for field in Alert._meta.concrete_fields)


def _stored_alert(**values) -> Alert:
    """
    The instance of a row just inserted, from its values (the others None), as Django makes the
    instances of the rows it reads: half the cost of Alert(**values) (9 µs against 18; a chunk
    raises a thousand), and saved (`_state.adding` False), which it is.
    """
    return Alert.from_db(connection.alias, _ALERT_COLUMNS, [values.get(column) for column in _ALERT_COLUMNS])


def _record_change(
    *, alert: Alert, from_status: str, actor: str, at: datetime, changed: list[str], reason: str = ""
) -> None:
    """Save the alert's `changed` fields with its new history entry, and notify."""
    event = AlertEvent.objects.create(
        alert=alert, from_status=from_status, to_status=alert.status, at=at, actor=actor, reason=reason
    )
    # The history in the same UPDATE as the status: a second UPDATE of a row this transaction already
    # changed makes PostgreSQL check its foreign keys, locking the rule — which a chunk may hold.
    alert.history_json = KEPT_HISTORY
    alert.save(update_fields=[*changed, "updated_at", "history_json"])
    del alert.history_json  # the expression: read from the database if anyone asks
    notify_alert_changed(alert, event)


def alerts_history_keep(*, alert_ids: Sequence[int]) -> None:
    """
    Rewrite the alerts' `history_json` from their events (one statement): a repair, for events
    written outside this module. Not for a service that has just changed the alerts in this
    transaction: it writes the history in that same UPDATE (see _record_change).
    """
    Alert.objects.filter(pk__any=alert_ids).update(history_json=KEPT_HISTORY)


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: str, now: datetime | None = None) -> Alert:
    """Acknowledging twice is harmless: the second call changes nothing and keeps the timestamp."""
    alert = _locked(alert)
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return alert
    if alert.status == AlertStatus.RESOLVED:
        raise Conflict("A resolved alert cannot be acknowledged.")
    now = now or timezone.now()
    from_status = alert.status
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = alert.acknowledged_at or now
    alert.snoozed_until = None
    _record_change(
        alert=alert,
        from_status=from_status,
        actor=actor,
        at=now,
        changed=["status", "acknowledged_at", "snoozed_until"],
    )
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor: str, now: datetime | None = None, reason: str = "") -> Alert:
    """Resolving a resolved alert is harmless. Resolving frees the rule to raise a new alert."""
    alert = _locked(alert)
    if alert.status == AlertStatus.RESOLVED:
        return alert
    now = now or timezone.now()
    from_status = alert.status
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.snoozed_until = None
    _record_change(
        alert=alert,
        from_status=from_status,
        actor=actor,
        at=now,
        reason=reason,
        changed=["status", "resolved_at", "snoozed_until"],
    )
    return alert


@transaction.atomic
def alert_snooze(*, alert: Alert, until: datetime, actor: str, now: datetime | None = None) -> Alert:
    now = now or timezone.now()
    if until <= now:
        raise ValidationError({"until": ["Must be in the future."]})
    if until > now + MAX_SNOOZE:
        raise ValidationError({"until": [f"Must be at most {MAX_SNOOZE.days} days from now."]})
    alert = _locked(alert)
    if alert.status == AlertStatus.RESOLVED:
        raise Conflict("A resolved alert cannot be snoozed.")
    from_status = alert.status
    alert.status = AlertStatus.SNOOZED
    alert.snoozed_until = until
    _record_change(
        alert=alert,
        from_status=from_status,
        actor=actor,
        at=now,
        reason=f"until {iso_utc(until)}",
        changed=["status", "snoozed_until"],
    )
    return alert


def _change_many(*, alerts: list[Alert], to: str, actor: str, now: datetime, reasons: dict[int, str], **fields) -> None:
    """Move locked alerts to `to` in one UPDATE, with their history entries and notifications."""
    from_statuses = {alert.pk: alert.status for alert in alerts}
    for alert in alerts:
        alert.status = to
        for name, value in fields.items():
            setattr(alert, name, value)
    events = AlertEvent.objects.bulk_create(
        [
            AlertEvent(
                alert=alert,
                from_status=from_statuses[alert.pk],
                to_status=to,
                at=now,
                actor=actor,
                reason=reasons.get(alert.pk, ""),
            )
            for alert in alerts
        ]
    )
    # After the events, in the one UPDATE of the alerts (see _record_change).
    Alert.objects.filter(pk__in=from_statuses).update(status=to, updated_at=now, history_json=KEPT_HISTORY, **fields)
    notify_alerts_changed(list(zip(alerts, events, strict=True)))


def alerts_resolve_for_rules(
    *, rule_ids: Sequence[int], actor: str, reasons: dict[int, str], now: datetime | None = None
) -> list[Alert]:
    """Resolve the open alert of each rule (the engine's auto-resolve). `reasons` by rule id."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        with transaction.atomic(savepoint=False):
            return _resolve_for_rules_in_one_statement(rule_ids=rule_ids, actor=actor, reasons=reasons, now=now)
    with transaction.atomic(savepoint=False):
        alerts = list(
            Alert.objects.select_for_update().filter(rule_id__in=rule_ids).exclude(status=AlertStatus.RESOLVED)
        )
        if alerts:
            _change_many(
                alerts=alerts,
                to=AlertStatus.RESOLVED,
                actor=actor,
                now=now,
                reasons={alert.pk: reasons.get(alert.rule_id, "") for alert in alerts},
                resolved_at=now,
                snoozed_until=None,
            )
    return alerts


@functools.cache
def _resolve_for_rules_sql() -> str:
    """
    Lock, resolve, and append each alert's history entry to its kept `history_json` in the same
    UPDATE: a second UPDATE of rows changed in this transaction makes PostgreSQL check their foreign
    keys again, locking the tenant (a deadlock with a tenant's update, which locks the tenant and
    then waits for the rules). Where an event is later than this one the kept text is dropped
    (NULL: the API reads the events), as appending would put the entry out of order.
    """
    alerts, events = Alert._meta.db_table, AlertEvent._meta.db_table
    # Not the payload nor the kept history: nothing that hears of a resolve reads them, and their
    # text was most of what the statement returned (deferred on the instances, read if asked for).
    returned_columns = ", ".join(
        f"alert.{field.column}"
        for field in Alert._meta.concrete_fields
        if field.attname not in ("payload", "history_json")
    )
    entry = f"""(SELECT {ALERT_BODY.kept_entry_sql("history", "new_event", connection)} FROM (
            SELECT locked.status AS from_status, %(resolved)s AS to_status, %(now)s::timestamptz AS at,
                   %(actor)s AS actor, coalesce(%(reasons)s::jsonb ->> alert.rule_id::text, '') AS reason
        ) AS new_event)"""
    return f"""
WITH locked AS (
    SELECT id, status FROM {alerts}
    WHERE rule_id = ANY(%(rule_ids)s) AND NOT status = %(resolved)s ORDER BY id FOR UPDATE
), changed AS (
    UPDATE {alerts} AS alert
    SET status = %(resolved)s, updated_at = %(now)s, resolved_at = %(now)s, snoozed_until = NULL,
        history_json = CASE
            WHEN alert.history_json IS NULL
                 OR EXISTS (SELECT 1 FROM {events} e WHERE e.alert_id = alert.id AND e.at > %(now)s) THEN NULL
            ELSE left(alert.history_json, -1) || CASE WHEN alert.history_json = '[]' THEN '' ELSE ',' END
                 || {entry} || ']'
        END
    FROM locked WHERE alert.id = locked.id
    RETURNING {returned_columns}, locked.status AS from_status
), history AS (
    INSERT INTO {events} ({", ".join(_HISTORY_COLUMNS)})
    SELECT id, from_status, %(resolved)s, %(now)s, %(actor)s, coalesce(%(reasons)s::jsonb ->> rule_id::text, '')
    FROM changed
    RETURNING id AS event_id, alert_id
)
SELECT changed.*, history.event_id FROM changed JOIN history ON history.alert_id = changed.id ORDER BY changed.id
"""


def _resolve_for_rules_in_one_statement(
    *, rule_ids: Sequence[int], actor: str, reasons: dict[int, str], now: datetime
) -> list[Alert]:
    """Lock, resolve and write the history of the rules' open alerts in one statement, then notify."""
    resolved = AlertStatus.RESOLVED
    params = {
        "rule_ids": list(rule_ids),
        "resolved": resolved,
        "now": now,
        "actor": actor,
        "reasons": json.dumps(reasons),
    }
    alerts = list(Alert.objects.raw(_resolve_for_rules_sql(), params))
    events = [
        AlertEvent(
            id=alert.event_id,
            alert=alert,
            from_status=alert.from_status,
            to_status=resolved,
            at=now,
            actor=actor,
            reason=reasons.get(alert.rule_id, ""),
        )
        for alert in alerts
    ]
    notify_alerts_changed(list(zip(alerts, events, strict=True)))
    return alerts


def alerts_wake_due(*, now: datetime | None = None) -> int:
    """Snoozed alerts whose snoozedUntil has passed go back to pending. Safe to run concurrently."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(status=AlertStatus.SNOOZED, snoozed_until__lte=now)
            .order_by("snoozed_until")[:1000]
        )
        if due:
            _change_many(
                alerts=due,
                to=AlertStatus.PENDING,
                actor=SYSTEM,
                now=now,
                reasons={alert.pk: "snooze ended" for alert in due},
                snoozed_until=None,
            )
    return len(due)


def notification_mark_read(*, notification: Notification, now: datetime | None = None) -> Notification:
    """Idempotent: reading a read notification keeps its first read time."""
    if notification.read_at is None:
        now = now or timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.refresh_from_db(fields=["read_at"])
    return notification


# What a tenant sets on a channel (the API, and the admin's form in this order).
CHANNEL_FIELDS = (
    "name",
    "kind",
    "target",
    "secret",
    "min_severity",
    "events",
    "enabled",
    "quiet_hours_start",
    "quiet_hours_end",
    "digest",
    "digest_hour",
)
WHEN_FIELDS = ("kind", "digest", "digest_hour", "quiet_hours_start", "quiet_hours_end")


@transaction.atomic
def channel_save(channel: Channel, *, now: datetime | None = None) -> Channel:
    """
    Validate and save; a webhook without a secret gets a new `whsec_` one. A daily digest is
    scheduled (again when the channel is enabled again: a day it missed is not sent at once); when
    the channel's quiet hours, digest or kind change, what it holds waits for its new time.
    """
    if channel.kind == ChannelKind.WEBHOOK and not channel.secret:
        channel.secret = new_webhook_secret()
    now = now or timezone.now()
    # Locked as the sweeper locks it: a release and this change take turns.
    stored = (
        Channel.objects.select_for_update().filter(pk=channel.pk).values(*WHEN_FIELDS, "enabled").first()
        if channel.pk
        else None
    )
    rescheduled = stored is not None and any(stored[name] != getattr(channel, name) for name in WHEN_FIELDS)
    enabled_again = stored is not None and channel.enabled and not stored["enabled"]
    if channel.digest != ChannelDigest.DAILY:
        channel.next_digest_at = None
    elif (channel.next_digest_at is None or rescheduled or enabled_again) and (
        channel.digest_hour in range(24)  # else full_clean names the field
    ):
        channel.next_digest_at = next_daily_at(now, hour=channel.digest_hour, zone=channel.tenant.timezone)
    channel.full_clean(exclude=["tenant"])
    if Channel.objects.filter(tenant_id=channel.tenant_id, name=channel.name).exclude(pk=channel.pk).exists():
        raise ValidationError({"name": f"The tenant already has a channel named {channel.name!r}."})
    channel.save()
    if rescheduled or enabled_again:
        held_reschedule(channel=channel, now=now)
    return channel


def channels_reschedule_for_tenant(*, tenant: Tenant, changed: frozenset[str], now: datetime) -> int:
    """
    The tenant's time zone changed (a TENANT_SETTINGS_CHANGED_HOOKS hook): daily digests move to
    their hour on the new clock, and held notices wait for the end of quiet hours on it (or go now).
    Returns how many channels had to change.
    """
    if "timezone" not in changed:
        return 0
    channels = list(
        Channel.objects.select_for_update()
        .filter(tenant=tenant)
        .filter(Q(digest=ChannelDigest.DAILY) | Q(quiet_hours_start__isnull=False))
    )
    for channel in channels:
        channel.tenant = tenant
        if channel.digest == ChannelDigest.DAILY:
            channel.next_digest_at = next_daily_at(now, hour=channel.digest_hour, zone=tenant.timezone)
            Channel.objects.filter(pk=channel.pk).update(next_digest_at=channel.next_digest_at)
        held_reschedule(channel=channel, now=now)
    return len(channels)


@transaction.atomic
def channel_create(*, tenant: Tenant, **fields) -> Channel:
    """A new channel; a webhook without a secret gets one (returned once, in the response)."""
    reject_unknown_fields(fields, allowed=CHANNEL_FIELDS, what="channel")
    fields.setdefault("events", list(ChannelEvent.values))
    return channel_save(Channel(tenant=tenant, **{k: v for k, v in fields.items() if v is not None}))


@transaction.atomic
def channel_update(*, channel: Channel, **fields) -> Channel:
    """
    Only the fields sent change; a secret left out (or empty) stays — unless the kind changes: a
    secret means something else to each kind, so the old one goes (a webhook gets a new one).
    """
    reject_unknown_fields(fields, allowed=CHANNEL_FIELDS, what="channel")
    channel = Channel.objects.select_for_update().get(pk=channel.pk)
    if fields.get("kind", channel.kind) != channel.kind:
        channel.secret = ""
    for name, value in fields.items():
        if name == "secret" and not value:
            continue
        setattr(channel, name, value if value is not None else Channel._meta.get_field(name).get_default())
    return channel_save(channel)


def channel_delete(*, channel: Channel) -> None:
    """
    Its deliveries go with it; the alerts stay. A channel a rule names is not deleted (409): the
    rule would otherwise fall back, silently, to every channel of the tenant.
    """
    try:
        with transaction.atomic():
            channel.delete()
    except RestrictedError as exc:
        links = list(exc.restricted_objects)  # RuleChannel rows (proactive's), read in one query
        names = sorted(
            set(type(links[0]).objects.filter(pk__in=[link.pk for link in links]).values_list("rule__name", flat=True))
        )
        raise Conflict(
            f"The channel {channel.name!r} is named by {len(names)} rule(s): {', '.join(names[:5])}"
            f"{', …' if len(names) > 5 else ''}. Remove it from them first (PATCH /triggers/{{id}} channels)."
        ) from exc
