"""
A schedule's backtest in a time zone: the occurrences the engine would have run, across clock changes.
Counts are worked out by hand for the local day of each 2026 transition (Berlin: 03-29 and 10-25;
New York: 03-08 and 11-01); the engine's own walk is the reference everywhere else.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from proactive.engine.backtest import BacktestRule, backtest_schedule_rule, schedule_occurrences
from proactive.engine.cron import occurrences_after, offset_changes
from tests.factories import TenantFactory, TriggerRuleFactory

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_day(timezone: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """(since, until) covering one local calendar day: the occurrences in (since, until] are that day's."""
    zone = ZoneInfo(timezone)
    start = datetime(year, month, day, tzinfo=zone)
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start - timedelta(minutes=1), end - timedelta(minutes=1)


def occurrences_in_day(schedule: str, timezone: str, *day: int) -> list[datetime]:
    since, until = local_day(timezone, *day)
    return [
        datetime.fromtimestamp(int(t), tz=UTC)
        for t in schedule_occurrences(schedule, since=since, until=until, timezone=timezone)
    ]


@pytest.mark.parametrize(
    ("timezone", "day", "every_minute", "every_quarter_hour", "at_0230"),
    [
        # 23 hours: 60 minutes (4 quarter-hours) do not exist; they fire with 03:00, itself an occurrence.
        (BERLIN, (2026, 3, 29), 1380, 92, [at(2026, 3, 29, 1)]),
        # 25 hours: the repeated hour fires once.
        (BERLIN, (2026, 10, 25), 1440, 96, [at(2026, 10, 25, 0, 30)]),
        (BERLIN, (2026, 6, 15), 1440, 96, [at(2026, 6, 15, 0, 30)]),
        (NEW_YORK, (2026, 3, 8), 1380, 92, [at(2026, 3, 8, 7)]),
        (NEW_YORK, (2026, 11, 1), 1440, 96, [at(2026, 11, 1, 7, 30)]),
        ("Asia/Kolkata", (2026, 3, 29), 1440, 96, [at(2026, 3, 28, 21)]),
    ],
)
def test_a_transition_day_has_each_wall_clock_occurrence_once(timezone, day, every_minute, every_quarter_hour, at_0230):
    assert len(occurrences_in_day("* * * * *", timezone, *day)) == every_minute
    assert len(occurrences_in_day("*/15 * * * *", timezone, *day)) == every_quarter_hour
    assert occurrences_in_day("30 2 * * *", timezone, *day) == at_0230


def test_the_repeated_hour_is_silent_in_utc_and_the_missing_one_fires_at_its_end():
    fall = schedule_occurrences(
        "*/15 * * * *", since=at(2026, 10, 24, 23, 50), until=at(2026, 10, 25, 2, 10), timezone=BERLIN
    )
    spring = schedule_occurrences(
        "*/15 * * * *", since=at(2026, 3, 8, 6, 20), until=at(2026, 3, 8, 7, 20), timezone=NEW_YORK
    )

    assert [datetime.fromtimestamp(int(t), tz=UTC) for t in fall] == [
        at(2026, 10, 25, 0, 0),
        at(2026, 10, 25, 0, 15),
        at(2026, 10, 25, 0, 30),
        at(2026, 10, 25, 0, 45),
        at(2026, 10, 25, 2, 0),  # 03:00 CET: 01:00–01:45 UTC are the second pass
    ]
    assert [datetime.fromtimestamp(int(t), tz=UTC) for t in spring] == [
        at(2026, 3, 8, 6, 30),
        at(2026, 3, 8, 6, 45),  # 01:45 EST
        at(2026, 3, 8, 7, 0),  # 03:00 EDT, for 02:00–02:45 and itself
        at(2026, 3, 8, 7, 15),
    ]


def test_a_weekday_schedule_over_a_berlin_month_with_the_spring_forward_in_it():
    rule = BacktestRule(type="schedule", schedule="0 9 * * 1-5")

    result = backtest_schedule_rule(rule=rule, since=at(2026, 3, 15), until=at(2026, 4, 15), timezone=BERLIN)

    firings = [firing.at for firing in result.firings]
    # 2026-03-16 (Mon) to 2026-04-14 (Tue; 09:00 on the 15th is after the span): 22 weekdays, 08:00 UTC
    # in CET, 07:00 UTC from 03-30 (CEST).
    assert (result.firing_count, len(firings)) == (22, 22)
    assert firings[:2] == [at(2026, 3, 16, 8), at(2026, 3, 17, 8)]
    assert firings[9:11] == [at(2026, 3, 27, 8), at(2026, 3, 30, 7)]
    assert firings[-1] == at(2026, 4, 14, 7)
    [alert] = result.alerts
    assert alert.evidence == {
        "schedule": "0 9 * * 1-5",
        "scheduledFor": "2026-03-16T08:00:00Z",
        "timezone": "Europe/Berlin",
        "scheduledForLocal": "2026-03-16T09:00:00+01:00",
    }
    assert alert.reason == "The schedule '0 9 * * 1-5' occurred at 2026-03-16T08:00:00Z (09:00 Europe/Berlin)."


ZONES = [BERLIN, NEW_YORK, "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham"]
EXPRESSIONS = ["* * * * *", "*/15 * * * *", "30 2 * * *", "0 0 * * *", "*/7 1-3 * * 0", "0 9 1,15 * 1-5"]


def engine_walk(schedule: str, since: datetime, until: datetime, timezone: str) -> list[int]:
    found = []
    for occurrence in occurrences_after(schedule, since.replace(second=0, microsecond=0), timezone):
        if occurrence > until.replace(second=0, microsecond=0):
            return found
        found.append(int(occurrence.timestamp()))


@pytest.mark.parametrize("timezone", ZONES)
def test_the_backtest_replays_exactly_the_engines_occurrences(timezone):
    """Spans around each change of the zone's offset in 2026 (and starting or ending inside the change)."""
    rng = random.Random(timezone)
    changes = [moment for moment, _, _ in offset_changes(timezone, since=at(2026, 1, 1), until=at(2027, 1, 1))]
    assert changes
    for change in changes:
        for _ in range(6):
            since = change - timedelta(seconds=rng.randint(-3 * 3600, 2 * 86400))
            until = change + timedelta(seconds=rng.randint(-3 * 3600, 2 * 86400))
            if until <= since:
                continue
            for expression in EXPRESSIONS:
                replayed = schedule_occurrences(expression, since=since, until=until, timezone=timezone).tolist()
                assert replayed == engine_walk(expression, since, until, timezone), (expression, since, until)


def test_a_legacy_schedule_in_a_zone_is_walked_by_the_engine():
    # croniter's "second Sunday" (not standard cron) in New York over March 2026: the 8th, at 03:00 EDT.
    replayed = schedule_occurrences("30 2 * * 0#2", since=at(2026, 3, 1), until=at(2026, 4, 1), timezone=NEW_YORK)

    assert replayed.tolist() == [int(at(2026, 3, 8, 7).timestamp())]


@pytest.mark.django_db
def test_the_api_backtests_in_the_rules_zone(client_for, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: at(2026, 3, 31, 12))  # a week back: 03-24 12:00 UTC
    tenant = TenantFactory(id="berlin", name="Berlin GmbH", slug="berlin", timezone=BERLIN)
    follows_tenant = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="30 2 * * *")
    own_zone = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="30 2 * * *", timezone=NEW_YORK)
    client = client_for(tenant)

    saved = client.post(f"/triggers/{follows_tenant.pk}/backtest", {"days": 7}, format="json").json()
    own = client.post(f"/triggers/{own_zone.pk}/backtest", {"days": 7}, format="json").json()
    draft = client.post(
        "/triggers/backtest",
        {"name": "Draft", "type": "schedule", "schedule": "30 2 * * *", "timezone": "Asia/Kolkata", "days": 7},
        format="json",
    ).json()

    def firings(body):
        return [firing["at"] for firing in body["firings"]]

    # Berlin: 02:30 CET is 01:30 UTC; on 03-29 it does not exist (03:00 CEST, 01:00 UTC); then CEST.
    assert firings(saved) == [
        *(f"2026-03-{day}T01:30:00Z" for day in (25, 26, 27, 28)),
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:30:00Z",
        "2026-03-31T00:30:00Z",
    ]
    assert firings(own) == [f"2026-03-{day}T06:30:00Z" for day in range(25, 32)]  # EDT since 03-08
    assert firings(draft) == [f"2026-03-{day}T21:00:00Z" for day in range(24, 31)]  # 02:30 IST, the day before
    assert saved["alerts"][0]["evidence"]["scheduledForLocal"] == "2026-03-25T02:30:00+01:00"
    assert own["alerts"][0]["evidence"]["timezone"] == NEW_YORK
    assert draft["alerts"][0]["evidence"]["scheduledForLocal"] == "2026-03-25T02:30:00+05:30"
