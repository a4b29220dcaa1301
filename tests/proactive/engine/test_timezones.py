"""The engine on PostgreSQL with schedules read in a tenant's or a rule's time zone, across clock changes."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from alerts.services import alert_resolve
from proactive.engine.runner import evaluate_rules, tick_due_rule_ids
from proactive.models import TriggerRule
from proactive.services import trigger_rule_update, trigger_rules_set_enabled
from tenants.services import tenant_update
from tests.factories import TenantFactory, TriggerRuleFactory

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def berlin(db):
    return TenantFactory(id="berlin", name="Berlin GmbH", slug="berlin", timezone="Europe/Berlin")


def schedule_rule(tenant, schedule, *, created, **fields):
    return TriggerRuleFactory(tenant=tenant, type="schedule", schedule=schedule, now=created, **fields)


def tick_every_minute(since: datetime, until: datetime, resolve: bool = False) -> list[tuple[datetime, dict]]:
    """
    What a beat tick each minute in [since, until] does; the (tick, evidence) of every firing. With
    `resolve`, a person resolves each new alert half a minute later (a schedule sleeps while its
    alert is open; the resolve wakes it for its next occurrence).
    """
    fired, now = [], since
    while now <= until:
        for result in evaluate_rules(rule_ids=tick_due_rule_ids(now=now), now=now).results:
            if result.fired:
                fired.append((now, result.evaluation.evidence))
            if resolve and result.alert_created:
                alert_resolve(alert=Alert.objects.get(pk=result.alert_id), actor="user:ann", now=now + MINUTE / 2)
        now += MINUTE
    return fired


def test_a_berlin_rule_fires_once_across_the_spring_forward_night_at_0300_local(berlin):
    rule = schedule_rule(berlin, "30 2 * * *", created=at(2026, 3, 28, 12))
    assert rule.next_run_at == at(2026, 3, 29, 1)  # 02:30 does not exist that night: 03:00 CEST

    fired = tick_every_minute(at(2026, 3, 28, 23), at(2026, 3, 29, 4))

    assert fired == [
        (
            at(2026, 3, 29, 1),
            {
                "schedule": "30 2 * * *",
                "scheduledFor": "2026-03-29T01:00:00Z",
                "timezone": "Europe/Berlin",
                "scheduledForLocal": "2026-03-29T03:00:00+02:00",
            },
        )
    ]
    alert = Alert.objects.get(rule=rule)
    assert alert.triggered_at == at(2026, 3, 29, 1)
    assert (
        alert.payload["reason"] == "The schedule '30 2 * * *' occurred at 2026-03-29T01:00:00Z (03:00 Europe/Berlin)."
    )
    rule.refresh_from_db()
    assert rule.next_run_at == at(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_every_quarter_hour_in_berlin_is_silent_during_the_repeated_hour(berlin):
    rule = schedule_rule(berlin, "*/15 * * * *", created=at(2026, 10, 24, 23, 29))

    fired = tick_every_minute(at(2026, 10, 24, 23, 30), at(2026, 10, 25, 2, 30), resolve=True)

    assert [(tick, evidence["scheduledForLocal"]) for tick, evidence in fired] == [
        (at(2026, 10, 24, 23, 30), "2026-10-25T01:30:00+02:00"),
        (at(2026, 10, 24, 23, 45), "2026-10-25T01:45:00+02:00"),
        (at(2026, 10, 25, 0, 0), "2026-10-25T02:00:00+02:00"),
        (at(2026, 10, 25, 0, 15), "2026-10-25T02:15:00+02:00"),
        (at(2026, 10, 25, 0, 30), "2026-10-25T02:30:00+02:00"),
        (at(2026, 10, 25, 0, 45), "2026-10-25T02:45:00+02:00"),
        # 02:00–02:45 CET (01:00–01:45 UTC) fired on the first pass.
        (at(2026, 10, 25, 2, 0), "2026-10-25T03:00:00+01:00"),
        (at(2026, 10, 25, 2, 15), "2026-10-25T03:15:00+01:00"),
        (at(2026, 10, 25, 2, 30), "2026-10-25T03:30:00+01:00"),
    ]
    assert Alert.objects.filter(rule=rule).count() == 9  # each resolved, so each occurrence raised one


def test_a_rule_in_its_own_zone_ignores_the_tenants(berlin):
    rule = schedule_rule(berlin, "30 2 * * *", created=at(2026, 3, 7, 12), timezone="America/New_York")

    fired = tick_every_minute(at(2026, 3, 8, 6), at(2026, 3, 8, 8))

    assert rule.next_run_at == at(2026, 3, 8, 7)  # 02:30 is missing in New York that night: 03:00 EDT
    assert [(tick, evidence["scheduledForLocal"]) for tick, evidence in fired] == [
        (at(2026, 3, 8, 7), "2026-03-08T03:00:00-04:00")
    ]


def test_a_late_tick_fires_once_for_the_latest_occurrence_in_the_zone(berlin):
    """After a gap the engine fires once, for the latest occurrence — here the second pass is no new one."""
    rule = schedule_rule(berlin, "*/15 * * * *", created=at(2026, 10, 25, 0, 50))  # due 02:00 UTC (03:00 CET)
    TriggerRule.objects.filter(pk=rule.pk).update(next_run_at=at(2026, 10, 25, 0, 45))  # as if it missed 02:45 CEST

    # Not asleep (its alert, once raised, would let it sleep): its next run is its next occurrence.
    report = evaluate_rules(rule_ids=[rule.pk], now=at(2026, 10, 25, 1, 50), may_sleep=False)  # 02:50 CET

    assert report.results[0].evaluation.evidence["scheduledForLocal"] == "2026-10-25T02:45:00+02:00"
    rule.refresh_from_db()
    assert rule.next_run_at == at(2026, 10, 25, 2)


def test_zoned_rules_cost_no_query_per_rule():
    tenants = [
        TenantFactory(id=f"t{i}", name=f"T{i}", slug=f"t{i}", timezone=zone)
        for i, zone in enumerate(["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
    ]
    created, now = at(2026, 11, 26, 8), at(2026, 11, 26, 12)

    def queries_for(rules_per_tenant: int) -> int:
        ids = [
            schedule_rule(tenant, "0 * * * *", created=created).pk
            for tenant in tenants
            for _ in range(rules_per_tenant)
        ]
        with CaptureQueriesContext(connection) as queries:
            report = evaluate_rules(rule_ids=ids, now=now)
        assert report.evaluated == len(ids) and report.errors == 0
        return len(queries)

    assert queries_for(1) == queries_for(10)


class TestRescheduling:
    NOW = at(2026, 11, 26, 12)  # a Thursday, 13:00 in Berlin

    def test_a_tenant_moving_zone_moves_the_next_run_of_its_rules_that_follow_it(self, berlin):
        follows = schedule_rule(berlin, "0 9 * * *", created=self.NOW)
        own_zone = schedule_rule(berlin, "0 9 * * *", created=self.NOW, timezone="Asia/Tokyo")
        disabled = schedule_rule(berlin, "0 9 * * *", created=self.NOW, enabled=False)
        metric = TriggerRuleFactory(tenant=berlin, now=self.NOW)
        elsewhere = schedule_rule(TenantFactory(id="other", timezone="Europe/Berlin"), "0 9 * * *", created=self.NOW)
        assert follows.next_run_at == at(2026, 11, 27, 8)  # 09:00 CET

        tenant_update(tenant=berlin, timezone="America/New_York", now=self.NOW)

        next_runs = {
            rule.pk: rule.next_run_at
            for rule in TriggerRule.objects.filter(
                pk__in=[follows.pk, own_zone.pk, disabled.pk, metric.pk, elsewhere.pk]
            )
        }
        assert next_runs == {
            follows.pk: at(2026, 11, 26, 14),  # 09:00 EST, still to come today
            own_zone.pk: at(2026, 11, 27, 0),  # 09:00 JST, as before
            disabled.pk: None,
            metric.pk: self.NOW,
            elsewhere.pk: at(2026, 11, 27, 8),
        }

    def test_renaming_a_tenant_reschedules_nothing(self, berlin):
        rule = schedule_rule(berlin, "0 9 * * *", created=self.NOW)
        TriggerRule.objects.filter(pk=rule.pk).update(next_run_at=at(2030, 1, 1))

        tenant_update(tenant=berlin, name="Berlin AG", timezone="Europe/Berlin", now=self.NOW)

        rule.refresh_from_db()
        assert rule.next_run_at == at(2030, 1, 1)

    def test_the_tenant_change_and_the_rescheduling_are_one_transaction(self, berlin, settings):
        rule = schedule_rule(berlin, "0 9 * * *", created=self.NOW)
        settings.TENANT_SETTINGS_CHANGED_HOOKS = [
            "proactive.services.trigger_rules_reschedule_for_tenant",
            "tests.proactive.engine.test_timezones.failing_hook",
        ]

        with pytest.raises(RuntimeError):
            tenant_update(tenant=berlin, timezone="America/New_York", now=self.NOW)

        berlin.refresh_from_db()
        rule.refresh_from_db()
        assert (berlin.timezone, rule.next_run_at) == ("Europe/Berlin", at(2026, 11, 27, 8))

    def test_a_rule_changing_its_own_zone_gets_its_next_run_from_it(self, berlin):
        rule = schedule_rule(berlin, "0 9 * * *", created=self.NOW)

        in_tokyo = trigger_rule_update(rule=rule, timezone="Asia/Tokyo", now=self.NOW)
        in_kolkata = trigger_rule_update(rule=rule, timezone="Asia/Kolkata", now=self.NOW)
        back_to_tenants = trigger_rule_update(rule=rule, timezone=None, now=self.NOW)

        assert in_tokyo.next_run_at == at(2026, 11, 27, 0)  # 09:00 JST (UTC+9)
        assert in_kolkata.next_run_at == at(2026, 11, 27, 3, 30)  # 09:00 IST (UTC+5:30)
        assert (back_to_tenants.timezone, back_to_tenants.next_run_at) == ("", at(2026, 11, 27, 8))

    def test_enabling_a_rule_schedules_it_in_the_tenants_zone(self, berlin):
        rule = schedule_rule(berlin, "0 9 * * *", created=self.NOW, enabled=False)

        trigger_rules_set_enabled(rules=TriggerRule.objects.filter(pk=rule.pk), enabled=True, now=self.NOW)

        rule.refresh_from_db()
        assert rule.next_run_at == at(2026, 11, 27, 8)


def failing_hook(*, tenant, changed, now):
    raise RuntimeError("a hook failed")


def test_enabling_many_schedule_rules_costs_no_query_per_rule(berlin):
    now = at(2026, 11, 26, 12)

    def queries_to_enable(count: int) -> int:
        ids = [schedule_rule(berlin, "0 9 * * *", created=now, enabled=False).pk for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            enabled = trigger_rules_set_enabled(rules=TriggerRule.objects.filter(pk__in=ids), enabled=True, now=now)
        assert enabled == count
        return len(queries)

    assert queries_to_enable(1) == queries_to_enable(10)
    assert set(TriggerRule.objects.values_list("next_run_at", flat=True)) == {at(2026, 11, 27, 8)}  # 09:00 CET
