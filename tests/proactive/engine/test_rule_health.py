"""A rule that cannot see data says so (`noData`), distinct from an evaluation that succeeded or failed."""

from datetime import UTC, datetime, timedelta

import pytest

from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from proactive.services import trigger_rule_update
from tests.factories import StaffUserFactory, TriggerRuleFactory, metric_points

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)


def tick():
    return evaluate_rules(rule_ids=tick_due_rule_ids(now=NOW), now=NOW)


def health(rule) -> str:
    return TriggerRule.objects.get(pk=rule.pk).health


def test_each_health_state_after_a_tick(tenant):
    make = lambda **fields: TriggerRuleFactory(tenant=tenant, now=NOW - timedelta(hours=1), **fields)  # noqa: E731
    seen = make(name="seen", metric="seen", threshold=100)
    empty = make(name="empty", metric="never.written", threshold=100)
    stale = make(name="stale", metric="stale", threshold=100, window_days=1)
    sparse = make(name="sparse", type="anomaly", metric="sparse", threshold=None)
    schedule = make(name="briefing", type="schedule", schedule="0 * * * *")
    metric_points(tenant, "seen", 12, 11, 10, end=NOW)
    metric_points(tenant, "stale", 12, 11, 10, end=NOW - timedelta(days=2))
    metric_points(tenant, "sparse", 13, 12, 11, 10, end=NOW)

    assert {health(rule) for rule in (seen, empty, stale, sparse, schedule)} == {"unknown"}
    tick()

    assert health(seen) == "ok"
    assert health(empty) == "noData"
    assert health(stale) == "noData"  # points exist, but none in the rule's window
    assert health(sparse) == "noData"  # fewer than the five an anomaly needs
    assert health(schedule) == "ok"


def test_a_failing_metric_provider_is_error_not_no_data(tenant, settings):
    rule = TriggerRuleFactory(tenant=tenant, metric="usage.tokensUsed", threshold=5, now=NOW - timedelta(hours=1))
    settings.METRIC_PROVIDERS = ["tests.proactive.providers.UnreachableUsageProvider"]

    tick()

    stored = TriggerRule.objects.get(pk=rule.pk)
    assert (stored.health, bool(stored.last_error)) == ("error", True)


def test_data_arriving_turns_no_data_into_ok_and_changing_the_metric_resets_it(tenant):
    rule = TriggerRuleFactory(tenant=tenant, metric="late", threshold=100, now=NOW - timedelta(hours=1))
    tick()
    assert health(rule) == "noData"

    metric_points(tenant, "late", 10, end=NOW)
    later = NOW + timedelta(minutes=1)
    evaluate_rules(rule_ids=tick_due_rule_ids(now=later), now=later)  # the new points wake it
    assert health(rule) == "ok"

    trigger_rule_update(rule=rule, metric="other")
    assert health(rule) == "unknown"
    trigger_rule_update(rule=TriggerRule.objects.get(pk=rule.pk), name="renamed")
    assert health(rule) == "unknown"


def test_the_api_and_the_admin_show_it(tenant, tenant_client, client):
    quiet = TriggerRuleFactory(
        tenant=tenant, name="Quiet metric", metric="nothing.here", threshold=1, now=NOW - timedelta(hours=1)
    )
    tick()
    client.force_login(StaffUserFactory())

    body = tenant_client.get(f"/triggers/{quiet.pk}").json()
    listing = client.get("/admin/proactive/triggerrule/?health__exact=noData").content.decode()
    filtered_out = client.get("/admin/proactive/triggerrule/?health__exact=ok").content.decode()

    assert body["health"] == "noData"
    assert "Quiet metric" in listing and "No data" in listing
    assert "Quiet metric" not in filtered_out


def test_a_schedule_saved_before_standard_cron_was_enforced_still_runs_and_says_what_to_fix(tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 * * * *", now=NOW - timedelta(hours=1))
    TriggerRule.objects.filter(pk=rule.pk).update(schedule="*/100 * * * *")  # as croniter used to accept

    report = tick()

    stored = TriggerRule.objects.get(pk=rule.pk)
    assert report.alerts_created == 1  # it fires as it did
    assert stored.health == "error"
    assert stored.last_error.startswith("'*/100 * * * *' is not a valid cron expression: minute step /100")
    assert "still runs as before" in stored.last_error
