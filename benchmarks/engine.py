"""
Benchmark of one full engine tick on PostgreSQL.

    .venv/bin/python benchmarks/engine.py [--tenants 1000] [--rules-per-tenant 100] [--workers 2] [--options]

Seeds (once; later runs reuse it) 1,000 tenants and 100,000 rules of mixed types with 30 days of
metric history and usage snapshots in the database `proactive_insights_bench`, then runs a full
tick — select the due rules, evaluate them in chunks on `--workers` processes that live across the
ticks and keep their connections, as Celery workers do — and prints rules per second, SQL queries
per 1,000 rules, alerts created, peak memory and WAL per rule. Before each tick the same work is
done set-based in PostgreSQL alone and rolled back (the floor); each tick's ratio to it is
printed. Between the ticks `--changing` of the custom series get a new point and a steady
minute's share of the sleeping rules reach their staleness cap (`--stale-share`), so the second
tick (a minute later, change-driven) evaluates what a steady minute does and must create no
duplicate alert.
`--tenants 10000` makes it a million rules.
"""

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/proactive_insights_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ["POSTHOG_API_KEY"] = ""

import django  # noqa: E402

METRICS_PER_TENANT = 10
CHANGED_VALUE = 100.25  # the points change_metrics writes; a reset removes them
HISTORY_DAYS = 30
GUIDE_DEFAULTS = {"for_evaluations": 1, "clear_evaluations": 1, "no_data": "ok"}


def ensure_database():
    import psycopg
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(
        host=settings.DATABASES["default"]["HOST"] or "127.0.0.1",
        port=settings.DATABASES["default"]["PORT"] or 5432,
        user=settings.DATABASES["default"]["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(tenants: int, rules_per_tenant: int, now: datetime) -> None:
    from billing.models import BillingUsage, UsageSnapshot
    from proactive.models import MetricPoint, TriggerRule
    from tenants.models import Tenant

    if TriggerRule.objects.count() == tenants * rules_per_tenant and Tenant.objects.count() == tenants:
        print(f"reusing seeded data: {tenants} tenants, {tenants * rules_per_tenant} rules")
        return
    print("seeding…", flush=True)
    started = time.perf_counter()
    Tenant.objects.all().delete()
    Tenant.objects.bulk_create(
        [Tenant(id=f"bench-{t:04d}", name=f"Bench {t}", slug=f"bench-{t:04d}") for t in range(tenants)]
    )
    tenant_ids = list(Tenant.objects.order_by("id").values_list("id", flat=True))

    points = []
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for t, tenant_id in enumerate(tenant_ids):
        for m in range(METRICS_PER_TENANT):
            for d in range(HISTORY_DAYS):
                # Steady series with noise; the latest value of every third metric jumps.
                value = 100 + (d * 7 + m * 13 + t) % 11
                if d == HISTORY_DAYS - 1 and m % 3 == 0:
                    value = 400
                points.append(
                    MetricPoint(
                        tenant_id=tenant_id,
                        metric=f"bench.m{m}",
                        timestamp=today - timedelta(days=HISTORY_DAYS - 1 - d) + timedelta(hours=now.hour),
                        value=value,
                    )
                )
    MetricPoint.objects.bulk_create(points, batch_size=10_000)

    for model in (UsageSnapshot, BillingUsage):
        model.objects.bulk_create(
            [
                model(
                    tenant_id=tenant_id,
                    day=(today - timedelta(days=d)).date(),
                    tokens_used=1000 + (d * 37 + t) % 200,
                    tasks_executed=10,
                    active_widgets=1,
                )
                for t, tenant_id in enumerate(tenant_ids)
                for d in range(1, HISTORY_DAYS)
            ],
            batch_size=10_000,
        )

    rules = []
    for tenant_id in tenant_ids:
        for r in range(rules_per_tenant):
            kind = r % 10
            common = {
                "tenant_id": tenant_id,
                "name": f"rule {r}",
                "next_run_at": now - timedelta(minutes=1),
                "severity": ("info", "warning", "critical")[r % 3],
            }
            if kind < 4:
                rules.append(
                    TriggerRule(
                        type="metric_threshold",
                        metric=f"bench.m{r % METRICS_PER_TENANT}",
                        threshold=105 + (r % 5) * 60,
                        window_days=30,
                        auto_resolve=r % 2 == 0,
                        comparison="above",
                        aggregate="last",
                        **GUIDE_DEFAULTS,
                        **common,
                    )
                )
            elif kind < 8:
                metric = "usage.tokensUsed" if kind == 7 else f"bench.m{r % METRICS_PER_TENANT}"
                rules.append(
                    TriggerRule(
                        type="anomaly",
                        metric=metric,
                        threshold=2.5 + (r % 3),
                        window_days=HISTORY_DAYS,
                        method="zscore",
                        direction="both",
                        **GUIDE_DEFAULTS,
                        **common,
                    )
                )
            else:
                rules.append(
                    TriggerRule(type="schedule", schedule=("* * * * *", "*/5 * * * *", "0 * * * *")[r % 3], **common)
                )
    TriggerRule.objects.bulk_create(rules, batch_size=10_000)
    print(
        f"seeded in {time.perf_counter() - started:.1f} s: {len(tenant_ids)} tenants, {len(rules)} rules, "
        f"{len(points)} metric points"
    )


def spread_options(enabled: bool) -> None:
    """
    With `--options`, over a third of the rules read a window (an aggregate, or a week-over-week change:
    a second read) and a quarter have a pending period; the threshold rules' comparisons vary, and
    the anomaly rules' methods and directions; half the tenants are in Europe/Berlin.
    Without, every rule has the guide's defaults, as seeded.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE proactive_triggerrule SET comparison = 'above', aggregate = 'last', aggregate_minutes = NULL, "
            "threshold_high = NULL, compare_days = NULL, for_evaluations = 1, breaching_streak = 0, clear_streak = 0, "
            # the seeded threshold (105 + (r % 5) × 60 for "rule r"), which the options change
            "threshold = 105 + (split_part(name, ' ', 2)::int % 5) * 60 WHERE type = 'metric_threshold'"
        )
        cursor.execute(
            "UPDATE proactive_triggerrule SET for_evaluations = 1, breaching_streak = 0, clear_streak = 0, "
            "method = 'zscore', direction = 'both' WHERE type = 'anomaly'"
        )
        cursor.execute("UPDATE tenants_tenant SET timezone = 'UTC'")
        if not enabled:
            return
        # The id decides, so the options spread evenly over tenants and kinds.
        cursor.execute(
            "UPDATE proactive_triggerrule SET aggregate = 'avg', aggregate_minutes = 3 * 1440 "
            "WHERE type = 'metric_threshold' AND id % 8 IN (0, 1, 2, 3, 4)"
        )
        cursor.execute(
            "UPDATE proactive_triggerrule SET comparison = 'changeAbove', threshold = 50, compare_days = 7 "
            "WHERE type = 'metric_threshold' AND id % 8 IN (5, 6)"
        )
        cursor.execute(
            "UPDATE proactive_triggerrule SET comparison = 'outside', threshold = 90, threshold_high = 120 "
            "WHERE type = 'metric_threshold' AND id % 8 = 7"
        )
        cursor.execute("UPDATE proactive_triggerrule SET for_evaluations = 3 WHERE type <> 'schedule' AND id % 16 < 5")
        # A third of the anomaly rules robust, a third seasonal (in their tenant's zone); a quarter fire only upwards.
        cursor.execute(
            "UPDATE proactive_triggerrule SET method = (ARRAY['zscore', 'robust', 'seasonal'])[id % 3 + 1], "
            "direction = CASE WHEN id % 4 = 0 THEN 'up' ELSE 'both' END WHERE type = 'anomaly'"
        )
        cursor.execute(
            "UPDATE tenants_tenant SET timezone = 'Europe/Berlin' "
            "WHERE id IN (SELECT id FROM tenants_tenant ORDER BY id LIMIT (SELECT count(*) / 2 FROM tenants_tenant))"
        )


def reset(now: datetime) -> None:
    """Each run starts from no alerts and every rule due."""
    from django.db import connection

    from proactive.models import TriggerRule

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE alerts_deliveryattempt, alerts_delivery, alerts_alertevent, alerts_notification, "
            "alerts_alertbudget, alerts_alert, proactive_metricwake, proactive_rulewake"
        )
        cursor.execute("DELETE FROM proactive_metricpoint WHERE value = %s", [CHANGED_VALUE])
    TriggerRule.objects.update(
        next_run_at=now - timedelta(minutes=1),
        last_evaluated_at=None,
        last_fired_at=None,
        last_error="",
        last_error_at=None,
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_billingusage SET alerts_triggered = 0")
        cursor.execute("UPDATE billing_usagesnapshot SET alerts_triggered = 0")
        cursor.execute("VACUUM ANALYZE")


def change_metrics(share: float, at: datetime) -> int:
    """A new point for `share` of the tenants' custom series, written as the metrics API writes them."""
    from proactive.services import metric_points_write
    from tenants.models import Tenant

    series = [(tenant, f"bench.m{m}") for tenant in Tenant.objects.order_by("id") for m in range(METRICS_PER_TENANT)]
    changed = series[:: max(round(1 / share), 1)] if share > 0 else []
    for tenant, metric in changed:
        metric_points_write(tenant=tenant, metric=metric, points=[(at, CHANGED_VALUE)], now=at)
    return len(changed)


def stale_rules_due(share: float, at: datetime) -> int:
    """
    In a steady state the rules asleep since their last evaluation reach the staleness cap spread
    over the cap's minutes: each minute, 1/ENGINE_MAX_STALENESS_MINUTES of them. Right after a tick
    that evaluated every rule they all sleep until the same minute, so that share is made due here
    (every n-th rule by id), as a steady minute would find it.
    """
    from django.db import connection

    if share <= 0:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE proactive_triggerrule SET next_run_at = %s WHERE enabled AND next_run_at > %s AND id %% %s = 0",
            [at, at, max(round(1 / share), 1)],
        )
        return cursor.rowcount


# --- The same work, set-based in PostgreSQL alone: the floor a tick is measured against ---------

FLOOR_STATEMENTS = (
    # The claim: the share's due rules, locked as the engine locks them, with their open alert.
    """
    CREATE TEMP TABLE due ON COMMIT DROP AS
    SELECT r.id, r.tenant_id, r.name, r.type, r.metric, r.threshold, r.window_days, r.severity,
           r.auto_resolve, r.breaching_streak,
           (SELECT a.id FROM alerts_alert a WHERE a.rule_id = r.id AND a.status <> 'resolved' LIMIT 1) AS open_alert_id
    FROM proactive_triggerrule r
    WHERE r.id IN (SELECT id FROM proactive_triggerrule WHERE id = ANY(%(ids)s) AND enabled AND next_run_at <= %(now)s
                   FOR UPDATE SKIP LOCKED)
    """,
    # What the rules read: each series' window — its latest value, and the mean and spread of the rest.
    """
    CREATE TEMP TABLE readings ON COMMIT DROP AS
    WITH wanted AS (
        SELECT tenant_id, metric, max(window_days) AS days FROM due WHERE type <> 'schedule' GROUP BY 1, 2
    ), points AS (
        SELECT p.tenant_id, p.metric, p.value,
               row_number() OVER (PARTITION BY p.tenant_id, p.metric ORDER BY p.timestamp DESC) AS age
        FROM proactive_metricpoint p JOIN wanted w ON p.tenant_id = w.tenant_id AND p.metric = w.metric
        WHERE p.timestamp > %(now)s - w.days * interval '1 day' AND p.timestamp <= %(now)s
        UNION ALL
        SELECT u.tenant_id, w.metric, u.tokens_used,
               row_number() OVER (PARTITION BY u.tenant_id ORDER BY u.day DESC)
        FROM billing_usagesnapshot u JOIN wanted w ON u.tenant_id = w.tenant_id AND w.metric = 'usage.tokensUsed'
        WHERE u.day >= (%(now)s - w.days * interval '1 day')::date AND u.day < %(now)s::date
    )
    SELECT tenant_id, metric, max(value) FILTER (WHERE age = 1) AS latest,
           avg(value) FILTER (WHERE age > 1) AS mean, stddev_samp(value) FILTER (WHERE age > 1) AS spread
    FROM points GROUP BY 1, 2
    """,
    # The decision.
    """
    CREATE TEMP TABLE decided ON COMMIT DROP AS
    SELECT d.*, CASE
        WHEN d.type = 'schedule' THEN true
        WHEN d.type = 'metric_threshold' THEN coalesce(s.latest > d.threshold, false)
        ELSE coalesce(s.spread > 0 AND abs(s.latest - s.mean) / s.spread >= d.threshold, false)
    END AS fires
    FROM due d LEFT JOIN readings s ON s.tenant_id = d.tenant_id AND s.metric = d.metric
    """,
    # New alerts, their first history entry and their notification.
    """
    CREATE TEMP TABLE raised ON COMMIT DROP AS
    WITH inserted AS (
        INSERT INTO alerts_alert (tenant_id, rule_id, rule_name, rule_type, severity, status, payload, triggered_at,
                                  channel_ids, updated_at)
        SELECT tenant_id, id, name, type, severity, 'pending',
               jsonb_build_object('metric', metric, 'threshold', threshold, 'reason', 'floor'), %(now)s, '[]', %(now)s
        FROM decided WHERE fires AND open_alert_id IS NULL
        ON CONFLICT (rule_id) WHERE NOT status = 'resolved' DO NOTHING
        RETURNING id, tenant_id, rule_name, severity
    ), history AS (
        INSERT INTO alerts_alertevent (alert_id, from_status, to_status, at, actor, reason)
        SELECT id, '', 'pending', %(now)s, 'engine', '' FROM inserted
    ), notified AS (
        INSERT INTO alerts_notification
            (alert_id, tenant_id, title, body, severity, alert_status, created_at, updated_at)
        SELECT id, tenant_id, rule_name, 'Alert raised: ' || rule_name, severity, 'pending', %(now)s, %(now)s
        FROM inserted
    )
    SELECT tenant_id, count(*) AS alerts FROM inserted GROUP BY 1
    """,
    # Auto-resolve: the open alerts of the auto-resolving rules that no longer fire, with their
    # history entry and their notification's status.
    """
    WITH resolved AS (
        UPDATE alerts_alert a SET status = 'resolved', resolved_at = %(now)s, updated_at = %(now)s,
                                  snoozed_until = NULL
        FROM decided d WHERE a.id = d.open_alert_id AND d.auto_resolve AND NOT d.fires
        RETURNING a.id
    ), history AS (
        INSERT INTO alerts_alertevent (alert_id, from_status, to_status, at, actor, reason)
        SELECT id, 'pending', 'resolved', %(now)s, 'engine', 'Condition cleared' FROM resolved
    )
    UPDATE alerts_notification n SET alert_status = 'resolved', updated_at = %(now)s
    FROM resolved r WHERE n.alert_id = r.id
    """,
    # Usage: one more alert per raised alert, in both usage tables.
    """
    UPDATE billing_usagesnapshot u SET alerts_triggered = u.alerts_triggered + r.alerts, updated_at = %(now)s
    FROM raised r WHERE u.tenant_id = r.tenant_id AND u.day = %(now)s::date
    """,
    """
    UPDATE billing_billingusage u SET alerts_triggered = u.alerts_triggered + r.alerts, updated_at = %(now)s
    FROM raised r WHERE u.tenant_id = r.tenant_id AND u.day = %(now)s::date
    """,
    # Bookkeeping of every evaluated rule.
    """
    UPDATE proactive_triggerrule r SET last_evaluated_at = %(now)s,
        next_run_at = date_trunc('minute', %(now)s::timestamptz) + interval '1 minute',
        health = 'ok', last_error = '', last_error_at = NULL,
        breaching_streak = CASE WHEN d.fires THEN d.breaching_streak + 1 ELSE 0 END,
        last_fired_at = CASE WHEN d.fires AND d.open_alert_id IS NULL THEN %(now)s ELSE r.last_fired_at END
    FROM decided d WHERE r.id = d.id
    """,
)


_floor_connection = None  # each floor process keeps its connection, as a worker keeps its own


def _floor_share(args) -> tuple[float, int]:
    """One worker's share of the floor, in a transaction that is rolled back: nothing stays."""
    global _floor_connection
    import psycopg
    from django.conf import settings

    rule_ids, now = args
    if _floor_connection is None or _floor_connection.closed:
        database = settings.DATABASES["default"]
        _floor_connection = psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"] or "postgres",
            dbname=database["NAME"],
        )
    conn = _floor_connection
    started = time.perf_counter()
    with conn.cursor() as cursor:
        for statement in FLOOR_STATEMENTS:
            cursor.execute(statement, {"ids": rule_ids, "now": now})
    elapsed = time.perf_counter() - started
    raised = conn.execute("SELECT coalesce(sum(alerts), 0) FROM raised").fetchone()[0]
    conn.rollback()
    return elapsed, raised


def sql_floor(rule_ids: list[int], now: datetime, workers: int, pool) -> tuple[float, int]:
    """
    The tick's work done set-based in PostgreSQL alone, on `workers` connections at once, each
    with an equal share of the due rules: claim, read, decide, raise (alerts, history,
    notifications, usage), auto-resolve (alerts, history, notifications) and bookkeeping. Rolled
    back, then vacuumed, so the tick that follows finds the database as it was. The wall time of
    the slowest share is the floor.
    """
    from django.db import connection

    share = -(-len(rule_ids) // max(workers, 1))
    shares = [(rule_ids[start : start + share], now) for start in range(0, len(rule_ids), share)] or [([], now)]
    started = time.perf_counter()
    results = pool.map(_floor_share, shares, chunksize=1)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM proactive_triggerrule, alerts_alert, alerts_alertevent, alerts_notification, "
            "billing_usagesnapshot, billing_billingusage"
        )
    return elapsed, sum(int(raised) for _, raised in results)


def _evaluate_chunk(args):
    rule_ids, now = args
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from proactive.engine.runner import evaluate_rules

    with CaptureQueriesContext(connection) as queries:
        report = evaluate_rules(rule_ids=rule_ids, now=now)
    # The capture forces Django's debug cursor, whose log keeps the last 9,000 statements with their
    # parameters (a chunk's alert insert carries ~0.5 MB of JSON): kept, it would be most of the
    # worker's memory (1.6 GB at a million rules), not the engine's. Production logs no statements.
    statements, work_statements = len(queries.captured_queries), len(_work(queries.captured_queries))
    connection.queries_log.clear()
    return (
        report.evaluated,
        report.alerts_created,
        report.errors,
        statements,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        work_statements,
    )


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _work(captured: list[dict]) -> list[dict]:
    """The statements that read or write data: not BEGIN, COMMIT or savepoints."""
    return [query for query in captured if not query["sql"].startswith(TRANSACTION_CONTROL)]


def _worker_init():
    import gc

    django.setup()
    gc.freeze()  # as config.celery does in a worker


def _wal_position() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return cursor.fetchone()[0]


def _wal_bytes_since(position: str) -> int:
    """What the chunks wrote to PostgreSQL's write-ahead log (the whole server's, so keep it quiet)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [position])
        return int(cursor.fetchone()[0])


def run_tick(now: datetime, workers: int, chunk_size: int, engine_pool, floor_pool) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from proactive.engine.runner import chunked, tick_due_rule_ids

    started = time.perf_counter()
    with CaptureQueriesContext(connection) as tick_queries:
        rule_ids = tick_due_rule_ids(now=now)  # as the beat's tick: wakes, then the due rules
    selecting = time.perf_counter() - started
    selection_queries = tick_queries.captured_queries  # read from the debug log, emptied next (_evaluate_chunk)
    connection.queries_log.clear()
    # The floor does the chunks' work on the same rules in the same state (and leaves no trace);
    # both share the selection, which is counted in each.
    floor_seconds, floor_alerts = sql_floor(rule_ids, now, workers, floor_pool)
    chunks = [(chunk, now) for chunk in chunked(rule_ids, chunk_size, slots=workers)]  # ENGINE_CONCURRENCY
    wal_before = _wal_position()
    started = time.perf_counter() - selecting
    results = engine_pool.map(_evaluate_chunk, chunks, chunksize=1)
    elapsed = time.perf_counter() - started
    wal_bytes = _wal_bytes_since(wal_before)
    evaluated = sum(r[0] for r in results)
    queries = sum(r[3] for r in results) + len(selection_queries)
    work_queries = sum(r[5] for r in results) + len(_work(selection_queries))
    return {
        "due": len(rule_ids),
        "evaluated": evaluated,
        "created": sum(r[1] for r in results),
        "errors": sum(r[2] for r in results),
        "seconds": elapsed,
        "wal_bytes": wal_bytes,
        "floor": selecting + floor_seconds,
        "floor_alerts": floor_alerts,
        "queries": queries,
        "work_queries": work_queries,
        "tick_queries": len(selection_queries),
        "chunk_queries": sorted(r[3] for r in results),
        "worker_peak_mb": max((r[4] for r in results), default=0) / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rules-per-tenant", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="rules per chunk (default: the engine's CHUNK_SIZE)"
    )
    parser.add_argument(
        "--changing",
        type=float,
        default=0.01,
        help="the share of (tenant, metric) series that get a new point between the ticks (default 1%%)",
    )
    parser.add_argument(
        "--stale-share",
        type=float,
        default=None,
        help="the share of the rules at their staleness cap in the second tick "
        "(default 1/ENGINE_MAX_STALENESS_MINUTES, as in a steady state; 0: none)",
    )
    parser.add_argument(
        "--first-tick-at",
        type=datetime.fromisoformat,
        default=None,
        help="the first tick's time (ISO 8601 with its offset; default now, at :30 of this minute). "
        "Its minute decides the second tick's: at :59 the second is at the hour, when the hourly "
        "schedules are due too",
    )
    parser.add_argument(
        "--options",
        action="store_true",
        help="spread the rule options: a quarter of the rules read windows, a quarter have pending periods",
    )
    options = parser.parse_args()

    ensure_database()
    django.setup()
    from django.conf import settings

    if options.stale_share is None:
        options.stale_share = 1 / settings.ENGINE_MAX_STALENESS_MINUTES
    if options.chunk_size is None:
        from proactive.engine.runner import CHUNK_SIZE

        options.chunk_size = CHUNK_SIZE
    from django.core.management import call_command
    from django.db import connection

    from alerts.models import Alert

    call_command("migrate", verbosity=0)
    now = options.first_tick_at or datetime.now(UTC).replace(second=30, microsecond=0)
    # Seeded in a child process: the million rows it builds would otherwise stay in this process,
    # and the workers forked from it would count them in their peak memory (1.6 GB at a million).
    connection.close()
    seeding = get_context("fork").Process(target=seed, args=(options.tenants, options.rules_per_tenant, now))
    seeding.start()
    seeding.join()
    if seeding.exitcode:
        raise SystemExit(f"seeding failed (exit code {seeding.exitcode})")
    spread_options(options.options)
    reset(now)

    # The workers live across ticks and keep their connections, as Celery's workers do (and so do
    # the floor's connections); forked before the parent holds a connection of its own.
    connection.close()
    context = get_context("fork")
    with context.Pool(options.workers, initializer=_worker_init) as engine_pool, context.Pool(options.workers) as floor:
        first = run_tick(now, options.workers, options.chunk_size, engine_pool, floor)
        open_after_first = Alert.objects.exclude(status="resolved").count()
        changed = change_metrics(options.changing, now + timedelta(seconds=30))
        stale = stale_rules_due(options.stale_share, now + timedelta(minutes=1))
        second = run_tick(
            now + timedelta(minutes=1, seconds=1), options.workers, options.chunk_size, engine_pool, floor
        )
    duplicates = Alert.objects.count() - first["created"]
    parent_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print()
    print(f"machine: {os.cpu_count()} cores, {options.workers} worker process(es), chunks of {options.chunk_size}")
    print("rule options:", "spread (--options)" if options.options else "the guide's defaults")
    print(
        f"between the ticks: a new point in {changed:,} of the custom series ({options.changing:.0%}); "
        f"{stale:,} sleeping rules at their staleness cap ({options.stale_share:.2%} of the rules, as each minute "
        "of a steady state)"
    )
    for label, tick in (("tick 1", first), ("tick 2 (+61 s, change-driven)", second)):
        print(
            f"{label}: {tick['evaluated']:,} of {tick['due']:,} due rules in {tick['seconds']:.2f} s "
            f"= {tick['evaluated'] / tick['seconds']:,.0f} rules/s; "
            f"{tick['work_queries'] / max(tick['evaluated'], 1) * 1000:.2f} SQL queries per 1,000 rules "
            f"({tick['queries'] / max(tick['evaluated'], 1) * 1000:.2f} with BEGIN and COMMIT); "
            f"{tick['created']:,} alerts created; {tick['errors']} errors; "
            f"worker peak RSS {tick['worker_peak_mb']:.0f} MB; "
            f"WAL {tick['wal_bytes'] / max(tick['evaluated'], 1):,.0f} bytes per rule"
        )
        per_chunk = tick["chunk_queries"] or [0]
        print(
            f"    statements: {tick['tick_queries']} to select the due rules, then per chunk "
            f"{per_chunk[0]}–{per_chunk[-1]} (median {per_chunk[len(per_chunk) // 2]}, BEGIN and COMMIT included)"
        )
        print(
            f"    floor (the same work set-based in PostgreSQL, {options.workers} connection(s)): "
            f"{tick['floor']:.2f} s, {tick['floor_alerts']:,} alerts; "
            f"the tick is {tick['seconds'] / tick['floor']:.2f}× the floor"
        )
    print(
        f"open alerts after tick 1: {open_after_first:,}; alerts created by tick 2: {second['created']} "
        f"(duplicates: {duplicates}); parent peak RSS {parent_peak_mb:.0f} MB"
    )
    targets = {
        "tick 1 ≤ 1.5× its floor": first["seconds"] <= 1.5 * first["floor"],
        "tick 2 ≤ 1.5× its floor": second["seconds"] <= 1.5 * second["floor"],
        "≤ 10 SQL queries per 1,000 rules (each tick)": all(
            tick["work_queries"] / max(tick["evaluated"], 1) * 1000 <= 10 for tick in (first, second)
        ),
        "no duplicates": duplicates == 0,
    }
    for name, met in targets.items():
        print(f"target: {name}: {'met' if met else 'NOT met'}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
