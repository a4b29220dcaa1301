"""
Usage bookkeeping: the daily rows of UsageSnapshot and BillingUsage. Every change is an atomic
statement in the database (INSERT … ON CONFLICT, UPDATE … SET x = x + delta), never a
read-modify-write in Python, and the tables' check constraints refuse a counter below zero.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing.models import USAGE_COUNTERS, USAGE_FIELDS, USAGE_GAUGE, BillingUsage, UsageSnapshot
from core.hooks import setting_hooks
from tenants.models import Tenant

USAGE_TABLES = (UsageSnapshot, BillingUsage)
_COUNTERS = ", ".join(USAGE_COUNTERS)
_ZERO_COUNTERS = ", ".join("0" for _ in USAGE_COUNTERS)
MAX_BACKFILL_DAYS = 366
_BATCH = 500


def usage_changed(*, keys: Iterable[tuple[str, date]]) -> None:
    """
    Tell the apps above (settings.USAGE_CHANGED_HOOKS, called as hook(keys=…) inside the writer's
    transaction) which (tenant, day) rows of completed days changed: the rules reading usage
    metrics wake on them. Today's running counts (and days ahead) are not announced: a usage
    metric's point is a completed day's (see usage_change_announced).
    """
    today = _today()
    keys = sorted({(tenant_id, day) for tenant_id, day in keys if day < today})
    if keys:
        for hook in setting_hooks("USAGE_CHANGED_HOOKS"):
            hook(keys=keys)


def usage_change_announced(*, day: date, now: datetime | None = None) -> bool:
    """
    Whether usage_changed tells the hooks of a change to `day` (a completed UTC day): a writer
    that knows it will not may skip the transaction it would otherwise hold around them.
    """
    return day < _today(now)


def _today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


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
            f"COALESCE((SELECT p.{USAGE_GAUGE} FROM {table} p WHERE p.tenant_id = %s AND p.day < %s "
            "ORDER BY p.day DESC LIMIT 1), 0)"
        )
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            rows, params = [], []
            for tenant_id, day in batch:
                day_value = connection.ops.adapt_datefield_value(day)
                rows.append(f"(%s, %s, {_ZERO_COUNTERS}, {carried}, %s)")
                params += [tenant_id, day_value, tenant_id, day_value, now]
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (tenant_id, day, {_COUNTERS}, {USAGE_GAUGE}, updated_at) "
                    f"VALUES {', '.join(rows)} ON CONFLICT (tenant_id, day) DO NOTHING",
                    params,
                )


_GAUGE_INDEX = USAGE_FIELDS.index(USAGE_GAUGE)
_COUNTER_INDEXES = tuple(USAGE_FIELDS.index(name) for name in USAGE_COUNTERS)


def _counters_upsert(*, totals: dict, keys: list, now) -> None:
    """
    Counters only (the gauge unchanged): INSERT … ON CONFLICT DO UPDATE SET x = x + delta into
    each table — a missing row starts at the deltas, its gauge carried forward from the tenant's
    latest earlier day, as usage_rows_ensure makes it. One statement per batch on PostgreSQL (both
    upserts CTEs, the first table's rows locked first), one per table and batch elsewhere.
    """
    row = "SELECT %s AS tenant_id, %s AS day, " + ", ".join(f"%s AS {name}" for name in USAGE_COUNTERS)
    for start in range(0, len(keys), _BATCH):
        batch = keys[start : start + _BATCH]
        rows_sql = " UNION ALL ".join([row] * len(batch))
        rows_params = []
        for tenant_id, day in batch:
            values = totals[(tenant_id, day)]
            rows_params += [
                tenant_id,
                connection.ops.adapt_datefield_value(day),
                *(values[i] for i in _COUNTER_INDEXES),
            ]
        if connection.vendor == "postgresql":
            # The second table's upsert reads the first's rows, so rows are locked in USAGE_TABLES
            # order, as the webhook's statement locks them (opposite orders could deadlock).
            ctes, params = usage_counters_upsert_ctes(rows_sql=rows_sql, rows_params=rows_params, now=now)
            statements = [(f"WITH {ctes} SELECT 1", params)]
        else:
            statements = [(_counters_upsert_sql(model, rows_sql), [now, *rows_params]) for model in USAGE_TABLES]
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)


def _counters_upsert_sql(model, rows_sql: str) -> str:
    table = _quoted(model)
    carried = (
        f"COALESCE((SELECT p.{USAGE_GAUGE} FROM {table} p WHERE p.tenant_id = v.tenant_id AND p.day < v.day "
        "ORDER BY p.day DESC LIMIT 1), 0)"
    )
    increments = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in USAGE_COUNTERS)
    return (
        f"INSERT INTO {table} (tenant_id, day, {_COUNTERS}, {USAGE_GAUGE}, updated_at) "
        f"SELECT v.tenant_id, v.day, {', '.join(f'v.{name}' for name in USAGE_COUNTERS)}, {carried}, %s "
        # WHERE true: SQLite's parser needs it before an upsert clause.
        f"FROM ({rows_sql}) AS v WHERE true ORDER BY v.tenant_id, v.day "
        f"ON CONFLICT (tenant_id, day) DO UPDATE SET {increments}, updated_at = EXCLUDED.updated_at"
    )


def usage_counters_upsert_ctes(*, rows_sql: str, rows_params: list, now) -> tuple[str, list]:
    """
    For one PostgreSQL statement of the caller's: two CTEs (`usage_first`, `usage_second`) adding
    the counters of `rows_sql`'s rows — columns tenant_id, day and each of USAGE_COUNTERS, every
    value >= 0 — to both tables, as usage_apply's upsert does (a missing row starts at the deltas,
    its gauge carried forward). The second table's rows are those the first one's upsert returned,
    so the tables' rows are locked in USAGE_TABLES order. The caller calls usage_changed for the
    keys, in the same transaction. Returns the CTEs' text ("usage_first AS (…), usage_second AS (…)")
    and their parameters.
    """
    first, second = USAGE_TABLES
    counters = ", ".join(f"r.{name}" for name in USAGE_COUNTERS)
    second_rows = (
        f"SELECT r.tenant_id, r.day, {counters} FROM ({rows_sql}) AS r "
        "JOIN usage_first AS u ON u.tenant_id = r.tenant_id AND u.day = r.day"
    )
    return (
        f"usage_first AS ({_counters_upsert_sql(first, rows_sql)} RETURNING tenant_id, day), "
        f"usage_second AS ({_counters_upsert_sql(second, second_rows)} RETURNING 1)",
        [now, *rows_params, now, *rows_params],
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
        # An upsert's proposed row is checked against the >= 0 constraints before the conflict is
        # found: a negative delta (a correction) on a day that stays >= 0 would fail. Those, and
        # gauge changes, take the two-step path.
        if all(value >= 0 for key in keys for value in totals[key]) and not any(
            totals[key][_GAUGE_INDEX] for key in keys
        ):
            _counters_upsert(totals=totals, keys=keys, now=now)
            usage_changed(keys=keys)
            return
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
        usage_changed(keys=keys)


def record_alert_impacts(*, impacts: Iterable[tuple[str, datetime]]) -> None:
    """One more alert in both tables for each (tenant id, firing time), for the firing's UTC day."""
    usage_apply(
        deltas=[UsageDelta(tenant_id=tenant_id, day=usage_day(when), alerts_triggered=1) for tenant_id, when in impacts]
    )


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
                    f"INSERT INTO {_quoted(model)} (tenant_id, day, {_COUNTERS}, {USAGE_GAUGE}, updated_at) "
                    f"VALUES (%s, %s, {_ZERO_COUNTERS}, %s, %s) ON CONFLICT (tenant_id, day) "
                    f"DO UPDATE SET {USAGE_GAUGE} = EXCLUDED.{USAGE_GAUGE}, updated_at = EXCLUDED.updated_at",
                    [tenant_id, day_value, count, now],
                )
        usage_changed(keys=[(tenant_id, day)])


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
        if inserted:
            usage_changed(keys=[(tenant_id, day)])
    return inserted


# --- The daily rollup -------------------------------------------------------------------------


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
        usage_changed(keys=keys)  # a day it filled is a new point of every usage metric
    return len(keys)
