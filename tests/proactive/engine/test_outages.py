"""
Outages injected for real: PostgreSQL terminating the engine's connections and refusing new ones
in the middle of a chunk, and the Redis broker going away under beat and the tick.
"""

import logging
import threading
from datetime import timedelta

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
from tests.faults import database_outage, lines_logged

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_a_tick_while_the_database_is_down_says_so_in_one_line(caplog, celery_eager):
    TriggerRuleFactory(tenant=TenantFactory(id="acme"))
    connection.close()
    from proactive.tasks import engine_tick

    with database_outage() as outage:
        outage.start()
        assert engine_tick.apply().get() == 0

    loud = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].getMessage().startswith("engine tick skipped: the database is unavailable")
