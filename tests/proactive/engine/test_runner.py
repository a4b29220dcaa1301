from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts import channels
from alerts.models import Alert, AlertEvent, Notification
from alerts.services import alert_resolve
from billing.models import BillingUsage, UsageSnapshot
from billing.services.usage import UsageDelta, usage_apply
from proactive.engine import runner
from proactive.engine.runner import due_rule_ids, evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from proactive.services import trigger_rule_update
from tests.concurrency import rows_locked_by_another_transaction
from tests.factories import TenantFactory, TriggerRuleFactory, metric_points, raise_alert

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
CREATED = NOW - timedelta(hours=1)


def rule(tenant, **fields):
    return TriggerRuleFactory(tenant=tenant, now=CREATED, **fields)


def tick(now=NOW, **kwargs):
    return evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now, **kwargs)


def alerts_triggered(tenant_id="acme"):
    return [
        list(model.objects.filter(tenant_id=tenant_id).values_list("day", "alerts_triggered"))
        for model in (BillingUsage, UsageSnapshot)
    ]


def test_a_threshold_rule_fires_once_with_evidence_notification_and_usage(tenant):
    spike = rule(tenant, name="MQL spike", metric="analytics.mql.delta", threshold=25, severity="critical")
    metric_points(tenant, "analytics.mql.delta", 10, 31, end=NOW)

    report = tick()

    assert (report.evaluated, report.fired, report.alerts_created, report.errors) == (1, 1, 1, 0)
    alert = Alert.objects.get()
    assert (alert.rule_id, alert.severity, alert.status, alert.triggered_at) == (spike.pk, "critical", "pending", NOW)
    assert alert.payload == {
        "metric": "analytics.mql.delta",
        "value": 31.0,
        "threshold": 25.0,
        "observedAt": "2026-11-26T13:30:00Z",
        "reason": "analytics.mql.delta is 31, above 25.",
    }
    assert Notification.objects.get().alert_id == alert.pk
    assert alerts_triggered() == [[(NOW.date(), 1)], [(NOW.date(), 1)]]
    spike.refresh_from_db()
    # Nothing it reads changes before its latest point leaves the 30-day window: it sleeps as long
    # as it may (ENGINE_MAX_STALENESS_MINUTES), unless a new point wakes it.
    assert (spike.last_evaluated_at, spike.last_fired_at, spike.next_run_at) == (NOW, NOW, NOW + timedelta(minutes=60))
    assert spike.last_error == ""


def test_the_next_tick_does_not_duplicate_an_open_alert_or_count_it_again(tenant):
    rule(tenant, threshold=25)
    metric_points(tenant, "analytics.mql.delta", 31, end=NOW)
    tick()

    quiet = tick(now=NOW + timedelta(minutes=1))  # nothing changed: the rule sleeps
    metric_points(tenant, "analytics.mql.delta", 32, end=NOW + timedelta(minutes=1))
    later = tick(now=NOW + timedelta(minutes=2))  # a new point woke it

    assert quiet.evaluated == 0
    assert (later.evaluated, later.fired, later.alerts_created) == (1, 1, 0)
    assert Alert.objects.count() == 1
    assert alerts_triggered() == [[(NOW.date(), 1)], [(NOW.date(), 1)]]


def test_after_resolving_the_rule_can_fire_again(tenant, tenant_client):
    rule(tenant, threshold=25)
    metric_points(tenant, "analytics.mql.delta", 31, end=NOW)
    tick()
    tenant_client.post(f"/alerts/{Alert.objects.get().pk}/resolve")

    tick(now=NOW + timedelta(minutes=1))

    assert Alert.objects.filter(status="pending").count() == 1 and Alert.objects.count() == 2
    assert alerts_triggered()[0] == [(NOW.date(), 2)]


def test_disabled_and_not_due_rules_are_not_evaluated(tenant):
    disabled = rule(tenant, threshold=1)
    trigger_rule_update(rule=disabled, enabled=False)
    rule(tenant, type="schedule", schedule="0 9 * * *")  # next run tomorrow 09:00
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)

    assert due_rule_ids(now=NOW) == []
    assert tick().evaluated == 0
    assert not Alert.objects.exists()


def test_a_schedule_rule_fires_for_its_occurrence_and_moves_on(tenant):
    briefing = rule(tenant, type="schedule", schedule="0 13 * * *", severity="info")
    assert briefing.next_run_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

    tick()

    alert = Alert.objects.get()
    assert alert.payload["scheduledFor"] == "2026-11-26T13:00:00Z"
    assert alert.payload["schedule"] == "0 13 * * *"
    briefing.refresh_from_db()
    assert briefing.next_run_at == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


def test_missed_ticks_fire_once_not_a_burst(tenant):
    hourly = rule(tenant, type="schedule", schedule="0 * * * *")  # due 13:00
    much_later = NOW + timedelta(hours=5)  # 13:00 .. 18:00 missed

    report = tick(now=much_later)

    assert report.alerts_created == 1
    assert Alert.objects.get().payload["scheduledFor"] == "2026-11-26T18:00:00Z"
    hourly.refresh_from_db()
    assert hourly.next_run_at == datetime(2026, 11, 26, 19, 0, tzinfo=UTC)


def test_a_rule_edited_between_ticks_is_evaluated_as_edited(tenant):
    edited = rule(tenant, threshold=100)
    metric_points(tenant, "analytics.mql.delta", 50, end=NOW)
    assert tick().fired == 0

    trigger_rule_update(rule=edited, threshold=40, now=NOW + timedelta(seconds=30))

    assert tick(now=NOW + timedelta(minutes=1)).alerts_created == 1


def test_a_rule_disabled_after_the_tick_selected_it_is_skipped(tenant):
    chosen = rule(tenant, threshold=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)
    selected = due_rule_ids(now=NOW)
    trigger_rule_update(rule=chosen, enabled=False)

    report = evaluate_rules(rule_ids=selected, now=NOW)

    assert (report.evaluated, report.skipped) == (0, 1)
    assert not Alert.objects.exists()


def test_anomaly_rule_on_a_builtin_usage_metric_compares_whole_days(tenant):
    rule(tenant, type="anomaly", metric="usage.tokensUsed", threshold=None, window_days=14)
    for days_ago, tokens in [(6, 100), (5, 110), (4, 90), (3, 105), (2, 95), (1, 900), (0, 3)]:
        usage_apply(
            deltas=[UsageDelta(tenant_id="acme", day=(NOW - timedelta(days=days_ago)).date(), tokens_used=tokens)]
        )

    tick()

    payload = Alert.objects.get().payload
    # Today's running total (3 tokens so far) is not a day yet: yesterday's 900 is the latest point.
    assert (payload["metric"], payload["value"], payload["points"], payload["windowDays"]) == (
        "usage.tokensUsed",
        900.0,
        6,
        14,
    )
    assert payload["observedAt"] == (NOW - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    assert payload["zScore"] > 2.5


def test_one_rules_error_is_recorded_on_it_and_the_others_still_run(tenant, settings):
    settings.METRIC_PROVIDERS = ["tests.proactive.providers.UnreachableUsageProvider"]
    broken = rule(tenant, type="anomaly", metric="usage.tokensUsed", threshold=None)
    healthy = rule(tenant, threshold=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)

    report = tick()

    assert (report.evaluated, report.errors, report.alerts_created) == (2, 1, 1)
    broken.refresh_from_db()
    assert broken.last_error == "Reading 'usage.tokensUsed' failed: warehouse unreachable"
    assert broken.last_error_at == NOW and broken.next_run_at == NOW + timedelta(minutes=1)
    assert Alert.objects.get().rule_id == healthy.pk

    settings.METRIC_PROVIDERS = ["billing.metrics.UsageSnapshotMetricProvider"]  # the warehouse is back
    tick(now=NOW + timedelta(minutes=1))
    broken.refresh_from_db()
    assert (broken.last_error, broken.last_error_at) == ("", None)


def test_auto_resolve_when_the_condition_clears(tenant):
    watching = rule(tenant, threshold=10, auto_resolve=True)
    sticky = rule(tenant, metric="other", threshold=10)
    metric_points(tenant, "analytics.mql.delta", 20, end=NOW)
    metric_points(tenant, "other", 20, end=NOW)
    tick()

    metric_points(tenant, "analytics.mql.delta", 5, end=NOW + timedelta(minutes=1))
    metric_points(tenant, "other", 5, end=NOW + timedelta(minutes=1))
    report = tick(now=NOW + timedelta(minutes=1))

    assert report.resolved == 1
    resolved = Alert.objects.get(rule=watching)
    assert resolved.status == "resolved"
    last = AlertEvent.objects.filter(alert=resolved).last()
    assert (last.from_status, last.to_status, last.actor) == ("pending", "resolved", "engine")
    assert last.reason == "Condition cleared: analytics.mql.delta is 5, not above 10."
    assert Notification.objects.get(alert=resolved).alert_status == "resolved"
    assert Alert.objects.get(rule=sticky).status == "pending"


@pytest.mark.parametrize(("no_data", "status"), [("ok", "resolved"), ("keep", "pending")])
def test_no_data_clears_an_alert_only_when_no_data_is_ok(tenant, no_data, status):
    rule(tenant, threshold=10, auto_resolve=True, window_days=1, no_data=no_data)
    metric_points(tenant, "analytics.mql.delta", 20, end=NOW)
    tick()

    tick(now=NOW + timedelta(days=2))  # the only point has left the window

    alert = Alert.objects.get()
    assert alert.status == status
    if status == "resolved":
        assert (
            alert.history.last().reason == "Condition cleared: No datapoints for 'analytics.mql.delta' in the window."
        )


def test_queries_do_not_grow_with_the_number_of_rules(tenant):
    def queries_for(count):
        tenant_ = TenantFactory()
        for n in range(count):
            TriggerRuleFactory(tenant=tenant_, now=CREATED, metric=f"m{n % 3}", threshold=1, type="metric_threshold")
            TriggerRuleFactory(tenant=tenant_, now=CREATED, metric=f"m{n % 3}", type="anomaly", threshold=None)
            TriggerRuleFactory(tenant=tenant_, now=CREATED, type="schedule", schedule="*/5 * * * *")
        for metric in ("m0", "m1", "m2"):
            metric_points(tenant_, metric, 1, 2, 1, 2, 9, end=NOW)
        ids = list(TriggerRule.objects.filter(tenant=tenant_).values_list("id", flat=True))
        with CaptureQueriesContext(connection) as captured:
            report = evaluate_rules(rule_ids=ids, now=NOW)
        assert report.evaluated == 3 * count and report.alerts_created == 3 * count
        return len(captured.captured_queries)

    small, large = queries_for(5), queries_for(60)

    assert small == large
    assert large <= 20


def test_evaluate_triggers_command(tenant, other_tenant):
    rule(tenant, threshold=1)
    rule(other_tenant, threshold=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)
    metric_points(other_tenant, "analytics.mql.delta", 5, end=NOW)

    dry = StringIO()
    call_command("evaluate_triggers", "--dry-run", "--tenant", "acme", stdout=dry)
    assert not Alert.objects.exists()
    assert "1 rule(s) to evaluate in 1 chunk(s) (dry run: nothing is written)." in dry.getvalue()
    assert "fires: analytics.mql.delta is 5, above 1." in dry.getvalue()

    out = StringIO()
    call_command("evaluate_triggers", "--chunk-size", "1", stdout=out)
    assert "chunk 2/2: 1 evaluated, 1 fired, 1 alert(s) created" in out.getvalue()
    assert "Done: 2 evaluated, 2 fired, 2 alert(s) created, 0 resolved, 0 error(s), 0 skipped." in out.getvalue()
    assert Alert.objects.count() == 2

    with pytest.raises(CommandError, match="No tenant with id 'nope'"):
        call_command("evaluate_triggers", "--tenant", "nope", stdout=StringIO())


def test_a_chunk_that_crashes_leaves_its_rules_due_for_the_next_tick(tenant, monkeypatch):
    from proactive.engine import runner

    rule(tenant, threshold=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(runner, "record_alert_impacts", crash)
    with pytest.raises(RuntimeError):
        tick()
    assert not Alert.objects.exists()  # the alert insert rolled back with the chunk
    assert due_rule_ids(now=NOW) != []

    monkeypatch.undo()
    assert tick().alerts_created == 1
    assert alerts_triggered()[0] == [(NOW.date(), 1)]


@pytest.mark.django_db(transaction=True)
def test_rules_another_worker_holds_are_skipped_not_waited_for():
    tenant = TenantFactory(id="acme")
    held = rule(tenant, threshold=1)
    free = rule(tenant, threshold=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)

    with rows_locked_by_another_transaction(TriggerRule.objects.filter(pk=held.pk)):
        report = tick()

    assert (report.evaluated, report.skipped) == (1, 1)
    assert [r.rule.pk for r in report.results] == [free.pk]
    # Once released the held rule runs; the wake for the new point was kept for this tick (a chunk
    # held one of its rules), so the free rule is looked at once more.
    assert held.pk in [r.rule.pk for r in tick(now=NOW + timedelta(seconds=1)).results]


def test_a_steady_metric_rule_sleeps_until_its_inputs_can_change_and_a_counting_one_does_not(tenant, settings):
    settings.ENGINE_MAX_STALENESS_MINUTES = 60
    steady = rule(tenant, threshold=1)
    counting = rule(tenant, threshold=1, for_evaluations=3)
    short = rule(tenant, metric="short", threshold=1, window_days=1)
    metric_points(tenant, "analytics.mql.delta", 5, end=NOW)
    metric_points(tenant, "short", 5, end=NOW - timedelta(days=1) + timedelta(minutes=10))
    evaluated_at = NOW + timedelta(seconds=1, milliseconds=400)  # a worker a little after the minute

    evaluate_rules(rule_ids=tick_due_rule_ids(now=evaluated_at), now=evaluated_at)

    next_runs = dict(TriggerRule.objects.values_list("pk", "next_run_at"))
    assert next_runs[steady.pk] == NOW + timedelta(minutes=60)  # at most the staleness limit
    assert next_runs[counting.pk] == NOW + timedelta(minutes=1)  # 1 of 3: each minute counts
    # Its only point leaves the one-day window at 13:40: looked at again then, not an hour later.
    assert next_runs[short.pk] == NOW + timedelta(minutes=10)
    assert tick_due_rule_ids(now=NOW + timedelta(minutes=1)) == [counting.pk]


def test_one_alert_that_cannot_be_raised_does_not_stop_the_others(tenant, other_tenant, monkeypatch):
    metric_points(tenant, "load", 9, end=NOW)
    metric_points(other_tenant, "load", 9, end=NOW)
    broken = rule(tenant, name="Broken", metric="load", threshold=1)
    healthy = rule(other_tenant, name="Healthy", metric="load", threshold=1)
    original = channels.notification_title

    def title(alert):
        if alert.rule_name == "Broken":
            raise RuntimeError("template exploded")
        return original(alert)

    monkeypatch.setattr(channels, "notification_title", title)

    report = tick()

    assert (report.evaluated, report.alerts_created, report.errors) == (2, 1, 1)
    assert list(Alert.objects.values_list("rule_id", flat=True)) == [healthy.pk]
    broken.refresh_from_db()
    assert broken.last_error == "Raising the alert failed: RuntimeError: template exploded"
    assert sum(BillingUsage.objects.values_list("alerts_triggered", flat=True)) == 1


def test_raising_a_chunks_alerts_takes_no_savepoint_unless_the_batch_fails(tenant, other_tenant):
    metric_points(tenant, "load", 9, end=NOW)
    metric_points(other_tenant, "load", 9, end=NOW)
    rule(tenant, name="A", metric="load", threshold=1)
    rule(other_tenant, name="B", metric="load", threshold=1)

    due = tick_due_rule_ids(now=NOW)
    with CaptureQueriesContext(connection) as queries:
        report = evaluate_rules(rule_ids=due, now=NOW)

    assert report.alerts_created == 2
    savepoints = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    # The test's own transaction makes the chunk's atomic block a savepoint; the batch adds none.
    assert len(savepoints) == 2, savepoints


def test_a_database_failure_while_raising_fails_the_chunk_instead_of_one_retry_per_rule(tenant, monkeypatch, caplog):
    from django.db import OperationalError

    metric_points(tenant, "load", 9, end=NOW)
    rules = [rule(tenant, name=f"R{n}", metric="load", threshold=1) for n in range(3)]

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(runner, "alerts_raise", database_gone)

    with pytest.raises(OperationalError):
        tick()

    assert not Alert.objects.exists()
    # Rolled back: every rule is still due, for the task's retry or the next tick.
    assert sorted(due_rule_ids(now=NOW)) == sorted(r.pk for r in rules)
    assert not [
        record for record in caplog.records if "rule" in record.getMessage() and "failed" in record.getMessage()
    ]


def test_an_alert_resolved_after_the_claim_does_not_swallow_the_firing(tenant, monkeypatch):
    schedule = rule(tenant, type="schedule", schedule="* * * * *")
    old = raise_alert(schedule)
    original = runner.evaluate_conditions

    def resolve_meanwhile(*, rules, now):
        results = original(rules=rules, now=now)
        alert_resolve(alert=old, actor="user:ann")  # between the claim and the raise
        return results

    monkeypatch.setattr(runner, "evaluate_conditions", resolve_meanwhile)
    report = tick()

    assert report.alerts_created == 1
    assert Alert.objects.filter(rule=schedule).exclude(status="resolved").count() == 1


def test_a_tick_is_cut_into_chunks_of_equal_sizes_about_the_chunk_size():
    from proactive.engine.runner import chunked

    ids = list(range(2666))

    chunks = list(chunked(ids, 1000))

    assert [len(chunk) for chunk in chunks] == [888, 889, 889]
    assert [rule_id for chunk in chunks for rule_id in chunk] == ids
    assert [len(chunk) for chunk in chunked(ids[:2000], 1000)] == [1000, 1000]
    assert [len(chunk) for chunk in chunked(ids[:1400], 1000)] == [1400]  # at most 1½ times the size
    assert [len(chunk) for chunk in chunked(ids[:1600], 1000)] == [800, 800]
    assert list(chunked([], 1000)) == []


def test_a_tick_is_cut_into_a_multiple_of_the_workers_slots():
    from proactive.engine.runner import chunked

    ids = list(range(3001))

    chunks = list(chunked(ids[:2666], 1000, slots=2))

    assert [len(chunk) for chunk in chunks] == [1333, 1333]  # one each, not two and one
    assert [rule_id for chunk in chunks for rule_id in chunk] == ids[:2666]
    assert [len(chunk) for chunk in chunked(ids[:2000], 1000, slots=2)] == [1000, 1000]
    assert [len(chunk) for chunk in chunked(ids[:2999], 1000, slots=2)] == [1499, 1500]  # at most 1½ times
    assert [len(chunk) for chunk in chunked(ids[:3001], 1000, slots=2)] == [750, 750, 750, 751]  # at least ¾
    assert [len(chunk) for chunk in chunked(ids[:500], 1000, slots=2)] == [250, 250]  # a small tick: one per slot
    assert [len(chunk) for chunk in chunked(ids[:3], 1000, slots=4)] == [1, 1, 1]  # never an empty chunk
    assert [len(chunk) for chunk in chunked(ids[:4], 1000, slots=0)] == [4]  # no slots said: one
    assert list(chunked([], 1000, slots=2)) == []
