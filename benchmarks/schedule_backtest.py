"""
Benchmark of a schedule rule's backtest in a time zone: 90 days that contain a clock change, as
`POST /triggers/{id}/backtest` with `days: 90` replays and serializes them. No database is read.

    .venv/bin/python benchmarks/schedule_backtest.py [--repeat 5]

Times every-minute, every-15-minutes and weekday-morning schedules in UTC, Europe/Berlin and
America/New_York (both spring forward in the span) and Asia/Kolkata (UTC+5:30, no change).
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

DAYS = 90
NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)  # 90 days back: 2026-01-15, both spring-forward days inside
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
SCHEDULES = ("* * * * *", "*/15 * * * *", "0 9 * * 1-5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    django.setup()

    from proactive.apis import BacktestOutputSerializer
    from proactive.engine.backtest import trigger_rule_backtest
    from proactive.models import TriggerRule

    worst = 0.0
    for schedule in SCHEDULES:
        for zone in ZONES:
            rule = TriggerRule(type="schedule", schedule=schedule, timezone=zone)
            timings = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = trigger_rule_backtest(rule=rule, days=DAYS, now=NOW)
                body = BacktestOutputSerializer(result).data  # what the API sends back
                timings.append(time.perf_counter() - started)
            worst = max(worst, *timings)
            print(
                f"{schedule:<14} {zone:<18} {statistics.median(timings) * 1000:7.1f} ms median of {args.repeat} "
                f"({result.firing_count:,} occurrences, {len(body['firings']):,} listed)"
            )
    print(f"slowest run {worst * 1000:.1f} ms; target (< 1 s for 90 days of an every-minute schedule):", end=" ")
    print("met" if worst < 1 else "NOT met")


if __name__ == "__main__":
    main()
