"""
The per-tenant alert budget: how many alerts a tenant's rules may raise in one UTC hour.

`alerts.services.alerts_raise` asks `budget_admit` which of a batch's firings may create alerts
and records the rest with `budget_overflow`. A tenant's hour is one `AlertBudget` row, locked by
the upsert that reads it until the caller's transaction ends: two engine processes raising
alerts for the same tenant take turns on it, so they cannot both spend the last of the budget.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, IntegerField, Value, When

from alerts.models import SEVERITY_RANK, Alert, AlertBudget, AlertEvent, AlertStatus, AlertType
from alerts.serializers import first_history_json
from core.timeutils import iso_utc

OVERFLOW_RULES_SHOWN = 20  # the overflow alert names at most this many of the suppressed rules
OVERFLOW_NAME = "Alert budget exceeded"


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Hour:
    row_id: int
    budget: int
    admitted: int
    suppressed: int
    overflow_alert_id: int | None
    admit: list = field(default_factory=list)
    suppress: list = field(default_factory=list)


@dataclass(frozen=True)
class Admission:
    admitted: list  # the firings that may create an alert
    suppressed: list  # the firings over the budget
    hours: dict  # (tenant_id, hour) → _Hour: the locked rows and what this batch does to them


def budget_admit(*, firings: Sequence, now: datetime) -> Admission:
    """
    Split firings (each would create an alert) into those within their tenant's budget for the hour
    of their `triggered_at` and those over it, critical first. Locks the tenants' rows for the hour
    and counts both. One statement for any number of firings, while the budget has room.
    """
    wanted: dict[tuple[str, datetime], list] = {}
    for firing in firings:
        wanted.setdefault((firing.rule.tenant_id, hour_of(firing.triggered_at)), []).append(firing)
    # Counted as admitted by the statement that locks the rows: usually the budget has room, and
    # that one statement is all. Where it has not, the firings over it are moved to `suppressed`.
    hours = _lock_hours({key: len(candidates) for key, candidates in wanted.items()}, now)
    admitted, suppressed = [], []
    for key, candidates in wanted.items():
        hour = hours.get(key)
        if hour is None:  # no such tenant: the alert's insert will say so
            admitted += candidates
            continue
        ranked = sorted(candidates, key=lambda f: -SEVERITY_RANK.get(f.rule.severity, 0))
        room = max(hour.budget - hour.admitted, 0)
        hour.admit, hour.suppress = ranked[:room], ranked[room:]
        admitted += hour.admit
        suppressed += hour.suppress
    _count(hours, now, admitted=lambda h: -len(h.suppress), suppressed=lambda h: len(h.suppress))
    return Admission(admitted=admitted, suppressed=suppressed, hours=hours)


def _lock_hours(wanted: dict[tuple[str, datetime], int], now: datetime) -> dict[tuple[str, datetime], _Hour]:
    """
    INSERT … ON CONFLICT DO UPDATE of every (tenant, hour) in key order, adding the firings that
    want an alert to `admitted`: the rows exist, are locked in the same order by every caller (no
    deadlock), and come back with what was admitted before (`_Hour.admitted`).
    """
    if not wanted:
        return {}
    hours: dict[tuple[str, datetime], _Hour] = {}
    ops = connection.ops
    for hour in sorted({hour for _, hour in wanted}):
        counts = sorted((tenant_id, n) for (tenant_id, at), n in wanted.items() if at == hour)
        rows = " UNION ALL ".join(["SELECT %s AS tenant_id, %s AS wanted"] * len(counts))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO alerts_alertbudget (tenant_id, hour, budget, admitted, suppressed, updated_at)
                SELECT t.id, %s, COALESCE(t.alert_budget_per_hour, %s), w.wanted, 0, %s
                FROM tenants_tenant t JOIN ({rows}) AS w ON w.tenant_id = t.id ORDER BY t.id
                ON CONFLICT (tenant_id, hour) DO UPDATE
                SET budget = excluded.budget, admitted = alerts_alertbudget.admitted + excluded.admitted
                RETURNING id, tenant_id, budget, admitted, suppressed, overflow_alert_id
                """,
                [
                    ops.adapt_datetimefield_value(hour),
                    settings.ALERT_BUDGET_PER_HOUR,
                    ops.adapt_datetimefield_value(now),
                    *(value for pair in counts for value in pair),
                ],
            )
            counted = dict(counts)
            for row_id, tenant_id, budget, admitted, suppressed, overflow_alert_id in cursor.fetchall():
                before = admitted - counted[tenant_id]
                hours[(tenant_id, hour)] = _Hour(row_id, budget, before, suppressed, overflow_alert_id)
    return hours


def _count(hours: dict, now: datetime, *, admitted, suppressed) -> None:
    """Add each hour's admitted and suppressed counts (functions of the _Hour) in one UPDATE."""
    changes = {hour.row_id: (admitted(hour), suppressed(hour)) for hour in hours.values()}
    changes = {row_id: change for row_id, change in changes.items() if change != (0, 0)}
    if not changes:
        return

    def delta(index: int):
        return Case(
            *[When(pk=row_id, then=Value(change[index])) for row_id, change in changes.items()],
            default=Value(0),
            output_field=IntegerField(),
        )

    AlertBudget.objects.filter(pk__in=changes).update(
        admitted=F("admitted") + delta(0), suppressed=F("suppressed") + delta(1), updated_at=now
    )


def budget_give_back(*, admission: Admission, unused: Sequence, already_open: Sequence, now: datetime) -> None:
    """
    Correct the counts for firings that created no alert after all: admitted ones that ran into
    an alert opened meanwhile, and suppressed ones whose rule already had an open alert (neither
    would have created one). Usually there are none, and then no query.
    """
    unused_ids = {f.rule.pk for f in unused}
    open_ids = {f.rule.pk for f in already_open}
    if not unused_ids and not open_ids:
        return
    given_back: dict[int, tuple[int, int]] = {}
    for hour in admission.hours.values():
        kept = [f for f in hour.suppress if f.rule.pk not in open_ids]
        given_back[hour.row_id] = (-sum(f.rule.pk in unused_ids for f in hour.admit), len(kept) - len(hour.suppress))
        hour.suppress = kept
    _count(
        admission.hours, now, admitted=lambda h: given_back[h.row_id][0], suppressed=lambda h: given_back[h.row_id][1]
    )


def budget_overflow(*, admission: Admission, now: datetime, actor: str) -> list[Alert]:
    """
    Sum up each tenant's suppressed firings in the hour's one overflow alert: created with the
    first of them (returned, to be notified once), updated after — the count, the rules it names
    (at most OVERFLOW_RULES_SHOWN), and its severity raised to the highest suppressed.
    """
    created = []
    for (tenant_id, hour_start), hour in sorted(admission.hours.items()):
        if not hour.suppress:
            continue
        total = hour.suppressed + len(hour.suppress)
        severity = max((f.rule.severity for f in hour.suppress), key=lambda s: SEVERITY_RANK.get(s, 0))
        if hour.overflow_alert_id is None:
            at = min(f.triggered_at for f in hour.suppress)  # the engine's moment, as for any alert
            alert = Alert.objects.create(
                tenant_id=tenant_id,
                rule=None,
                rule_name=OVERFLOW_NAME,
                rule_type=AlertType.ALERT_BUDGET,
                severity=severity,
                status=AlertStatus.PENDING,
                payload=_payload(hour, hour_start, total, _named([], hour.suppress)),
                triggered_at=at,
                history_json=first_history_json(at=at, actor=actor),
            )
            AlertEvent.objects.create(alert=alert, from_status="", to_status=AlertStatus.PENDING, at=at, actor=actor)
            AlertBudget.objects.filter(pk=hour.row_id).update(overflow_alert=alert)
            created.append(alert)
            continue
        # The hour's row is locked: nobody else writes this payload meanwhile.
        current = Alert.objects.filter(pk=hour.overflow_alert_id).values("payload", "severity").first()
        if current is None:  # deleted by hand: the hour has no overflow alert any more
            continue
        rules = current["payload"].get("rules", []) if isinstance(current["payload"], dict) else []
        more = bool(isinstance(current["payload"], dict) and current["payload"].get("moreRules"))
        named = _named(rules, hour.suppress, more=more)
        if SEVERITY_RANK.get(current["severity"], 0) >= SEVERITY_RANK.get(severity, 0):
            severity = current["severity"]
        Alert.objects.filter(pk=hour.overflow_alert_id).update(
            payload=_payload(hour, hour_start, total, named), severity=severity, updated_at=now
        )
    return created


def _named(rules: list[dict], suppressed: Sequence, *, more: bool = False) -> tuple[list[dict], bool]:
    shown = list(rules)
    known = {rule.get("ruleId") for rule in shown}
    for firing in suppressed:
        if firing.rule.pk in known:
            continue
        if len(shown) < OVERFLOW_RULES_SHOWN:
            shown.append({"ruleId": firing.rule.pk, "ruleName": firing.rule.name})
            known.add(firing.rule.pk)
        else:
            more = True
    return shown, more


def _payload(hour: _Hour, hour_start: datetime, total: int, named: tuple[list[dict], bool]) -> dict:
    rules, more = named
    return {
        "reason": (
            f"The alert budget of {hour.budget} an hour is spent: {total} more firing(s) since "
            f"{iso_utc(hour_start)} raised no alert."
        ),
        "budget": hour.budget,
        "hour": iso_utc(hour_start),
        "suppressed": total,
        "rules": rules,
        "moreRules": more,
    }
