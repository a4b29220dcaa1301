"""Two engine processes over the same due rules, on PostgreSQL: every rule is evaluated once."""

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from billing.models import BillingUsage, UsageSnapshot
from proactive.engine import runner
from proactive.models import TriggerRule
from proactive.services import trigger_rule_delete
from tests.concurrency import Background, wait_until_a_transaction_waits_for_a_lock
from tests.factories import MetricPointFactory, TenantFactory, TriggerRuleFactory, metric_points, raise_alert

PROJECT = Path(__file__).resolve().parents[3]
RULES = 1000
# Both processes start evaluating at the same moment, after Django has loaded.
ENGINE = """
import sys, time, django
django.setup()
from django.core.management import call_command
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
call_command("evaluate_triggers", "--chunk-size", "10")
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_engine_processes_evaluate_each_rule_once():
    assert connection.vendor == "postgresql"
    tenants = [TenantFactory(id=f"race-{n}") for n in range(4)]
    now = timezone.now()
    for tenant in tenants:
        MetricPointFactory(tenant=tenant, metric="load", timestamp=now - timedelta(minutes=1), value=99)
    TriggerRule.objects.bulk_create(
        [
            TriggerRule(
                tenant=tenants[n % 4],
                name=f"r{n}",
                type="metric_threshold",
                metric="load",
                threshold=1,
                window_days=30,
                next_run_at=now - timedelta(minutes=1),
            )
            for n in range(RULES)
        ]
    )

    settings = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}",
    }
    start_at = str(time.time() + 4)
    command = [sys.executable, "-c", ENGINE, start_at]
    engines = [
        subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [engine.communicate(timeout=120) for engine in engines]

    for engine, (_out, err) in zip(engines, outputs, strict=True):
        assert engine.returncode == 0, err
    done = [re.search(r"Done: (\d+) evaluated, (\d+) fired, (\d+) alert\(s\) created", out) for out, _ in outputs]
    evaluated = [int(match.group(1)) for match in done]
    created = [int(match.group(3)) for match in done]
    assert sum(evaluated) == RULES, outputs
    assert min(evaluated) > 0, f"the engines did not overlap: {evaluated}"
    print("evaluated per engine:", evaluated)
    assert sum(created) == RULES
    assert Alert.objects.count() == RULES
    assert Alert.objects.values("rule_id").distinct().count() == RULES
    for model in (BillingUsage, UsageSnapshot):
        assert sum(model.objects.values_list("alerts_triggered", flat=True)) == RULES
    assert TriggerRule.objects.filter(last_fired_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_deleting_a_rule_while_the_engine_resolves_its_alert_does_not_deadlock(monkeypatch):
    tenant = TenantFactory(id="acme")
    rule = TriggerRuleFactory(tenant=tenant, metric="load", threshold=10, auto_resolve=True)
    raise_alert(rule)
    metric_points(tenant, "load", 1, end=timezone.now() - timedelta(hours=1))
    TriggerRule.objects.filter(pk=rule.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    original, deleting = runner.evaluate_conditions, {}

    def evaluate_while_deleting(*, rules, now):
        deleting["delete"] = Background(lambda: trigger_rule_delete(rule=rule))
        wait_until_a_transaction_waits_for_a_lock()
        return original(rules=rules, now=now)

    monkeypatch.setattr(runner, "evaluate_conditions", evaluate_while_deleting)
    report = runner.evaluate_rules(rule_ids=[rule.pk])
    deleting["delete"].join()

    assert report.resolved == 1
    assert not TriggerRule.objects.filter(pk=rule.pk).exists()
    assert Alert.objects.get().rule_id is None and Alert.objects.get().status == "resolved"
