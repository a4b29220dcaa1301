"""
Load benchmark of the API: the server as the Procfile runs it (gunicorn, 2 sync workers, DEBUG off)
and 16 connections from wrk (`apt-get install wrk`) in a second process, on loopback.

    .venv/bin/python benchmarks/api.py [--requests 1000] [--rounds 2] [--clients 16] [--workers 2]
    .venv/bin/python benchmarks/api.py --only alerts          # the endpoints whose name contains it
    .venv/bin/python benchmarks/api.py --profile "GET /alerts (first page)"   # in process, cProfile
    .venv/bin/python benchmarks/api.py --explain              # the list queries' plans (EXPLAIN ANALYZE)

Seeds once (later runs reuse it; `--reseed` starts over) the database `proactive_insights_api_bench`
(DATABASE_URL names another) with set-based SQL: 100 tenants and 1,000,000 alerts — 900,000 of them
in the tenant `bench`, one an alert's rule fires every ~35 s over a year, at most one open per rule —
with their history (2.3 events per alert on average), a notification each, 100,000 deliveries with
their attempts, 5,000 rules, channels, widgets, a month of one-minute points and a year of usage.

Then it starts gunicorn from `--project` (default: this checkout; another checkout, e.g. the commit
before, serves the same data) and, for each endpoint, has wrk send `--requests` pre-built requests
over `--clients` connections (a new connection each: `Connection: close`, as gunicorn's sync workers
close them anyway), in `--rounds` rounds, every endpoint once per round. wrk is C with one thread
(benchmarks/requests.lua hands it the requests and counts the answers' statuses), so the client
takes little of the CPU the server needs; a Python client on 2 cores took about as much as the
server. It prints requests per second and the 95th percentile latency (medians over the rounds),
and each one's throughput as a share of `GET /alerts/{id}`'s; the unauthenticated 404 is the
framework's ceiling. Every answer's status is checked. The webhook's requests are distinct events
signed just before their round (one in ten a redelivery of an earlier one), spread over the
tenants; after each round the database must hold each new event once and its tokens counted once,
and the redeliveries must have answered `duplicate: true`.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/proactive_insights_api_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")  # --profile: one connection, as a server worker keeps
os.environ["POSTHOG_API_KEY"] = ""

import django  # noqa: E402

BIG = "bench"  # the tenant the requests act for
SMALL_TENANTS = 99
RULES_BIG, RULES_SMALL = 5_000, 20
CHANNELS_BIG, CHANNELS_SMALL = 10, 2
DELIVERIES = 100_000
POINTS_METRIC = "bench.m0"
POINTS = 30 * 1440
USAGE_DAYS = 365
WIDGETS, INSTALLS = 40, 10
SPAN = timedelta(days=365)  # the alerts' time span, ending at the seed's time


# --- Seeding ------------------------------------------------------------------------------------


def ensure_database():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname="postgres"
    ) as conn:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def seeded(alerts: int) -> bool:
    from alerts.models import Alert, Delivery
    from tenants.models import Tenant

    return (
        Tenant.objects.filter(pk=BIG).exists()
        and Alert.objects.count() == alerts
        and Delivery.objects.filter(tenant_id=BIG).count() == DELIVERIES
        and not Alert.objects.filter(history_json__isnull=True).exists()  # seeded before alerts kept it
    )


def seed(alerts: int) -> None:
    from django.db import connection

    from alerts.models import Channel
    from marketplace.models import TenantWidget, Widget
    from proactive.models import TriggerRule
    from tenants.models import Tenant

    started = time.perf_counter()
    print(f"seeding {alerts:,} alerts…", flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tenants_tenant, alerts_alert, alerts_alertevent, alerts_notification, alerts_channel, "
            "alerts_delivery, alerts_deliveryattempt, proactive_triggerrule, proactive_metricpoint, "
            "billing_billingusage, billing_usagesnapshot, billing_billingevent, marketplace_widget, "
            "marketplace_tenantwidget, tenants_apikey CASCADE"
        )
    small = [f"bench-{n:03d}" for n in range(1, SMALL_TENANTS + 1)]
    Tenant.objects.bulk_create(
        [Tenant(id=tenant_id, name=f"Tenant {tenant_id}", slug=tenant_id) for tenant_id in [BIG, *small]]
    )

    rules = []
    for tenant_id, count in [(BIG, RULES_BIG)] + [(tenant_id, RULES_SMALL) for tenant_id in small]:
        for r in range(count):
            common = {
                "tenant_id": tenant_id,
                "name": f"Rule {r:04d}",
                "severity": ("info", "warning", "critical")[r % 3],
            }
            if r % 3 == 0:
                rules.append(TriggerRule(type="schedule", schedule="0 9 * * 1-5", **common))
            elif r % 3 == 1:
                rules.append(
                    TriggerRule(
                        type="metric_threshold",
                        metric=f"bench.m{r % 10}",
                        threshold=300.0,
                        window_days=30,
                        comparison="above",
                        aggregate="last",
                        **common,
                    )
                )
            else:
                rules.append(
                    TriggerRule(type="anomaly", metric=f"bench.m{r % 10}", threshold=2.5, window_days=30, **common)
                )
    TriggerRule.objects.bulk_create(rules, batch_size=5_000)
    channels = []
    for tenant_id, count in [(BIG, CHANNELS_BIG)] + [(tenant_id, CHANNELS_SMALL) for tenant_id in small]:
        for c in range(count):
            kind = ("email", "webhook", "slack")[c % 3]
            target = {
                "email": f"ops{c}@example.com, oncall{c}@example.com",
                "webhook": f"https://hooks.example.com/alerts/{c}",
                "slack": f"https://hooks.slack.com/services/T000/B000/{c:024d}",
            }[kind]
            channels.append(
                Channel(
                    tenant_id=tenant_id,
                    name=f"Channel {c}",
                    kind=kind,
                    target=target,
                    secret="whsec_" + "x" * 32 if kind == "webhook" else "",
                    events=["fired", "acknowledged", "resolved"],
                )
            )
    Channel.objects.bulk_create(channels)
    widgets = Widget.objects.bulk_create(
        [
            Widget(
                slug=f"widget-{w:02d}",
                name=f"Widget {w}",
                description="A tile for the dashboard.",
                version="1.2.0",
                dashboard={"tile": {"title": f"Widget {w}", "size": "md"}},
                metadata={"category": "analytics", "vendor": "Bench"},
            )
            for w in range(WIDGETS)
        ]
    )
    TenantWidget.objects.bulk_create(
        [
            TenantWidget(tenant_id=BIG, widget=widget, installed_at=now, installed_version="1.2.0", config={"n": 1})
            for widget in widgets[:INSTALLS]
        ]
    )

    small_alerts = alerts // 10 // SMALL_TENANTS
    big_alerts = alerts - small_alerts * SMALL_TENANTS
    counts = [(BIG, big_alerts, RULES_BIG)] + [(tenant_id, small_alerts, RULES_SMALL) for tenant_id in small]
    statements = [
        # Rules created over the last 1,000 hours.
        "UPDATE proactive_triggerrule SET created_at = %(now)s - (id %% 1000) * interval '1 hour', "
        "updated_at = %(now)s - (id %% 1000) * interval '1 hour'",
        # Alerts: each tenant's i-th alert is its rule (i mod rules)'s; each rule's latest is open.
        """
        WITH t(tenant_id, n, rules) AS (SELECT * FROM unnest(%(tenants)s::text[], %(ns)s::int[], %(rules)s::int[])),
        r AS (
            SELECT id, tenant_id, name, type, severity, metric, schedule, threshold,
                   row_number() OVER (PARTITION BY tenant_id ORDER BY id) - 1 AS k
            FROM proactive_triggerrule
        ),
        g AS (
            SELECT t.tenant_id, t.n, t.rules, i, i %% t.rules AS k,
                   %(now)s - (t.n - 1 - i) * (%(span)s / t.n)
                       + ((i::bigint * 7919) %% 1000000) * interval '1 microsecond' AS at
            FROM t, generate_series(0, t.n - 1) AS i
        ),
        a AS (
            SELECT g.tenant_id, r.id AS rule_id, r.name AS rule_name, r.type AS rule_type, r.severity, g.at, g.i,
                   CASE WHEN g.i < g.n - g.rules THEN 'resolved'
                        ELSE (ARRAY['pending', 'acknowledged', 'snoozed'])[1 + g.k %% 3] END AS status,
                   CASE r.type
                     WHEN 'schedule' THEN jsonb_build_object(
                        'schedule', r.schedule,
                        'scheduledFor', to_char(date_trunc('minute', g.at) AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'reason', 'The schedule ' || r.schedule || ' fired.')
                     WHEN 'metric_threshold' THEN jsonb_build_object(
                        'metric', r.metric, 'value', 300 + g.i %% 97, 'threshold', r.threshold,
                        'observedAt', to_char(g.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'reason', r.metric || ' is ' || (300 + g.i %% 97) || ', above 300.')
                     ELSE jsonb_build_object(
                        'metric', r.metric, 'value', 180.5 + g.i %% 13, 'mean', 101.25, 'std', 12.75,
                        'zScore', round(((79.25 + g.i %% 13) / 12.75)::numeric, 4), 'threshold', r.threshold,
                        'windowDays', 30, 'points', 30,
                        'observedAt', to_char(g.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'reason', r.metric || ' is ' || (180.5 + g.i %% 13) || ', a z-score above 2.5.')
                   END AS payload
            FROM g JOIN r ON r.tenant_id = g.tenant_id AND r.k = g.k
        )
        INSERT INTO alerts_alert (tenant_id, rule_id, rule_name, rule_type, severity, status, payload, triggered_at,
                                  acknowledged_at, resolved_at, snoozed_until, channel_ids, updated_at)
        SELECT tenant_id, rule_id, rule_name, rule_type, severity, status, payload, at,
               CASE WHEN status = 'acknowledged' THEN at + interval '5 minutes' END,
               CASE WHEN status = 'resolved' THEN at + interval '30 minutes' END,
               CASE WHEN status = 'snoozed' THEN %(now)s + interval '1 day' END,
               '[]'::jsonb, at
        FROM a ORDER BY at
        """,
        # Their history: fired; then acknowledged and resolved by a person, resolved by the engine
        # or by a key, acknowledged, or snoozed.
        """
        INSERT INTO alerts_alertevent (alert_id, from_status, to_status, at, actor, reason)
        SELECT a.id, e.f, e.t, e.at, e.actor, e.reason
        FROM alerts_alert a CROSS JOIN LATERAL (VALUES
            ('', 'pending', a.triggered_at, 'engine', '', true),
            ('pending', 'acknowledged', a.triggered_at + interval '5 minutes', 'user:dana', '',
             a.status = 'acknowledged' OR (a.status = 'resolved' AND a.id %% 3 = 0)),
            ('acknowledged', 'resolved', a.resolved_at, 'user:dana', '', a.status = 'resolved' AND a.id %% 3 = 0),
            ('pending', 'resolved', a.resolved_at, 'engine', 'The condition cleared.',
             a.status = 'resolved' AND a.id %% 3 = 1),
            ('pending', 'resolved', a.resolved_at, 'api-key:3f9a1c2e', '', a.status = 'resolved' AND a.id %% 3 = 2),
            ('pending', 'snoozed', a.triggered_at + interval '10 minutes', 'user:dana', '', a.status = 'snoozed')
        ) AS e(f, t, at, actor, reason, keep)
        WHERE e.keep ORDER BY a.id, e.at
        """,
        # A notification each; the older three quarters of the resolved ones read.
        """
        INSERT INTO alerts_notification (tenant_id, alert_id, title, body, severity, alert_status, created_at,
                                         updated_at, read_at)
        SELECT tenant_id, id, rule_name || ' fired', payload->>'reason', severity, status, triggered_at,
               coalesce(resolved_at, triggered_at),
               CASE WHEN status = 'resolved' AND id %% 4 <> 0 THEN triggered_at + interval '1 hour' END
        FROM alerts_alert ORDER BY id
        """,
        # Deliveries of the big tenant's latest alerts' firing, each to one of its channels.
        """
        WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM alerts_channel WHERE tenant_id = %(big)s),
        a AS (SELECT id, triggered_at FROM alerts_alert WHERE tenant_id = %(big)s
              ORDER BY triggered_at DESC, id DESC LIMIT %(deliveries)s)
        INSERT INTO alerts_delivery (tenant_id, channel_id, alert_id, alert_event_id, event, status, attempts,
                                     next_attempt_at, sent_at, last_error, created_at)
        SELECT %(big)s, c.id, a.id, e.id, 'fired',
               CASE WHEN a.id %% 20 = 0 THEN 'failed' WHEN a.id %% 50 = 1 THEN 'pending' ELSE 'sent' END,
               CASE WHEN a.id %% 20 = 0 THEN 5 WHEN a.id %% 50 = 1 THEN 0 ELSE 1 END,
               CASE WHEN a.id %% 50 = 1 THEN %(now)s + interval '1 minute' END,
               CASE WHEN a.id %% 20 <> 0 AND a.id %% 50 <> 1 THEN a.triggered_at + interval '1 second' END,
               CASE WHEN a.id %% 20 = 0 THEN 'HTTP 500 from the receiver' ELSE '' END,
               a.triggered_at
        FROM a JOIN alerts_alertevent e ON e.alert_id = a.id AND e.from_status = ''
               JOIN c ON c.k = a.id %% %(channels)s
        ORDER BY a.triggered_at
        """,
        """
        INSERT INTO alerts_deliveryattempt (delivery_id, at, status_code, duration_ms, error)
        SELECT id, created_at + interval '1 second', CASE WHEN status = 'failed' THEN 500 ELSE 200 END, 120.5,
               CASE WHEN status = 'failed' THEN 'HTTP 500' ELSE '' END
        FROM alerts_delivery WHERE status <> 'pending' ORDER BY id
        """,
        """
        INSERT INTO proactive_metricpoint (tenant_id, metric, timestamp, value)
        SELECT %(big)s, %(metric)s, date_trunc('minute', %(now)s) - m * interval '1 minute', 100 + (m * 37) %% 23
        FROM generate_series(0, %(points)s - 1) AS m
        """,
        *(
            f"""
            INSERT INTO {table} (tenant_id, day, tokens_used, tasks_executed, alerts_triggered, active_widgets,
                                 updated_at)
            SELECT t.id, (%(now)s AT TIME ZONE 'UTC')::date - d, 1000 + (d * 37) %% 200, 10, d %% 5, 1, %(now)s
            FROM tenants_tenant t, generate_series(0, %(days)s - 1) AS d
            """
            for table in ("billing_billingusage", "billing_usagesnapshot")
        ),
    ]
    params = {
        "now": now,
        "span": SPAN,
        "tenants": [c[0] for c in counts],
        "ns": [c[1] for c in counts],
        "rules": [c[2] for c in counts],
        "big": BIG,
        "deliveries": DELIVERIES,
        "channels": CHANNELS_BIG,
        "metric": POINTS_METRIC,
        "points": POINTS,
        "days": USAGE_DAYS,
    }
    with connection.cursor() as cursor:
        for statement in statements:
            step = time.perf_counter()
            cursor.execute(statement, params)
            what = next(w for w in statement.split() if w.islower() and "_" in w)  # the first table named
            print(f"  {cursor.rowcount:>9,} rows in {time.perf_counter() - step:5.1f} s: {what}", flush=True)
    keep_histories()
    connection.close()
    vacuum()
    print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)


def keep_histories() -> None:
    """Each alert's history as the services keep it (`history_json`), the table rewritten compactly after."""
    from django.db import connection

    from alerts.models import Alert
    from alerts.serializers import ALERT_BODY

    step = time.perf_counter()
    kept = Alert.objects.update(history_json=ALERT_BODY.kept_text("history"))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL alerts_alert")
    print(f"  {kept:>9,} rows in {time.perf_counter() - step:5.1f} s: alerts_alert.history_json", flush=True)


def vacuum():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname=db["NAME"]
    ) as conn:
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")


# --- The endpoints ------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200
    method: str = "GET"
    bodies: list[bytes] | None = None  # POST: one per request, made fresh each round (signatures age)
    base: bool = False  # the single read the lists are compared with
    ceiling: bool = False  # the unauthenticated 404: what the framework alone serves


def cursor_at(position: datetime, alert_id: int) -> str:
    """A `cursor` as the API's paginator writes it (base64 of `p=<position>|<id>`, core.pagination)."""
    return b64encode(urlencode({"p": f"{position.isoformat()}|{alert_id}"}).encode("ascii")).decode("ascii")


def endpoints(raw_key: str) -> list[Endpoint]:
    from django.conf import settings

    from alerts.models import Alert, Channel
    from proactive.models import TriggerRule

    rng = random.Random(15)
    tenant_key = {"Authorization": f"Bearer {raw_key}"}
    alerts = Alert.objects.filter(tenant_id=BIG)
    total = alerts.count()
    ids = list(
        alerts.filter(id__in=[rng.randrange(1, total * 11 // 10) for _ in range(2000)]).values_list("id", flat=True)
    )
    rng.shuffle(ids)
    ordered = alerts.order_by("-triggered_at", "-id")
    deep = [ordered.values_list("triggered_at", "id")[depth] for depth in range(100_000, total, total // 40)]
    resolved = ordered.filter(status="resolved")
    deep_resolved = [
        resolved.values_list("triggered_at", "id")[depth] for depth in range(100_000, total - 10_000, total // 40)
    ]
    rule_ids = list(TriggerRule.objects.filter(tenant_id=BIG).values_list("id", flat=True))
    channel_ids = list(Channel.objects.filter(tenant_id=BIG).values_list("id", flat=True))
    return [
        Endpoint("GET /no-such-page (404, no credentials)", ["/no-such-page"], expect=404, ceiling=True),
        Endpoint("GET /alerts/{id}", [f"/alerts/{i}" for i in ids[:500]], tenant_key, base=True),
        Endpoint("GET /alerts (first page)", ["/alerts"], tenant_key),
        Endpoint("GET /alerts?status=pending", ["/alerts?status=pending"], tenant_key),
        Endpoint("GET /alerts?status=pending,acknowledged", ["/alerts?status=pending,acknowledged"], tenant_key),
        Endpoint("GET /alerts?severity=critical", ["/alerts?severity=critical"], tenant_key),
        Endpoint("GET /alerts?ruleId=…", [f"/alerts?ruleId={r}" for r in rng.sample(rule_ids, 200)], tenant_key),
        Endpoint("GET /alerts?cursor=… (deep)", [f"/alerts?cursor={quote(cursor_at(*p))}" for p in deep], tenant_key),
        Endpoint(
            "GET /alerts?status=resolved&cursor=… (deep)",
            [f"/alerts?status=resolved&cursor={quote(cursor_at(*p))}" for p in deep_resolved],
            tenant_key,
        ),
        Endpoint("GET /notifications", ["/notifications"], tenant_key),
        Endpoint("GET /notifications?unread=true", ["/notifications?unread=true"], tenant_key),
        Endpoint("GET /triggers", ["/triggers"], tenant_key),
        Endpoint("GET /triggers?type=anomaly", ["/triggers?type=anomaly"], tenant_key),
        Endpoint("GET /channels", ["/channels"], tenant_key),
        Endpoint("GET /deliveries", ["/deliveries"], tenant_key),
        Endpoint("GET /deliveries?status=failed", ["/deliveries?status=failed"], tenant_key),
        Endpoint("GET /deliveries?channel=…", [f"/deliveries?channel={c}" for c in channel_ids], tenant_key),
        Endpoint("GET /marketplace/widgets", ["/marketplace/widgets"], tenant_key),
        Endpoint(f"GET /metrics/{POINTS_METRIC}/points", [f"/metrics/{POINTS_METRIC}/points"], tenant_key),
        Endpoint("GET /billing/usage", ["/billing/usage"], tenant_key),
        Endpoint("GET /tenants (admin key)", ["/tenants"], {"X-Admin-Key": settings.INTERNAL_ADMIN_API_KEY}),
        Endpoint("POST /billing/webhook", ["/billing/webhook"], method="POST"),
    ]


def webhook_bodies(count: int, run: str, redeliver: list[bytes]) -> list[bytes]:
    """`count` usage events for random tenants, one in ten a redelivery of one of `redeliver`."""
    rng = random.Random(run)
    tenants = [BIG] + [f"bench-{n:03d}" for n in range(1, SMALL_TENANTS + 1)]
    today = datetime.now(UTC).date().isoformat()
    bodies = []
    for n in range(count):
        if redeliver and n % 10 == 9:
            bodies.append(rng.choice(redeliver))
            continue
        metadata = {"tenantId": rng.choice(tenants), "tokensUsed": str(rng.randrange(1, 5000)), "usageDate": today}
        if n % 3 == 0:
            metadata["tasksExecuted"] = str(rng.randrange(1, 20))
        event = {
            "id": f"evt_bench_{run}_{n}",
            "object": "event",
            "type": "invoice.created",
            "created": int(time.time()),
            "data": {"object": {"object": "invoice", "customer": f"cus_{n:08d}", "metadata": metadata}},
        }
        bodies.append(json.dumps(event).encode())
    return bodies


def signed(body: bytes) -> dict[str, str]:
    import stripe
    from django.conf import settings

    header = stripe.WebhookSignature.generate_signature_header(body.decode(), settings.STRIPE_WEBHOOK_SECRET)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def raw_request(endpoint: Endpoint, path: str, port: int, body: bytes | None) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", **endpoint.headers, "Connection": "close"}
    if body is not None:
        headers.update(signed(body))
        headers["Content-Length"] = str(len(body))
    head = f"{endpoint.method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + (body or b"")


# --- The load -----------------------------------------------------------------------------------

WRK_SCRIPT = Path(__file__).with_name("requests.lua")


def send(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a new connection (the checks and the server's start; the load is wrk's)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    return int(response[9:12]), response


@dataclass
class Load:
    elapsed: float  # from the first request sent to the `quota`-th answer
    p95: float  # seconds
    statuses: dict[int, int]
    sent: int  # the first `sent` requests went out (a few after the quota's answer: still served)
    duplicates: int  # answers saying "duplicate": true
    client_cpu: float  # seconds of CPU wrk used until the quota's answer


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int], *, reaped_children: bool = False) -> float:
    """
    The CPU time (user + system) the processes used so far, all their threads; with
    `reaped_children`, instead that of their children that exited (cutime, cstime).
    """
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[13]) + int(fields[14]) if reaped_children else int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def database_cpu_seconds() -> float:
    """
    The CPU time of the benchmark database's backends so far, those that exited included: a server
    worker's connection lives DATABASE_CONN_MAX_AGE (60 s), shorter than a round on a slow machine,
    and an exited backend's time is in the postmaster's reaped children. Read again each time, so a
    backend that started meanwhile counts too. Any server process that exits counts (another database's
    backend, an autovacuum worker: ~0.1 ms per request of the 404 ceiling here): keep the machine quiet.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    postmaster = int(Path(f"/proc/{own}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the parent
    return cpu_seconds(backends) + cpu_seconds([postmaster], reaped_children=True)


def server_pids(server: subprocess.Popen) -> list[int]:
    """gunicorn's processes."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *map(int, children)]


def load(port: int, requests: list[bytes], quota: int, clients: int) -> Load:
    """
    Send `requests` in order with wrk (`clients` connections, one thread: C, so the client costs the
    server little of the machine) until `quota` answers came; `requests` holds `clients` more than
    the quota, for the connections busy when the quota is reached.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("The load is sent by wrk: apt-get install wrk")
    with tempfile.NamedTemporaryFile(prefix="api-bench-", suffix=".requests") as file:
        file.write(b"".join(b"%d\n%s" % (len(request), request) for request in requests))
        file.flush()
        command = [wrk, "-t1", f"-c{clients}", "-d3600s", "--timeout", "60s", "-s", str(WRK_SCRIPT)]
        process = subprocess.Popen(
            [*command, f"http://127.0.0.1:{port}", "--", file.name, str(quota)], stdout=subprocess.PIPE, text=True
        )
        watchdog = threading.Timer(600, process.send_signal, [signal.SIGINT])  # a quota never reached
        watchdog.start()
        try:
            counted = next((json.loads(line) for line in process.stdout if line.startswith("{")), None)
            client_cpu = cpu_seconds([process.pid])
            process.send_signal(signal.SIGINT)  # wrk then prints the latencies (done())
            rest, _ = process.communicate(timeout=60)
        finally:
            watchdog.cancel()
    timings = next((json.loads(line) for line in rest.splitlines() if line.startswith("{")), None)
    if counted is None or timings is None:
        raise SystemExit(f"wrk did not get {quota} answers:\n{rest}")
    if any(timings["errors"].values()):
        raise SystemExit(f"wrk: socket errors {timings['errors']}")
    return Load(
        elapsed=counted["elapsed"],
        p95=timings["p95_us"] / 1e6,
        statuses={int(code): n for code, n in counted["statuses"].items()},
        sent=counted["sent"],
        duplicates=counted["duplicates"],
        client_cpu=client_cpu,
    )


def requests_for(
    endpoint: Endpoint, count: int, port: int, run: str, earlier: list[bytes]
) -> tuple[list[bytes], list[bytes]]:
    """The raw requests, and (the webhook) their bodies: signed now, as Stripe's tolerance is 5 minutes."""
    if endpoint.method == "POST":
        bodies = webhook_bodies(count, run, earlier)
        earlier.extend(b for b in bodies[:50] if b not in earlier)
        return [raw_request(endpoint, endpoint.paths[0], port, body) for body in bodies], bodies
    return [raw_request(endpoint, endpoint.paths[n % len(endpoint.paths)], port, None) for n in range(count)], []


def webhook_tokens_today() -> int:
    from django.db.models import Sum

    from billing.models import BillingUsage

    today = datetime.now(UTC).date()
    return BillingUsage.objects.filter(day=today).aggregate(total=Sum("tokens_used"))["total"] or 0


def webhook_stored_check(bodies: list[bytes], run: str, result: Load, tokens_before: int) -> None:
    """
    Every new event sent is stored once, and its tokens counted once; the redeliveries (of events
    stored in earlier rounds) answered `duplicate: true` and changed nothing.
    """
    from billing.models import BillingEvent

    events = [json.loads(body) for body in bodies[: result.sent]]
    new = {e["id"]: int(e["data"]["object"]["metadata"]["tokensUsed"]) for e in events if f"_{run}_" in e["id"]}
    redelivered = len(events) - len(new)
    in_flight = result.sent - sum(result.statuses.values())
    if not redelivered - in_flight <= result.duplicates <= redelivered:
        raise SystemExit(f"webhook: {result.duplicates} duplicates answered, {redelivered} redeliveries sent")
    for _ in range(100):  # the few sent after the quota's answer may still be in the server
        stored = BillingEvent.objects.filter(event_id__startswith=f"evt_bench_{run}_").count()
        tokens = webhook_tokens_today() - tokens_before
        if stored == len(new) and tokens == sum(new.values()):
            return
        time.sleep(0.1)
    raise SystemExit(
        f"webhook: {stored} events stored of {len(new)} new ones sent; {tokens} tokens counted of {sum(new.values())}"
    )


def check(endpoint: Endpoint, port: int, run: str) -> str:
    """One request, its answer checked; a line saying what it returned."""
    earlier: list[bytes] = []
    code, response = send(port, requests_for(endpoint, 1, port, f"{run}-check", earlier)[0][0])
    if code != endpoint.expect:
        raise SystemExit(f"{endpoint.name}: expected {endpoint.expect}, got {code}:\n{response[:2000].decode()}")
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    if isinstance(body, dict) and "results" in body:
        return f"{len(body['results'])} items, {len(response):,} bytes"
    return f"{len(response):,} bytes"


def start_server(project: Path, port: int, args, log) -> subprocess.Popen:
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "OUTBOUND_ALLOW_PRIVATE_ADDRESSES", "DATABASE_CONN_MAX_AGE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        INTERNAL_ADMIN_API_KEY=settings.INTERNAL_ADMIN_API_KEY,
        STRIPE_WEBHOOK_SECRET=settings.STRIPE_WEBHOOK_SECRET,
        POSTHOG_API_KEY="",
    )
    server = subprocess.Popen(
        [
            str(project / ".venv/bin/gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--access-logfile",
            "-",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    for _ in range(200):
        try:
            if send(port, f"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())[0] == 404:
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    log.seek(0)
    raise SystemExit(f"gunicorn did not start:\n{log.read().decode()[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args, raw_key: str) -> None:
    chosen = [e for e in endpoints(raw_key) if e.base or e.ceiling or args.only is None or args.only in e.name]
    port = free_port()
    log = tempfile.TemporaryFile()  # gunicorn's own messages: shown if it does not start
    server = start_server(Path(args.project).resolve(), port, args, log)
    run_id = secrets.token_hex(4)
    results: dict[str, list[tuple[float, ...]]] = {e.name: [] for e in chosen}
    earlier: list[bytes] = []
    try:
        for endpoint in chosen:
            print(f"  {endpoint.name}: {check(endpoint, port, run_id)}", flush=True)
        for endpoint in chosen:  # warm-up: every worker has loaded everything and holds its connection
            warm = 4 * args.clients
            load(
                port,
                requests_for(endpoint, warm + args.clients, port, f"{run_id}-warm", earlier)[0],
                warm,
                args.clients,
            )
        app = server_pids(server)
        for round_ in range(args.rounds):
            for endpoint in chosen:
                run_round = f"{run_id}-{round_}"
                requests, bodies = requests_for(endpoint, args.requests + args.clients, port, run_round, earlier)
                tokens_before = webhook_tokens_today() if bodies else 0
                app_before, database_before = cpu_seconds(app), database_cpu_seconds()
                result = load(port, requests, args.requests, args.clients)
                cpu = [cpu_seconds(app) - app_before, database_cpu_seconds() - database_before]
                if set(result.statuses) != {endpoint.expect}:
                    raise SystemExit(f"{endpoint.name}: answers {result.statuses}")
                if bodies:
                    webhook_stored_check(bodies, run_round, result, tokens_before)
                rate = args.requests / result.elapsed
                per_request = [1000 * seconds / args.requests for seconds in (*cpu, result.client_cpu)]
                results[endpoint.name].append((rate, result.p95 * 1000, *per_request))
                print(
                    f"  round {round_ + 1}: {endpoint.name:48} {rate:8,.0f} req/s   CPU ms per request: "
                    + " / ".join(f"{ms:.2f}" for ms in per_request),
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(10)

    base = next(e.name for e in chosen if e.base)
    base_rate = statistics.median(r[0] for r in results[base])
    print(
        f"\n{args.requests:,} requests per endpoint and round, {args.rounds} round(s) (medians), "
        f"{args.clients} connections, gunicorn with {describe_workers(args)}, {Path(args.project).resolve()}; "
        f"CPU per request of gunicorn, of its PostgreSQL backends (not the WAL writer's) and of wrk"
    )
    print(f"{'endpoint':48} {'req/s':>8} {'p95 ms':>8} {'÷ single':>9} {'CPU ms: app':>12} {'db':>5} {'wrk':>5}")
    for endpoint in chosen:
        rate, tail, app_ms, db_ms, client_ms = (
            statistics.median(r[i] for r in results[endpoint.name]) for i in range(5)
        )
        rounds = " / ".join(f"{r[0]:,.0f}" for r in results[endpoint.name])
        print(
            f"{endpoint.name:48} {rate:8,.0f} {tail:8.1f} {rate / base_rate:9.2f} {app_ms:12.2f} {db_ms:5.2f} "
            f"{client_ms:5.2f}   ({rounds})"
        )


def describe_workers(args) -> str:
    if args.worker_class == "gthread":
        return f"{args.workers} gthread workers of {args.threads} threads"
    return f"{args.workers} {args.worker_class} workers"


# --- Profiling and plans ------------------------------------------------------------------------


def profile(args, raw_key: str) -> None:
    import cProfile
    import pstats

    from django.test import Client

    [endpoint] = [e for e in endpoints(raw_key) if e.name == args.profile]
    client = Client()
    headers = {k: v for k, v in endpoint.headers.items()}
    earlier: list[bytes] = []

    def one(n: int):
        path = endpoint.paths[n % len(endpoint.paths)]
        if endpoint.method == "POST":
            body = webhook_bodies(1, f"profile-{secrets.token_hex(4)}", earlier)[0]
            response = client.post(path, body, content_type="application/json", headers=signed(body))
        else:
            response = client.get(path, headers=headers)
        assert response.status_code == endpoint.expect, response.content[:500]

    for n in range(20):
        one(n)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for n in range(args.requests):
        one(n)
    profiler.disable()
    elapsed = time.perf_counter() - began
    print(f"{endpoint.name}: {args.requests / elapsed:,.0f} req/s in process, under the profiler")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def explain(raw_key: str) -> None:
    """The plan of each list's page query, as the API runs it (the SQL Django sends for a first page)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    for endpoint in endpoints(raw_key):
        if endpoint.method != "GET" or endpoint.expect != 200 or endpoint.base:
            continue
        with CaptureQueriesContext(connection) as queries:
            client.get(endpoint.paths[0], headers=endpoint.headers)
        print(f"\n=== {endpoint.name}")
        for query in queries.captured_queries:
            sql = query["sql"]
            if "tenants_apikey" in sql or sql.startswith(("UPDATE", "SAVEPOINT", "RELEASE")):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF, COSTS OFF, SUMMARY OFF) " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            print(f"-- {sql[:300]}{'…' if len(sql) > 300 else ''}")
            print("\n".join(plan))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the Procfile's default)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn's --worker-class (the Procfile's default)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn's --threads (gthread workers)")
    parser.add_argument("--project", default=str(PROJECT), help="the checkout gunicorn serves")
    parser.add_argument("--only", help="only the endpoints whose name contains this (and the single read and the 404)")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--profile", metavar="ENDPOINT", help="profile one endpoint in process instead")
    parser.add_argument("--explain", action="store_true", help="print the list queries' plans instead")
    args = parser.parse_args()

    django.setup()
    ensure_database()
    from django.core.management import call_command

    from tenants.models import Tenant
    from tenants.services import api_key_create

    call_command("migrate", verbosity=0)
    if args.reseed or not seeded(args.alerts):
        seed(args.alerts)
    raw_key = api_key_create(tenant=Tenant.objects.get(pk=BIG), name="benchmark").raw_key
    if args.profile:
        profile(args, raw_key)
    elif args.explain:
        explain(raw_key)
    else:
        run(args, raw_key)


if __name__ == "__main__":
    main()
