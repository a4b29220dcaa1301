"""
Outages injected for real: PostgreSQL terminating the engine's connections and refusing new ones
in the middle of a chunk, and the Redis broker going away under beat and the tick.
"""

import logging
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun, task_prerun
from django.db import connection
from django.utils import timezone

from alerts.models import Alert, AlertEvent, Notification
from billing.models import BillingUsage
from config.celery import app
from proactive.models import TriggerRule
from proactive.tasks import evaluate_rule_chunk, outage_retry_delays
from tests.factories import MetricPointFactory, TenantFactory, TriggerRuleFactory
from tests.faults import TcpProxy, database_outage, lines_logged

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def engine_lines_are_logged():
    """
    These tests count log lines: the loggers they read must be on, whatever an earlier test's
    logging set-up did to them (in the full suite, something before this module silenced them).
    """
    names = ("proactive.tasks", "proactive.engine.runner", "proactive.metrics", "celery.beat")
    loggers = [logging.getLogger(name) for name in names]
    states = [(logger.disabled, logger.level) for logger in loggers]
    for logger in loggers:
        logger.disabled = False
        logger.setLevel(logging.INFO)
    yield
    for logger, (disabled, level) in zip(loggers, states, strict=True):
        logger.disabled, logger.level = disabled, level


def test_the_default_retries_span_more_than_a_minute(settings):
    assert (settings.ENGINE_RETRY_BACKOFF_SECONDS, settings.ENGINE_MAX_RETRIES) == (5, 5)
    assert outage_retry_delays() == [5, 10, 20, 40, 60]
    assert sum(outage_retry_delays()) == 135 >= 60


def _breaching_tenant(tenant_id: str, *, rules: int, now):
    """`rules` threshold rules on one metric at 9 (thresholds 1…rules: those below 9 fire) and 3 schedules."""
    tenant = TenantFactory(id=tenant_id)
    MetricPointFactory(tenant=tenant, metric="load", timestamp=now - timedelta(minutes=1), value=9)
    for n in range(1, rules + 1):
        TriggerRuleFactory(tenant=tenant, metric="load", threshold=n)
    for _ in range(3):
        TriggerRuleFactory(tenant=tenant, type="schedule", schedule="* * * * *")
    TriggerRule.objects.filter(tenant=tenant).update(next_run_at=now - timedelta(minutes=1))
    return list(TriggerRule.objects.filter(tenant=tenant).order_by("id").values_list("id", flat=True))


def _is_chunk(task) -> bool:
    return getattr(task, "name", None) == evaluate_rule_chunk.name


def _as_if_there_was_no_outage(tenants: dict[str, int], tick_at):
    """Every rule evaluated once as of the tick, one alert per firing rule, each counted and notified once."""
    rules = TriggerRule.objects.filter(tenant_id__in=tenants)
    assert set(rules.values_list("last_evaluated_at", flat=True)) == {tick_at}
    assert set(rules.values_list("last_error", flat=True)) == {""}
    assert set(rules.values_list("health", flat=True)) == {"ok"}
    for tenant_id, expected in tenants.items():
        alerts = Alert.objects.filter(tenant_id=tenant_id)
        assert alerts.count() == expected
        assert alerts.values("rule_id").distinct().count() == expected
        assert sum(BillingUsage.objects.filter(tenant_id=tenant_id).values_list("alerts_triggered", flat=True)) == (
            expected
        )
    assert AlertEvent.objects.count() == Notification.objects.count() == Alert.objects.count()


@pytest.mark.slow
def test_a_database_outage_in_the_middle_of_a_chunk_loses_no_evaluation_and_logs_once_per_chunk(settings):
    """
    The database dies while the first chunk reads its metrics (all connections terminated, new ones
    refused) and stays down for 4 s — the "60 s" of production, shortened through the backoff
    settings (1 s × 2ⁿ, at most 2 s, 6 retries: 11 s). Both chunks retry through it on a real
    worker and end exactly as they would have without the outage.
    """
    settings.ENGINE_RETRY_BACKOFF_SECONDS, settings.ENGINE_RETRY_BACKOFF_MAX_SECONDS = 1, 2
    settings.ENGINE_MAX_RETRIES = 6
    outage_seconds = 4
    tick_at = timezone.now().replace(second=0, microsecond=0)
    chunks = {
        "acme": _breaching_tenant("acme", rules=20, now=tick_at),
        "globex": _breaching_tenant("globex", rules=12, now=tick_at),
    }
    connection.close()

    finished: list[dict] = []
    done = threading.Event()

    def kill_the_database_on_the_metric_read(execute, sql, params, many, context):
        if "proactive_metricpoint" in sql and outage.started_at is None:
            outage.start(seconds=outage_seconds)
        return execute(sql, params, many, context)

    def before(sender=None, **kwargs):
        if _is_chunk(sender) and kill_the_database_on_the_metric_read not in connection.execute_wrappers:
            connection.execute_wrappers.append(kill_the_database_on_the_metric_read)

    def after(sender=None, retval=None, **kwargs):
        if _is_chunk(sender) and isinstance(retval, dict) and retval.get("evaluated"):
            finished.append(retval)
            if len(finished) == len(chunks):
                done.set()

    task_prerun.connect(before, weak=False)
    task_postrun.connect(after, weak=False)
    app.control.purge()
    try:
        with (
            database_outage() as outage,
            start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30),
            lines_logged() as records,  # after the worker started: it sets up the root logger again
        ):
            for ids in chunks.values():
                evaluate_rule_chunk.delay(ids, tick_at.isoformat())
            assert done.wait(timeout=60), "the chunks never got through the outage"
            assert outage.ended_at is not None
    finally:
        task_prerun.disconnect(before)
        task_postrun.disconnect(after)

    assert sorted(report["evaluated"] for report in finished) == [15, 23]
    _as_if_there_was_no_outage({"acme": 8 + 3, "globex": 8 + 3}, tick_at)
    # One line per chunk and attempt, none per rule or per metric provider.
    loud = [record for record in records if record.levelno >= logging.WARNING]
    assert loud, "the outage went unnoticed"
    assert {record.name for record in loud} == {"proactive.tasks"}
    assert all("the database is unavailable" in record.getMessage() for record in loud)
    per_chunk = {size: [r for r in loud if r.args[0] == size] for size in (23, 15)}
    assert all(1 <= len(lines) <= settings.ENGINE_MAX_RETRIES for lines in per_chunk.values()), per_chunk
    assert len(loud) < 15


def test_a_chunk_whose_retries_are_spent_leaves_its_rules_due_for_the_next_tick(settings, caplog, celery_eager):
    caplog.set_level(logging.INFO)
    tick_at = timezone.now().replace(second=0, microsecond=0)
    ids = _breaching_tenant("acme", rules=10, now=tick_at)
    connection.close()

    with database_outage() as outage:
        outage.start()
        # The last attempt a chunk gets (its retries spent), while the database refuses connections.
        result = evaluate_rule_chunk.apply(args=(ids, tick_at.isoformat()), retries=settings.ENGINE_MAX_RETRIES)
    assert result.get() == {"evaluated": 0, "outage": True}
    loud = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].levelname == "ERROR"
    assert loud[0].getMessage().startswith("chunk of 13 rule(s) not evaluated: the database is unavailable (")
    assert "after 5 retries; its rules stay due for the next tick" in loud[0].getMessage()
    assert not TriggerRule.objects.filter(last_evaluated_at__isnull=False).exists()
    assert not Alert.objects.exists()

    # The database is back: the next tick takes every rule that was due, as of its own moment.
    from proactive.tasks import engine_tick

    assert engine_tick.apply().get() == 13
    assert TriggerRule.objects.filter(last_evaluated_at__isnull=True).count() == 0
    assert Alert.objects.count() == 8 + 3 == Alert.objects.values("rule_id").distinct().count()


def test_a_chunk_that_deadlocks_says_so_not_that_the_database_is_down_and_is_retried(settings, caplog, celery_eager):
    """
    PostgreSQL itself rolls the chunk's transaction back with a deadlock (SQLSTATE 40P01, raised
    by a trigger on the alerts it inserts): the driver calls that an OperationalError, as it does a
    lost server, but the line must say what happened. Its last retry is spent; the next tick, the
    conflict gone, evaluates every rule once.
    """
    caplog.set_level(logging.INFO)
    tick_at = timezone.now().replace(second=0, microsecond=0)
    ids = _breaching_tenant("acme", rules=10, now=tick_at)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION pretend_deadlock() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER pretend_deadlock BEFORE INSERT ON alerts_alert "
            "FOR EACH ROW EXECUTE FUNCTION pretend_deadlock()"
        )
    try:
        result = evaluate_rule_chunk.apply(args=(ids, tick_at.isoformat()), retries=settings.ENGINE_MAX_RETRIES - 1)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER pretend_deadlock ON alerts_alert; DROP FUNCTION pretend_deadlock()")

    assert result.get() == {"evaluated": 0, "conflict": True}  # the retry, run at once (eager), failed too
    loud = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(loud) == 2, loud  # one line per attempt, not one per rule
    assert loud[0].startswith("chunk of 13 rule(s) not evaluated: it conflicted with another transaction (")
    assert "(DeadlockDetected: deadlock detected" in loud[0] and "retry 5 of 5" in loud[0]
    assert loud[1].endswith("after 5 retries; its rules stay due for the next tick")
    assert not any("unavailable" in line for line in loud)
    assert not TriggerRule.objects.filter(last_evaluated_at__isnull=False).exists()
    assert not Alert.objects.exists()

    from proactive.tasks import engine_tick

    assert engine_tick.apply().get() == 13
    assert Alert.objects.count() == 8 + 3 == Alert.objects.values("rule_id").distinct().count()


def test_a_tick_while_the_database_is_down_says_so_in_one_line(caplog, celery_eager):
    caplog.set_level(logging.INFO)
    TriggerRuleFactory(tenant=TenantFactory(id="acme"))
    connection.close()
    from proactive.tasks import engine_tick

    with database_outage() as outage:
        outage.start()
        assert engine_tick.apply().get() == 0

    loud = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].getMessage().startswith("engine tick skipped: the database is unavailable")


@pytest.fixture
def broker(monkeypatch):
    """The app's broker reached through a TCP proxy to the real Redis, which the test can cut and restore."""
    real = app.conf.broker_url
    url = urlsplit(real)
    proxy = TcpProxy(upstream=(url.hostname or "127.0.0.1", url.port or 6379))
    proxy.restore()

    def use(broker_url):
        # Read and write URLs: CELERY_BROKER_URL in the environment would win over broker_url.
        app.conf.update(broker_read_url=broker_url, broker_write_url=broker_url)
        app._pool = None
        app.amqp._producer_pool = None

    use(real.replace(url.netloc, f"127.0.0.1:{proxy.port}", 1))
    app.control.purge()
    try:
        yield proxy
    finally:
        proxy.cut()
        use(None)


def _due_since_the_missed_tick(now):
    """Rules due minutes ago: 4 breaching thresholds, a per-minute schedule, one whose only occurrence was missed."""
    tenant = TenantFactory(id="acme")
    MetricPointFactory(tenant=tenant, metric="load", timestamp=now - timedelta(minutes=5), value=9)
    thresholds = [TriggerRuleFactory(tenant=tenant, metric="load", threshold=n) for n in (1, 2, 3, 4)]
    every_minute = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="* * * * *")
    missed = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    once = TriggerRuleFactory(tenant=tenant, type="schedule", schedule=f"{missed.minute} {missed.hour} * * *")
    TriggerRule.objects.filter(tenant=tenant).update(next_run_at=missed - timedelta(minutes=1))
    TriggerRule.objects.filter(pk=once.pk).update(next_run_at=missed)
    return thresholds, every_minute, once, missed


def _wait_until_evaluated(rule_ids, timeout=30):
    deadline = time.monotonic() + timeout
    while (
        time.monotonic() < deadline
        and TriggerRule.objects.filter(pk__in=rule_ids, last_evaluated_at__isnull=True).exists()
    ):
        time.sleep(0.2)
    connection.close()


@pytest.mark.slow
def test_beat_survives_a_broker_outage_and_the_next_tick_catches_up_on_the_missed_one(broker):
    from django.core.management import call_command
    from django_celery_beat.schedulers import DatabaseScheduler

    now = timezone.now()
    thresholds, every_minute, once, missed = _due_since_the_missed_tick(now)
    call_command("setup_periodic_tasks", verbosity=0)
    scheduler = DatabaseScheduler(app=app)
    entry = next(entry for entry in scheduler.schedule.values() if entry.task == "proactive.tasks.engine_tick")
    producer = scheduler.producer  # beat connected before Redis went away

    broker.cut()
    with lines_logged() as records:
        scheduler.apply_entry(entry, producer=producer)  # the minute's tick: it cannot be sent
    assert any(r.name == "celery.beat" and r.levelno == logging.ERROR for r in records)  # said, not raised
    assert not TriggerRule.objects.filter(last_evaluated_at__isnull=False).exists()

    broker.restore()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        scheduler.apply_entry(entry, producer=producer)  # the next minute's tick, through the same producer
        _wait_until_evaluated([rule.pk for rule in (*thresholds, every_minute, once)])

    rules = TriggerRule.objects.filter(tenant_id="acme")
    assert rules.filter(last_evaluated_at__isnull=True).count() == 0
    alerts = Alert.objects.filter(tenant_id="acme")
    # Thresholds above 9 would not fire: all four here do; each schedule fires once, not once per missed minute.
    assert sorted(alerts.values_list("rule_id", flat=True)) == sorted(
        [r.pk for r in thresholds] + [every_minute.pk, once.pk]
    )
    assert alerts.get(rule=once).payload["scheduledFor"] == missed.strftime("%Y-%m-%dT%H:%M:00Z")
    assert TriggerRule.objects.get(pk=once.pk).next_run_at == missed + timedelta(days=1)


@pytest.mark.slow
def test_a_tick_that_loses_the_broker_halfway_says_how_much_it_sent_and_the_rest_stays_due(
    broker, monkeypatch, settings
):
    from celery.signals import after_task_publish

    from proactive import tasks

    now = timezone.now()
    thresholds, every_minute, once, _ = _due_since_the_missed_tick(now)
    ids = sorted(rule.pk for rule in (*thresholds, every_minute, once))
    monkeypatch.setattr(tasks, "CHUNK_SIZE", 2)  # three chunks of two rules
    settings.ENGINE_CONCURRENCY = 1

    def cut_after_the_first_chunk(sender=None, **kwargs):
        if sender == evaluate_rule_chunk.name:
            broker.cut()

    after_task_publish.connect(cut_after_the_first_chunk, weak=False)
    try:
        with lines_logged() as records:
            sent = tasks.engine_tick.apply().get()  # in this process; its chunks go to the broker
    finally:
        after_task_publish.disconnect(cut_after_the_first_chunk)
    assert sent == 2
    loud = [record for record in records if record.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].getMessage().startswith("engine tick: the broker took 1 of 3 chunk(s) (")
    assert loud[0].getMessage().endswith("the other 4 rule(s) stay due for the next tick")

    broker.restore()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        _wait_until_evaluated(ids[:2])
        assert TriggerRule.objects.filter(pk__in=ids[2:], last_evaluated_at__isnull=True).count() == 4
        assert tasks.engine_tick.apply().get() >= 4  # the next tick: the four, and any whose minute came round
        _wait_until_evaluated(ids)

    assert TriggerRule.objects.filter(pk__in=ids, last_evaluated_at__isnull=True).count() == 0
    assert sorted(Alert.objects.values_list("rule_id", flat=True)) == ids  # one each
