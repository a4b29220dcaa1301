"""
Change-driven evaluation decides exactly what evaluating every rule every minute decides.

Two tenants get the same rules and, minute by minute, the same randomized history: points now, in
the past and stamped ahead, quiet stretches, points leaving the window, people resolving alerts.
One tenant's rules are all evaluated every minute; the other's only when the tick finds them due
(woken by a point, a resolve, or their window moving; schedules while their alert is open sleep
until a resolve wakes them). Every alert and every step of its history must match.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import Alert, AlertEvent, AlertStatus
from alerts.services import alert_resolve
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from proactive.services import metric_points_write, trigger_rule_create
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RULES = {
    "last above": {"type": "metric_threshold", "metric": "busy", "threshold": 70, "window_days": 1},
    "last below, resolving": {
        "type": "metric_threshold",
        "metric": "busy",
        "comparison": "below",
        "threshold": 20,
        "window_days": 1,
        "auto_resolve": True,
    },
    "outside, pending and hysteresis": {
        "type": "metric_threshold",
        "metric": "busy",
        "comparison": "outside",
        "threshold": 15,
        "threshold_high": 85,
        "window_days": 1,
        "for_evaluations": 3,
        "clear_evaluations": 2,
        "auto_resolve": True,
    },
    "sparse, no data alerts": {
        "type": "metric_threshold",
        "metric": "sparse",
        "threshold": 50,
        "window_days": 1,
        "no_data": "alert",
        "auto_resolve": True,
    },
    "sparse, no data keeps": {
        "type": "metric_threshold",
        "metric": "sparse",
        "threshold": 50,
        "window_days": 1,
        "no_data": "keep",
    },
    "average of 15 minutes": {
        "type": "metric_threshold",
        "metric": "busy",
        "aggregate": "avg",
        "aggregate_minutes": 15,
        "threshold": 55,
        "auto_resolve": True,
    },
    "z-score": {"type": "anomaly", "metric": "busy", "threshold": 1.8, "window_days": 1, "auto_resolve": True},
    "robust, up": {
        "type": "anomaly",
        "metric": "busy",
        "method": "robust",
        "direction": "up",
        "threshold": 3,
        "window_days": 1,
    },
    # Schedules sleep while their alert is open; a resolve wakes them for their next occurrence.
    "every minute": {"type": "schedule", "schedule": "* * * * *"},
    "every 7 minutes": {"type": "schedule", "schedule": "*/7 * * * *"},
    "hourly, in Kolkata": {"type": "schedule", "schedule": "0 * * * *", "timezone": "Asia/Kolkata"},
}


def history(seed: int, minutes: int) -> tuple[list, dict]:
    """What happens: per minute, the points written (metric, [(timestamp, value)]) and a resolve or not."""
    rng = random.Random(seed)

    def value() -> float:
        return rng.choice([rng.uniform(30, 60)] * 8 + [rng.uniform(0, 15), rng.uniform(88, 120)])

    # A day of history before the start, so points leave the one-day windows during the run.
    before = {
        "busy": sorted({START - timedelta(minutes=rng.randrange(1, 1440)) for _ in range(40)}),
        "sparse": sorted({START - timedelta(minutes=rng.randrange(1150, 1430)) for _ in range(3)}),
    }
    initial = {metric: [(at, value()) for at in moments] for metric, moments in before.items()}
    steps = []
    for minute in range(minutes):
        now = START + minute * MINUTE
        writes = []
        if rng.random() < 0.12:
            ahead = timedelta(minutes=rng.choice([0, 0, 0, 3, 17])) + timedelta(seconds=rng.randrange(60))
            writes.append(("busy", [(now + ahead, value())]))
        if rng.random() < 0.03:  # a late point, backfilled into the window
            writes.append(("busy", [(now - timedelta(minutes=rng.randrange(5, 600)), value())]))
        if rng.random() < 0.01:
            writes.append(("sparse", [(now, rng.uniform(0, 100))]))
        steps.append((now, writes, rng.random() < 0.04))
    return steps, initial


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_change_driven_evaluation_raises_and_resolves_exactly_what_every_minute_evaluation_does(seed, settings):
    settings.ENGINE_MAX_STALENESS_MINUTES = 60
    minutes = 300
    every_minute, change_driven = TenantFactory(id="every"), TenantFactory(id="changes")
    tenants = (every_minute, change_driven)
    for tenant in tenants:
        for name, fields in RULES.items():
            trigger_rule_create(tenant=tenant, name=name, now=START - MINUTE, **fields)
    steps, initial = history(seed, minutes)
    for tenant in tenants:
        for metric, points in initial.items():
            metric_points_write(tenant=tenant, metric=metric, points=points, now=START - MINUTE)
    all_rules = list(TriggerRule.objects.filter(tenant=every_minute).values_list("pk", flat=True))
    rng = random.Random(seed)
    evaluated = {tenant.pk: 0 for tenant in tenants}

    for now, writes, someone_resolves in steps:
        for tenant in tenants:
            for metric, points in writes:
                metric_points_write(tenant=tenant, metric=metric, points=points, now=now - timedelta(seconds=20))
        due = [pk for pk in tick_due_rule_ids(now=now) if pk not in all_rules]
        every = evaluate_rules(rule_ids=all_rules, now=now, only_due=False, may_sleep=False)
        evaluated[every_minute.pk] += every.evaluated
        evaluated[change_driven.pk] += evaluate_rules(rule_ids=due, now=now).evaluated
        if someone_resolves:
            open_names = sorted(
                Alert.objects.filter(tenant=every_minute)
                .exclude(status=AlertStatus.RESOLVED)
                .values_list("rule_name", flat=True)
            )
            if open_names:
                name = rng.choice(open_names)
                for tenant in tenants:
                    alert = Alert.objects.exclude(status=AlertStatus.RESOLVED).get(tenant=tenant, rule_name=name)
                    alert_resolve(alert=alert, actor="user:ann", now=now + timedelta(seconds=30))

    def story(tenant):
        alerts = Alert.objects.filter(tenant=tenant).order_by("triggered_at", "rule_name")
        return [
            (
                alert.rule_name,
                alert.triggered_at,
                alert.status,
                alert.resolved_at,
                alert.payload,
                list(
                    AlertEvent.objects.filter(alert=alert)
                    .order_by("at", "id")
                    .values_list("from_status", "to_status", "at", "actor", "reason")
                ),
            )
            for alert in alerts
        ]

    expected, actual = story(every_minute), story(change_driven)
    assert actual == expected
    assert len(expected) >= 10, "the history should make the rules fire and resolve"
    assert len({name for name, *_ in expected}) >= 6  # most kinds of rule took part
    # A person resolved a schedule's alert and the schedule raised again at its next occurrence.
    raised_again = {name for name, *_ in expected if [n for n, *_ in expected].count(name) > 1}
    assert raised_again & {"every minute", "every 7 minutes", "hourly, in Kolkata"}, raised_again
    # The point: far fewer evaluations for the same decisions.
    assert evaluated[change_driven.pk] < evaluated[every_minute.pk] * 0.5, evaluated


class TestWhatWakesASleepingRule:
    def sleeping_rule(self, tenant, now):
        rule = trigger_rule_create(
            tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=now
        )
        metric_points_write(tenant=tenant, metric="m", points=[(now - MINUTE, 1.0)], now=now - MINUTE)
        evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now)
        assert tick_due_rule_ids(now=now + MINUTE) == []  # asleep
        return rule

    def test_a_point_through_the_api(self, tenant, tenant_client):
        from django.utils import timezone

        now = timezone.now().replace(second=0, microsecond=0)
        rule = self.sleeping_rule(tenant, now - 2 * MINUTE)

        response = tenant_client.post(
            "/metrics/m/points", {"points": [{"timestamp": now.isoformat(), "value": 50}]}, format="json"
        )

        assert response.status_code in (200, 201), response.content
        later = timezone.now() + MINUTE
        assert tick_due_rule_ids(now=later) == [rule.pk]
        evaluate_rules(rule_ids=[rule.pk], now=later)
        assert Alert.objects.get(rule=rule).payload["value"] == 50

    def test_a_point_added_or_deleted_in_the_admin(self, tenant, staff):
        from django.utils import timezone

        from proactive.models import MetricPoint

        now = timezone.now().replace(second=0, microsecond=0)
        rule = self.sleeping_rule(tenant, now - 2 * MINUTE)

        staff.post(
            "/admin/proactive/metricpoint/add/",
            {
                "tenant": tenant.pk,
                "metric": "m",
                "timestamp_0": (now - MINUTE).strftime("%Y-%m-%d"),
                "timestamp_1": (now - MINUTE).strftime("%H:%M:%S"),
                "value": "50",
            },
        )
        assert MetricPoint.objects.filter(value=50).exists()
        assert tick_due_rule_ids(now=timezone.now() + MINUTE) == [rule.pk]

        evaluate_rules(rule_ids=[rule.pk], now=timezone.now() + MINUTE)
        point = MetricPoint.objects.get(value=50)
        staff.post(f"/admin/proactive/metricpoint/{point.pk}/delete/", {"post": "yes"})
        assert tick_due_rule_ids(now=timezone.now() + 2 * MINUTE) == [rule.pk]

    def test_a_person_resolving_its_alert(self, tenant):
        from django.utils import timezone

        now = timezone.now().replace(second=0, microsecond=0) - 5 * MINUTE
        rule = trigger_rule_create(
            tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=now
        )
        metric_points_write(tenant=tenant, metric="m", points=[(now - MINUTE, 50.0)], now=now - MINUTE)
        evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now)
        assert tick_due_rule_ids(now=now + MINUTE) == []  # firing, its alert open: asleep

        alert_resolve(alert=Alert.objects.get(rule=rule), actor="user:ann", now=now + MINUTE / 2)

        assert tick_due_rule_ids(now=now + MINUTE) == [rule.pk]
        evaluate_rules(rule_ids=[rule.pk], now=now + MINUTE)
        assert Alert.objects.filter(rule=rule).count() == 2  # still breaching: a new alert, as every minute


class TestASchedulesSleepOnItsOpenAlert:
    def schedule(self, tenant, cron, now):
        return trigger_rule_create(tenant=tenant, name="s", type="schedule", schedule=cron, now=now)

    def test_while_its_alert_is_open_it_is_looked_at_once_within_the_staleness_cap(self, tenant, settings):
        settings.ENGINE_MAX_STALENESS_MINUTES = 60
        rule = self.schedule(tenant, "* * * * *", START - MINUTE)
        evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)

        assert TriggerRule.objects.get(pk=rule.pk).next_run_at == START + 60 * MINUTE
        assert all(tick_due_rule_ids(now=START + n * MINUTE) == [] for n in (1, 30, 59))
        assert tick_due_rule_ids(now=START + 60 * MINUTE) == [rule.pk]
        report = evaluate_rules(rule_ids=[rule.pk], now=START + 60 * MINUTE)
        assert (report.fired, report.alerts_created) == (1, 0)  # it met its open alert, as every minute

    def test_a_resolve_makes_it_due_at_its_first_occurrence_after_the_resolve(self, tenant):
        from proactive.models import RuleWake

        hourly = self.schedule(tenant, "0 * * * *", START - MINUTE)  # START is 12:00
        evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)
        alert_resolve(alert=Alert.objects.get(rule=hourly), actor="user:ann", now=START + 20 * MINUTE)
        assert RuleWake.objects.filter(rule=hourly, at=START + 20 * MINUTE).exists()

        assert tick_due_rule_ids(now=START + 21 * MINUTE) == []  # not at once: at 13:00
        assert not RuleWake.objects.exists()
        assert TriggerRule.objects.get(pk=hourly.pk).next_run_at == START + 60 * MINUTE
        assert tick_due_rule_ids(now=START + 60 * MINUTE) == [hourly.pk]
        report = evaluate_rules(rule_ids=[hourly.pk], now=START + 60 * MINUTE)
        assert report.alerts_created == 1
        assert Alert.objects.exclude(status="resolved").get(rule=hourly).payload["scheduledFor"] == (
            "2026-11-26T13:00:00Z"
        )

    def test_a_firing_over_the_budget_raises_nothing_and_does_not_sleep(self, tenant):
        from tenants.models import Tenant

        Tenant.objects.filter(pk=tenant.pk).update(alert_budget_per_hour=1)
        first, second = (self.schedule(tenant, "* * * * *", START - MINUTE) for _ in range(2))
        evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)

        next_runs = dict(TriggerRule.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "next_run_at"))
        # One alert fits the budget and sleeps on it; the other raised nothing and is looked at next minute.
        assert sorted(next_runs.values()) == [START + MINUTE, START + 60 * MINUTE]


@pytest.mark.django_db(transaction=True)
class TestWakesAndLocks:
    def rule(self, tenant, now, **fields):
        return trigger_rule_create(
            tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=now, **fields
        )

    def test_a_wake_for_a_rule_a_chunk_holds_waits_for_the_next_tick_instead_of_being_lost(self, tenant):
        from proactive.models import MetricWake
        from tests.concurrency import rows_locked_by_another_transaction

        rule = self.rule(tenant, START)
        TriggerRule.objects.filter(pk=rule.pk).update(next_run_at=START + timedelta(hours=1))  # asleep
        metric_points_write(tenant=tenant, metric="m", points=[(START, 50.0)], now=START)

        with rows_locked_by_another_transaction(TriggerRule.objects.filter(pk=rule.pk)):
            assert tick_due_rule_ids(now=START + MINUTE) == []  # held by a chunk: skipped, not waited for
        assert MetricWake.objects.count() == 1  # kept for the next tick

        assert tick_due_rule_ids(now=START + 2 * MINUTE) == [rule.pk]
        assert not MetricWake.objects.exists()

    @pytest.mark.parametrize("path", ["one statement (PostgreSQL)", "portable (ORM)"])
    def test_wakes_are_read_batch_after_batch_and_only_a_held_rules_wake_is_kept(self, tenant, path, monkeypatch):
        from types import SimpleNamespace

        from proactive import services
        from proactive.engine.runner import due_rule_ids
        from proactive.models import MetricWake
        from proactive.services import rules_wake

        if path == "portable (ORM)":  # the path other databases take, on this one
            monkeypatch.setattr(services, "connection", SimpleNamespace(vendor="other"))
        from tests.concurrency import rows_locked_by_another_transaction

        rules = [
            trigger_rule_create(
                tenant=tenant, name=f"r{n}", type="metric_threshold", metric=f"m{n}", threshold=10, now=START
            )
            for n in range(5)
        ]
        TriggerRule.objects.update(next_run_at=START + timedelta(hours=1))  # all asleep
        for n in range(5):
            metric_points_write(tenant=tenant, metric=f"m{n}", points=[(START, 50.0)], now=START)
        held = rules[2]

        with rows_locked_by_another_transaction(TriggerRule.objects.filter(pk=held.pk)):
            woken = rules_wake(now=START + MINUTE, batch_size=2)  # three batches: 2, 2 and 1

        assert woken == 4
        assert list(MetricWake.objects.values_list("metric", flat=True)) == ["m2"]
        assert due_rule_ids(now=START + MINUTE) == sorted(rule.pk for rule in rules if rule != held)
        assert rules_wake(now=START + 2 * MINUTE, batch_size=2) == 1
        assert not MetricWake.objects.exists()

    def test_a_person_resolving_never_locks_the_rule_a_chunk_may_hold(self, tenant):
        from django.db import connection

        from tests.concurrency import rows_locked_by_another_transaction

        rule = self.rule(tenant, START)
        metric_points_write(tenant=tenant, metric="m", points=[(START, 50.0)], now=START)
        evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)
        alert = Alert.objects.get(rule=rule)

        with rows_locked_by_another_transaction(TriggerRule.objects.filter(pk=rule.pk)):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")  # a wait on the rule row would fail here
            try:
                alert_resolve(alert=alert, actor="user:ann", now=START + MINUTE / 2)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SET lock_timeout = 0")

        assert Alert.objects.get(pk=alert.pk).status == "resolved"
        assert tick_due_rule_ids(now=START + MINUTE) == [rule.pk]

    def test_a_person_resolving_a_schedules_alert_never_waits_for_the_rule_a_chunk_may_hold(self, tenant):
        from django.db import connection

        from proactive.models import RuleWake
        from tests.concurrency import rows_locked_by_another_transaction

        rule = trigger_rule_create(tenant=tenant, name="s", type="schedule", schedule="* * * * *", now=START - MINUTE)
        evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)  # its alert open: asleep
        alert = Alert.objects.get(rule=rule)

        with rows_locked_by_another_transaction(TriggerRule.objects.filter(pk=rule.pk)):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")  # a wait on the rule row (even at commit) fails
            try:
                alert_resolve(alert=alert, actor="user:ann", now=START + MINUTE / 2)  # committed here
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SET lock_timeout = 0")
            assert tick_due_rule_ids(now=START + MINUTE) == []  # held by the chunk: its wake waits
            assert RuleWake.objects.filter(rule=rule).exists()

        assert tick_due_rule_ids(now=START + 2 * MINUTE) == [rule.pk]
        assert evaluate_rules(rule_ids=[rule.pk], now=START + 2 * MINUTE).alerts_created == 1


def test_a_rule_whose_alert_could_not_be_raised_is_tried_again_at_the_next_tick(tenant, monkeypatch):
    from alerts import channels

    rule = trigger_rule_create(
        tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=START
    )
    metric_points_write(tenant=tenant, metric="m", points=[(START, 50.0)], now=START)

    def broken(alert):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(channels, "notification_title", broken)
    report = evaluate_rules(rule_ids=tick_due_rule_ids(now=START), now=START)

    assert report.errors == 1
    assert TriggerRule.objects.get(pk=rule.pk).next_run_at == START + MINUTE


def test_a_chunk_is_evaluated_as_of_its_tick_whenever_a_worker_takes_it(tenant):
    from proactive.tasks import evaluate_rule_chunk

    rule = trigger_rule_create(
        tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=START
    )

    evaluate_rule_chunk.run([rule.pk], START.isoformat())

    assert TriggerRule.objects.get(pk=rule.pk).last_evaluated_at == START


def test_a_chunk_that_waited_past_its_minute_lets_no_rule_sleep(tenant):
    from django.utils import timezone

    from proactive.tasks import evaluate_rule_chunk

    tick_at = timezone.now().replace(second=0, microsecond=0) - 3 * MINUTE
    rule = trigger_rule_create(
        tenant=tenant, name="r", type="metric_threshold", metric="m", threshold=10, window_days=1, now=tick_at
    )
    metric_points_write(tenant=tenant, metric="m", points=[(tick_at - MINUTE, 1.0)], now=tick_at - MINUTE)

    evaluate_rule_chunk.run([rule.pk], tick_at.isoformat())

    assert TriggerRule.objects.get(pk=rule.pk).next_run_at == tick_at + MINUTE  # looked at again, not asleep


def test_a_write_wakes_its_rules_at_the_next_minute_not_the_one_a_tick_already_chose(tenant):
    from proactive.models import MetricWake

    metric_points_write(tenant=tenant, metric="m", points=[(START, 1.0)], now=START + timedelta(seconds=0.5))
    metric_points_write(tenant=tenant, metric="n", points=[(START, 1.0)], now=START)

    assert sorted(MetricWake.objects.values_list("metric", "at")) == [("m", START + MINUTE), ("n", START)]


USAGE_RULES = {
    "tokens z-score": {
        "type": "anomaly",
        "metric": "usage.tokensUsed",
        "threshold": 1.5,
        "window_days": 7,
        "auto_resolve": True,
    },
    "tokens robust, up": {
        "type": "anomaly",
        "metric": "usage.tokensUsed",
        "method": "robust",
        "direction": "up",
        "threshold": 2,
        "window_days": 10,
    },
    "widgets z-score": {"type": "anomaly", "metric": "usage.activeWidgets", "threshold": 1, "window_days": 7},
}


@pytest.mark.parametrize("seed", [1, 2])
def test_usage_anomalies_sleep_until_midnight_or_a_changed_day_and_decide_exactly_the_same(seed, settings, monkeypatch):
    """
    Anomaly rules on usage metrics compare completed UTC days: they sleep until midnight, unless
    billing changes a completed day (a correction, a late event, the rollup filling a gap). Over
    an evening and a night with such changes, both tenants' alerts are the same.
    """
    from billing.services.usage import UsageDelta, usage_apply, usage_insert_if_missing, usage_set_active_widgets

    settings.ENGINE_MAX_STALENESS_MINUTES = 60
    start = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    clock = {"now": start - MINUTE}
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock["now"])
    rng = random.Random(seed)
    every_minute, change_driven = TenantFactory(id="every"), TenantFactory(id="changes")
    tenants = (every_minute, change_driven)
    for day in range(1, 12):
        values = {
            "tokens_used": rng.randrange(900, 1100),
            "tasks_executed": 5,
            "alerts_triggered": 0,
            "active_widgets": rng.choice([3, 3, 4]),
        }
        for tenant in tenants:
            usage_insert_if_missing(tenant_id=tenant.pk, day=start.date() - timedelta(days=day), values=values)
    for tenant in tenants:
        for name, fields in USAGE_RULES.items():
            trigger_rule_create(tenant=tenant, name=name, now=start - MINUTE, **fields)
    all_rules = list(TriggerRule.objects.filter(tenant=every_minute).values_list("pk", flat=True))
    evaluated = {tenant.pk: 0 for tenant in tenants}

    for minute in range(240):  # 22:00 to 02:00: one midnight
        now = start + minute * MINUTE
        clock["now"] = now - timedelta(seconds=20)
        today = clock["now"].date()
        change, days_back, tokens, widgets = (
            rng.random(),
            rng.choice([1, 1, 2, 5]),
            rng.choice([50, 400, 900]),
            rng.choice([2, 9]),
        )
        for tenant in tenants:
            if change < 0.04:  # a late event or a correction lands on a completed day
                day = today - timedelta(days=days_back)
                usage_apply(deltas=[UsageDelta(tenant_id=tenant.pk, day=day, tokens_used=tokens)])
            elif change < 0.06:
                usage_set_active_widgets(tenant_id=tenant.pk, day=today - timedelta(days=1), count=widgets)
            elif change < 0.5:  # today's running count: it only matters once the day is complete
                usage_apply(deltas=[UsageDelta(tenant_id=tenant.pk, day=today, tokens_used=tokens // 10)])
        clock["now"] = now
        due = [pk for pk in tick_due_rule_ids(now=now) if pk not in all_rules]
        every = evaluate_rules(rule_ids=all_rules, now=now, only_due=False, may_sleep=False)
        evaluated[every_minute.pk] += every.evaluated
        evaluated[change_driven.pk] += evaluate_rules(rule_ids=due, now=now).evaluated

    def story(tenant):
        alerts = Alert.objects.filter(tenant=tenant).order_by("triggered_at", "rule_name")
        return [(a.rule_name, a.triggered_at, a.status, a.resolved_at, a.payload) for a in alerts]

    expected, actual = story(every_minute), story(change_driven)
    assert actual == expected
    assert len(expected) >= 3, "the changes should make the rules fire"
    assert any(triggered.date() > start.date() for _, triggered, *_ in expected) or any(
        resolved and resolved.date() > start.date() for *_, resolved, _ in expected
    ), "midnight should change a decision"
    assert evaluated[change_driven.pk] < evaluated[every_minute.pk] * 0.2, evaluated


def test_only_a_change_to_a_completed_day_wakes_the_usage_rules(tenant):
    from django.utils import timezone

    from billing.services.usage import UsageDelta, usage_apply
    from proactive.models import MetricWake

    today = timezone.now().astimezone(UTC).date()
    usage_apply(deltas=[UsageDelta(tenant_id=tenant.pk, day=today, tokens_used=5)])
    assert not MetricWake.objects.exists()  # the running day: no rule reads it

    usage_apply(deltas=[UsageDelta(tenant_id=tenant.pk, day=today - timedelta(days=3), tokens_used=5)])
    wakes = list(MetricWake.objects.values_list("tenant_id", "metric", "at"))
    assert sorted(metric for _, metric, _ in wakes) == [
        "usage.activeWidgets",
        "usage.alertsTriggered",
        "usage.tasksExecuted",
        "usage.tokensUsed",
    ]
    assert {(tenant_id, at.second) for tenant_id, _, at in wakes} == {(tenant.pk, 0)}  # on a tick's minute
