"""
Benchmark of `GET /health` beside the framework's floor (an unauthenticated 404), in process.

    .venv/bin/python benchmarks/health.py [--requests 2000]

Uses the test settings (PostgreSQL and Redis on 127.0.0.1; the check only runs SELECT 1, on `postgres`)
and Django's test client, so it measures the server's own work per request, not a network. Prints
requests per second and the median of each.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402


def measure(client, path: str, requests: int) -> tuple[float, float]:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path)
        timings.append(time.perf_counter() - started)
    return requests / sum(timings), statistics.median(timings) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    django.setup()
    from django.test import Client

    client = Client()
    assert client.get("/health").json()["checks"] == {"database": "ok", "broker": "ok"}
    for path in ("/no-such-page", "/health", "/no-such-page", "/health"):  # interleaved, after a warm-up
        per_second, median_ms = measure(client, path, args.requests)
        print(f"GET {path:14} {per_second:8,.0f} req/s, median {median_ms:.2f} ms ({args.requests:,} requests)")


if __name__ == "__main__":
    main()
