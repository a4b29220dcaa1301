"""The tick through a real Celery worker and the Redis broker, as beat would run it."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from billing.models import BillingUsage
from config.celery import app
from proactive.models import TriggerRule
from proactive.tasks import engine_tick
from tests.factories import MetricPointFactory, TenantFactory, TriggerRuleFactory


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_engine_tick_runs_through_a_worker_on_redis():
    assert app.conf.broker_url.startswith("redis://")
    assert not app.conf.task_always_eager
    tenant = TenantFactory(id="acme")
    MetricPointFactory(tenant=tenant, metric="load", timestamp=timezone.now() - timedelta(minutes=1), value=9)
    rules = [TriggerRuleFactory(tenant=tenant, metric="load", threshold=n) for n in (1, 5, 50)]
    TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 0 1 1 *")  # not due
    app.control.purge()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        engine_tick.delay()
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and TriggerRule.objects.filter(last_evaluated_at__isnull=True, type="metric_threshold").exists()
        ):
            time.sleep(0.2)
        connection.close()

    assert set(Alert.objects.values_list("rule_id", flat=True)) == {rules[0].pk, rules[1].pk}
    assert sum(BillingUsage.objects.values_list("alerts_triggered", flat=True)) == 2
    assert TriggerRule.objects.filter(type="metric_threshold", last_evaluated_at__isnull=False).count() == 3
    assert TriggerRule.objects.get(type="schedule").last_evaluated_at is None
