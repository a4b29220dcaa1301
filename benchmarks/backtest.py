"""
Benchmark of one rule's backtest on PostgreSQL: 90 days of one-minute points (plus the window
before them), as `POST /triggers/{id}/backtest` with `days: 90` reads and replays them.

    .venv/bin/python benchmarks/backtest.py [--repeat 5]

Seeds (once) a tenant with 120 days of one-minute points of one metric in the database
`proactive_insights_bench`, then times the backtest of a threshold rule and of anomaly rules of each
method (zscore, robust, seasonal in UTC and in Europe/Berlin), each with a 30-day window, as the
API runs it: reading the series, replaying 129,600 minutes and serializing the response. Beside
each: the replay alone (in memory), and the replay without auto-resolve — one alert for the
engine's function to explain instead of hundreds, so what the decisions themselves cost.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/proactive_insights_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

TENANT = "bench-backtest"
METRIC = "bench.minutely"
DAYS = 90
WINDOW_DAYS = 30


def seed(now: datetime) -> int:
    import numpy as np

    from proactive.models import MetricPoint
    from tenants.models import Tenant

    Tenant.objects.get_or_create(id=TENANT, defaults={"name": "Backtest bench", "slug": TENANT})
    minutes = (DAYS + WINDOW_DAYS) * 24 * 60
    existing = MetricPoint.objects.filter(tenant_id=TENANT, metric=METRIC).count()
    if existing == minutes:
        return existing
    MetricPoint.objects.filter(tenant_id=TENANT, metric=METRIC).delete()
    rng = np.random.default_rng(7)
    values = rng.normal(100, 5, minutes)
    values[::5000] += 60  # a spike every ~3.5 days
    start = now - timedelta(minutes=minutes - 1)
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(tenant_id=TENANT, metric=METRIC, timestamp=start + timedelta(minutes=i), value=float(v))
            for i, v in enumerate(values)
        ],
        batch_size=10_000,
    )
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from benchmarks.engine import ensure_database

    django.setup()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from proactive.apis import BacktestOutputSerializer
    from proactive.engine.backtest import BacktestRule, backtest_metric_rule, trigger_rule_backtest
    from proactive.metrics import SeriesRequest, metric_series_columns, metric_series_many
    from proactive.models import TriggerRule

    def replay_seconds(rule, series, timezone="UTC", auto_resolve=True) -> float:
        started = time.perf_counter()
        backtest_metric_rule(
            rule=as_backtest_rule(rule, auto_resolve),
            points=series,
            since=now - timedelta(days=DAYS),
            until=now,
            timezone=timezone,
        )
        return time.perf_counter() - started

    def as_backtest_rule(rule, auto_resolve=True):
        return BacktestRule(
            type=rule.type,
            metric=rule.metric,
            threshold=rule.threshold,
            window_days=rule.window_days,
            auto_resolve=auto_resolve,
            method=rule.method or "zscore",
        )

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = seed(now)
    print(f"{points:,} one-minute points of {METRIC} ({DAYS} days + a {WINDOW_DAYS}-day window)")
    request = SeriesRequest(tenant_id=TENANT, metric=METRIC, since=now - timedelta(days=DAYS + WINDOW_DAYS), until=now)
    for label, read in (
        ("as datetimes (the engine's series)", lambda: metric_series_many(requests=[request])[request]),
        ("as numbers (the backtest's columns)", lambda: metric_series_columns(request=request)),
    ):
        reads = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            window_series = read()
            reads.append(time.perf_counter() - started)
        print(
            f"reading the {len(window_series):,} points an anomaly rule reads {label}: "
            f"{statistics.median(reads):.2f} s median"
        )
    met = True
    cases = [
        ("metric_threshold", 130.0, "", "UTC", 2.0),
        ("anomaly", 3.0, "zscore", "UTC", 2.0),
        ("anomaly", 3.0, "robust", "UTC", 3.0),
        ("anomaly", 3.0, "seasonal", "UTC", 3.0),
        ("anomaly", 3.0, "seasonal", "Europe/Berlin", 3.0),
    ]
    for kind, threshold, method, zone, target in cases:
        rule = TriggerRule(
            tenant_id=TENANT,
            type=kind,
            metric=METRIC,
            threshold=threshold,
            window_days=WINDOW_DAYS,
            auto_resolve=True,
            method=method,
        )
        rule.tenant_timezone = zone  # as `with_tenant_timezone()` reads it: the tenant as if in that zone
        totals, replays, decisions = [], [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = trigger_rule_backtest(rule=rule, days=DAYS, now=now)
            body = BacktestOutputSerializer(result).data  # what the API sends back
            totals.append(time.perf_counter() - started)
            replays.append(replay_seconds(rule, window_series, zone))
            decisions.append(replay_seconds(rule, window_series, zone, auto_resolve=False))
        total, replay, decided = (statistics.median(found) for found in (totals, replays, decisions))
        met &= max(totals) <= target
        name = kind if kind != "anomaly" else f"anomaly {method}" + (f" ({zone})" if zone != "UTC" else "")
        print(
            f"{name}: {total:.2f} s median of {args.repeat}, slowest {max(totals):.2f} s (target {target:g} s); "
            f"{result.points_read:,} points read; the replay alone {replay:.2f} s, without auto-resolve (one alert "
            f"to explain) {decided:.2f} s; {result.minutes:,} minutes as {result.evaluations:,} evaluations; "
            f"{result.firing_count:,} firing minutes, {result.alert_count} would-be alerts, {result.flaps} flaps; "
            f"{len(body['series'])} chart points, {len(body['band'] or [])} band points"
        )

    # The worst case for alerts: a series crossing the threshold every minute for 90 days (64,800 alerts).
    flapping = [(now - timedelta(minutes=DAYS * 1440 - i), 200.0 if i % 2 else 50.0) for i in range(DAYS * 1440 + 1)]
    rule = TriggerRule(
        type="metric_threshold", metric=METRIC, threshold=130.0, window_days=WINDOW_DAYS, auto_resolve=True
    )
    replays = [replay_seconds(rule, flapping) for _ in range(args.repeat)]
    result = backtest_metric_rule(
        rule=as_backtest_rule(rule), points=flapping, since=now - timedelta(days=DAYS), until=now
    )
    print(
        f"flapping every minute (in memory): replay {statistics.median(replays):.2f} s median; "
        f"{result.alert_count:,} would-be alerts ({len(result.alerts):,} listed), {result.flaps:,} flaps"
    )
    print("targets (90 days of one-minute points, one rule, as the API runs it):", "met" if met else "NOT met")


if __name__ == "__main__":
    main()
