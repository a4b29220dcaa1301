"""
Benchmark of alert deliveries through real Celery workers on Redis.

    .venv/bin/python benchmarks/deliveries.py [--alerts 1000] [--concurrency 16] [--workers 2]

Starts a local webhook receiver (HTTP, answering 200) and `--workers` Celery worker processes
(thread pools of `--concurrency`) on Redis against the database `proactive_insights_bench_deliveries`.
Then, for one tenant with one signed webhook channel: one alert raised alone, timed from the
commit to its receipt (latency, repeated), and `--alerts` alerts raised in one transaction,
timed from the commit to the last receipt (throughput). Prints latency percentiles and
deliveries per second. Then `--alerts` notices held by a channel's quiet hours are released as one
digest: the time to bundle them and from that commit to the digest's receipt.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
ENV = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/proactive_insights_bench_deliveries",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12",
    "DJANGO_SETTINGS_MODULE": "config.settings_test",
    "OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "1",
    "POSTHOG_API_KEY": "",
}
os.environ.update(ENV)

import django  # noqa: E402

received: list[float] = []
sizes: list[int] = []
received_lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        sizes.append(int(self.headers["Content-Length"]))
        with received_lock:
            received.append(time.perf_counter())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def ensure_database():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'proactive_insights_bench_deliveries'"
        ).fetchone():
            conn.execute('CREATE DATABASE "proactive_insights_bench_deliveries"')


def wait_for(count: int, timeout: float = 120.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with received_lock:
            if len(received) >= count:
                return received[count - 1]
        time.sleep(0.001)
    raise SystemExit(f"only {len(received)} of {count} deliveries arrived within {timeout:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    ensure_database()
    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from alerts.channel_messages import new_webhook_secret
    from alerts.deliveries import digests_release
    from alerts.models import Alert, Channel, Delivery
    from alerts.services import Firing, alerts_raise
    from config.celery import app
    from proactive.models import TriggerRule
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    Delivery.objects.all().delete()
    Alert.objects.all().delete()
    TriggerRule.objects.all().delete()
    Channel.objects.all().delete()
    tenant, _ = Tenant.objects.get_or_create(id="bench", defaults={"name": "Bench", "slug": "bench"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Channel.objects.create(
        tenant=tenant,
        name="hook",
        kind="webhook",
        target=f"http://127.0.0.1:{server.server_address[1]}/hook",
        secret=new_webhook_secret(),
        events=["fired", "acknowledged", "resolved", "snoozeEnded"],
    )
    rules = TriggerRule.objects.bulk_create(
        [
            TriggerRule(
                tenant=tenant, name=f"rule {n}", type="metric_threshold", metric="m", threshold=1, window_days=30
            )
            for n in range(2 * args.alerts + args.latency_samples)
        ]
    )
    app.control.purge()
    workers = [
        subprocess.Popen(
            [
                str(PROJECT / ".venv/bin/celery"),
                "-A",
                "config",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(args.concurrency),
                "--loglevel",
                "WARNING",
                "-n",
                f"bench{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=PROJECT,
            env={**os.environ, **ENV},
        )
        for i in range(args.workers)
    ]
    try:
        time.sleep(6)  # the workers connect and import the project
        latencies = []
        for n in range(args.latency_samples):
            with transaction.atomic():
                alerts_raise(firings=[Firing(rule=rules[n], payload={"reason": "bench"}, triggered_at=timezone.now())])
            committed = time.perf_counter()
            latencies.append((wait_for(n + 1) - committed) * 1000)
        before = len(received)
        with transaction.atomic():
            alerts_raise(
                firings=[
                    Firing(rule=rule, payload={"reason": "bench"}, triggered_at=timezone.now())
                    for rule in rules[args.latency_samples : args.latency_samples + args.alerts]
                ]
            )
        committed = time.perf_counter()
        last = wait_for(before + args.alerts)
        elapsed = last - committed

        # Quiet hours: the next `--alerts` notices are held, then go as one digest.
        Channel.objects.update(enabled=False)
        local = timezone.now()
        Channel.objects.create(
            tenant=tenant,
            name="night",
            kind="webhook",
            target=f"http://127.0.0.1:{server.server_address[1]}/night",
            secret=new_webhook_secret(),
            events=["fired"],
            quiet_hours_start=(local - timedelta(hours=1)).time(),
            quiet_hours_end=(local + timedelta(hours=2)).time(),
        )
        with transaction.atomic():
            alerts_raise(
                firings=[
                    Firing(rule=rule, payload={"reason": "bench"}, triggered_at=timezone.now())
                    for rule in rules[args.latency_samples + args.alerts :]
                ]
            )
        held = Delivery.objects.filter(status="held").update(next_attempt_at=timezone.now())  # quiet hours over
        before = len(received)
        started = time.perf_counter()
        with transaction.atomic():
            [digest_id] = digests_release()
        committed = time.perf_counter()
        digest_received = wait_for(before + 1)
        bundle_ms, digest_ms = (committed - started) * 1000, (digest_received - committed) * 1000
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        server.shutdown()

    latencies.sort()
    print(f"{args.workers} worker(s) × {args.concurrency} threads, one webhook channel on 127.0.0.1 (answering 200)")
    print(
        f"latency, commit → receipt, one alert at a time ({len(latencies)}): median "
        f"{statistics.median(latencies):.1f} ms, p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )
    sent = Delivery.objects.filter(status="sent").count()
    print(
        f"{args.alerts:,} alerts in one transaction: the last delivery received {elapsed:.2f} s after the commit = "
        f"{args.alerts / elapsed:,.0f} deliveries/s; {sent:,} deliveries marked sent"
    )
    digest = Delivery.objects.get(pk=digest_id)
    print(
        f"quiet hours: {held:,} held notices bundled into one digest in {bundle_ms:.0f} ms; the digest "
        f"({sizes[-1] / 1024:,.0f} KiB, {digest.items.count():,} notices) received {digest_ms:.0f} ms after that "
        f"commit; status {digest.status}"
    )


if __name__ == "__main__":
    main()
