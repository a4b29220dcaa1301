"""
Cron read in a time zone, where clocks change. Pure: no database. Every expected instant is worked
out by hand from the zone's rules:

- Europe/Berlin: CET (UTC+1), CEST (UTC+2). 2026-03-29 at 01:00 UTC clocks go 02:00 → 03:00;
  2026-10-25 at 01:00 UTC they go 03:00 → 02:00 (02:00–02:59 happens twice).
- America/New_York: EST (UTC−5), EDT (UTC−4). 2026-03-08 at 07:00 UTC clocks go 02:00 → 03:00;
  2026-11-01 at 06:00 UTC they go 02:00 → 01:00 (01:00–01:59 happens twice).
- Asia/Kolkata: UTC+5:30 all year; Asia/Kathmandu: UTC+5:45.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from proactive.engine import conditions
from proactive.engine.conditions import evaluate_schedule, latest_occurrence, next_occurrence
from proactive.engine.cron import fire_at, occurrences_after, offset_changes

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def following(schedule: str, after: datetime, timezone: str, count: int) -> list[datetime]:
    """The next `count` occurrences, each from the one before: how the engine moves a rule's next run."""
    found = []
    for _ in range(count):
        after = next_occurrence(schedule, after, timezone)
        found.append(after)
    return found


class TestFixedHour:
    def test_berlin_spring_forward_fires_the_missing_0230_once_at_0300_local(self):
        assert following("30 2 * * *", at(2026, 3, 27, 12), BERLIN, 4) == [
            at(2026, 3, 28, 1, 30),  # 02:30 CET
            at(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, the first minute after the gap
            at(2026, 3, 30, 0, 30),  # 02:30 CEST
            at(2026, 3, 31, 0, 30),
        ]

    def test_berlin_fall_back_fires_the_repeated_0230_once_on_the_first_pass(self):
        assert following("30 2 * * *", at(2026, 10, 23, 12), BERLIN, 4) == [
            at(2026, 10, 24, 0, 30),  # 02:30 CEST
            at(2026, 10, 25, 0, 30),  # 02:30 CEST, first pass; not again at 01:30 UTC (02:30 CET)
            at(2026, 10, 26, 1, 30),  # 02:30 CET
            at(2026, 10, 27, 1, 30),
        ]

    def test_new_york_spring_forward_fires_the_missing_0230_at_0300_local(self):
        assert following("30 2 * * *", at(2026, 3, 6, 12), NEW_YORK, 3) == [
            at(2026, 3, 7, 7, 30),  # 02:30 EST
            at(2026, 3, 8, 7, 0),  # 03:00 EDT
            at(2026, 3, 9, 6, 30),  # 02:30 EDT
        ]

    def test_new_york_fall_back_fires_the_repeated_0130_once_on_the_first_pass(self):
        assert following("30 1 * * *", at(2026, 10, 30, 12), NEW_YORK, 3) == [
            at(2026, 10, 31, 5, 30),  # 01:30 EDT
            at(2026, 11, 1, 5, 30),  # 01:30 EDT; not again at 06:30 UTC (01:30 EST)
            at(2026, 11, 2, 6, 30),  # 01:30 EST
        ]

    def test_an_occurrence_at_the_gap_end_itself_is_one_firing_with_the_missing_ones(self):
        # 02:00, 02:30 (missing) and 03:00 all fire at 03:00 CEST: once.
        assert following("0,30 2,3 * * *", at(2026, 3, 29, 0), BERLIN, 3) == [
            at(2026, 3, 29, 1, 0),
            at(2026, 3, 29, 1, 30),  # 03:30 CEST
            at(2026, 3, 30, 0, 0),  # 02:00 CEST the next day
        ]


class TestEveryFifteenMinutes:
    def test_berlin_spring_forward_collapses_the_missing_hour_into_0300(self):
        assert following("*/15 * * * *", at(2026, 3, 29, 0, 30), BERLIN, 4) == [
            at(2026, 3, 29, 0, 45),  # 01:45 CET
            at(2026, 3, 29, 1, 0),  # 02:00, 02:15, 02:30, 02:45 (missing) and 03:00 CEST: one firing
            at(2026, 3, 29, 1, 15),  # 03:15 CEST
            at(2026, 3, 29, 1, 30),
        ]

    def test_berlin_fall_back_stays_silent_during_the_second_pass(self):
        assert following("*/15 * * * *", at(2026, 10, 24, 23, 50), BERLIN, 6) == [
            at(2026, 10, 25, 0, 0),  # 02:00 CEST
            at(2026, 10, 25, 0, 15),
            at(2026, 10, 25, 0, 30),
            at(2026, 10, 25, 0, 45),  # 02:45 CEST
            at(2026, 10, 25, 2, 0),  # 03:00 CET: 02:00–02:45 CET (01:00–01:45 UTC) already fired
            at(2026, 10, 25, 2, 15),
        ]

    def test_new_york_spring_forward(self):
        assert following("*/15 * * * *", at(2026, 3, 8, 6, 30), NEW_YORK, 3) == [
            at(2026, 3, 8, 6, 45),  # 01:45 EST
            at(2026, 3, 8, 7, 0),  # 03:00 EDT, for 02:00–02:45 and 03:00
            at(2026, 3, 8, 7, 15),
        ]

    def test_new_york_fall_back(self):
        assert following("*/15 * * * *", at(2026, 11, 1, 5, 30), NEW_YORK, 3) == [
            at(2026, 11, 1, 5, 45),  # 01:45 EDT
            at(2026, 11, 1, 7, 0),  # 02:00 EST: 01:00–01:45 EST (06:00–06:45 UTC) already fired
            at(2026, 11, 1, 7, 15),
        ]

    @pytest.mark.parametrize(
        ("timezone", "day", "firings"),
        [
            (BERLIN, (2026, 3, 29), 92),  # 23 hours: 96 quarter-hours, 4 missing, collapsed into 03:00's
            (BERLIN, (2026, 10, 25), 96),  # 25 hours, the repeated four fire once
            (BERLIN, (2026, 3, 30), 96),
            (NEW_YORK, (2026, 3, 8), 92),
            (NEW_YORK, (2026, 11, 1), 96),
            (NEW_YORK, (2026, 11, 2), 96),
        ],
    )
    def test_a_transition_day_counts_each_wall_clock_time_once(self, timezone, day, firings):
        zone = ZoneInfo(timezone)
        start = datetime(*day, tzinfo=zone)
        end = (start + timedelta(days=1, hours=3)).replace(hour=0)  # the next local midnight
        found = []
        for moment in occurrences_after("*/15 * * * *", start - timedelta(seconds=1), timezone):
            if moment >= end:
                break
            found.append(moment)

        assert len(found) == firings
        assert len({moment.astimezone(zone).strftime("%H:%M") for moment in found}) == firings  # never twice


class TestDaily:
    def test_berlin_0900_moves_an_hour_earlier_in_utc_with_summer_time(self):
        assert following("0 9 * * *", at(2026, 3, 27, 12), BERLIN, 3) == [
            at(2026, 3, 28, 8),  # 09:00 CET
            at(2026, 3, 29, 7),  # 09:00 CEST, the transition day
            at(2026, 3, 30, 7),
        ]
        assert following("0 9 * * *", at(2026, 10, 23, 12), BERLIN, 3) == [
            at(2026, 10, 24, 7),
            at(2026, 10, 25, 8),  # 09:00 CET, the transition day
            at(2026, 10, 26, 8),
        ]

    def test_new_york_midnight_and_weekdays(self):
        # 2026-03-06 is a Friday: the weekday schedule skips the weekend, then reads EDT.
        assert following("0 0 * * 1-5", at(2026, 3, 5, 12), NEW_YORK, 3) == [
            at(2026, 3, 6, 5),  # Friday 00:00 EST
            at(2026, 3, 9, 4),  # Monday 00:00 EDT
            at(2026, 3, 10, 4),
        ]

    def test_zones_with_half_and_quarter_hour_offsets(self):
        assert following("30 9 * * *", at(2026, 3, 28, 12), "Asia/Kolkata", 2) == [
            at(2026, 3, 29, 4),
            at(2026, 3, 30, 4),
        ]
        # Midnight in Kolkata is 18:30 UTC the day before; Kathmandu is UTC+5:45.
        assert following("0 0 * * *", at(2026, 3, 28, 12), "Asia/Kolkata", 1) == [at(2026, 3, 28, 18, 30)]
        assert following("0 0 1 * *", at(2026, 3, 28, 12), "Asia/Kathmandu", 1) == [at(2026, 3, 31, 18, 15)]

    def test_an_ordinary_day_in_a_zone_is_the_offset_away_from_utc(self):
        assert following("*/15 9 * * *", at(2026, 6, 15, 12), BERLIN, 2) == [at(2026, 6, 16, 7), at(2026, 6, 16, 7, 15)]


class TestLatestOccurrence:
    def test_after_the_gap_the_latest_is_its_end(self):
        assert latest_occurrence("30 2 * * *", at(2026, 3, 29, 1, 0), BERLIN) == at(2026, 3, 29, 1, 0)
        assert latest_occurrence("30 2 * * *", at(2026, 3, 29, 0, 59, 59), BERLIN) == at(2026, 3, 28, 1, 30)

    def test_during_the_second_pass_the_latest_is_on_the_first(self):
        now = at(2026, 11, 1, 6, 30)  # 01:30 EST, the second pass
        assert latest_occurrence("45 1 * * *", now, NEW_YORK) == at(2026, 11, 1, 5, 45)  # 01:45 EDT
        assert latest_occurrence("* * * * *", now, NEW_YORK) == at(2026, 11, 1, 5, 59)  # 01:59 EDT
        assert latest_occurrence("0 2 * * *", now, NEW_YORK) == at(2026, 10, 31, 6)  # yesterday 02:00 EDT

    def test_an_ordinary_instant(self):
        assert latest_occurrence("0 9 * * *", at(2026, 6, 15, 7, 0, 30), BERLIN) == at(2026, 6, 15, 7)
        assert latest_occurrence("0 9 * * *", at(2026, 6, 15, 6, 59), BERLIN) == at(2026, 6, 14, 7)


ZONES = [BERLIN, NEW_YORK, "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago", "UTC"]
EXPRESSIONS = ["* * * * *", "*/15 * * * *", "30 2 * * *", "0 9 * * 1-5", "0 0 * * *", "*/7 1-3 * * 0"]


@pytest.mark.parametrize("timezone", ZONES)
def test_latest_and_next_agree_at_any_instant(timezone):
    """latest(now) ≤ now < next(latest(now)), and next(now) is next(latest(now)): one sequence of firings."""
    rng = random.Random(timezone)
    # Instants around this zone's changes of offset in 2026, and anywhere in the year.
    changes = [moment for moment, _, _ in offset_changes(timezone, since=at(2026, 1, 1), until=at(2027, 1, 1))]
    instants = [
        change + timedelta(seconds=rng.randint(-3 * 3600, 3 * 3600)) for change in changes for _ in range(40)
    ] + [at(2026, 1, 1) + timedelta(seconds=rng.randint(0, 365 * 86400)) for _ in range(40)]
    for expression in EXPRESSIONS:
        for now in instants:
            latest = latest_occurrence(expression, now, timezone)
            upcoming = next_occurrence(expression, now, timezone)
            assert latest <= now < upcoming, (expression, now)
            assert next_occurrence(expression, latest, timezone) == upcoming, (expression, now)


def test_occurrences_never_repeat_a_wall_clock_time_and_miss_none():
    """Over a year in Berlin, every local minute the cron names fires exactly once (a missing one at the gap's end)."""
    zone = ZoneInfo(BERLIN)
    found = []
    for moment in occurrences_after("*/10 2 * * *", at(2025, 12, 31, 12), BERLIN):
        if moment > at(2026, 12, 31, 12):
            break
        found.append(moment)
    local_times = [moment.astimezone(zone).replace(tzinfo=None) for moment in found]

    assert len(found) == 365 * 6 - 6 + 1  # six a day; on 2026-03-29 all six are missing: one firing at 03:00
    assert len(set(local_times)) == len(local_times)
    assert found == sorted(found)


def test_utc_and_its_aliases_agree():
    moments = [at(2026, 3, 29, 0, 59, 30), at(2026, 10, 25, 0, 59), at(2026, 11, 26, 13, 30)]
    for moment in moments:
        for expression in EXPRESSIONS:
            utc = next_occurrence(expression, moment)
            assert next_occurrence(expression, moment, "UTC") == utc
            assert next_occurrence(expression, moment, "Etc/UTC") == utc  # the zone path, with no changes
            assert latest_occurrence(expression, moment, "Etc/UTC") == latest_occurrence(expression, moment)


def test_the_utc_path_stays_on_its_cache():
    conditions._next_occurrence_utc.cache_clear()
    for _ in range(3):
        next_occurrence("0 13 * * 1", at(2026, 11, 26, 13, 30))

    assert conditions._next_occurrence_utc.cache_info().hits == 2


def test_answers_are_utc_whatever_zone_now_is_in():
    now = at(2026, 3, 29, 0, 50).astimezone(ZoneInfo(NEW_YORK))

    upcoming = next_occurrence("*/15 * * * *", now, BERLIN)

    assert upcoming == at(2026, 3, 29, 1, 0) and upcoming.utcoffset() == timedelta(0)


def test_fire_at_maps_a_wall_clock_minute_to_its_instant():
    berlin = ZoneInfo(BERLIN)

    assert fire_at(datetime(2026, 3, 29, 2, 30), berlin) == at(2026, 3, 29, 1, 0)  # in the gap
    assert fire_at(datetime(2026, 3, 29, 1, 59), berlin) == at(2026, 3, 29, 0, 59)
    assert fire_at(datetime(2026, 10, 25, 2, 30), berlin) == at(2026, 10, 25, 0, 30)  # repeated: the first
    assert fire_at(datetime(2026, 10, 25, 3, 0), berlin) == at(2026, 10, 25, 2, 0)


def test_offset_changes_in_a_year():
    hour = timedelta(hours=1)

    assert offset_changes(BERLIN, since=at(2026, 1, 1), until=at(2027, 1, 1)) == [
        (at(2026, 3, 29, 1), hour, 2 * hour),
        (at(2026, 10, 25, 1), 2 * hour, hour),
    ]
    assert offset_changes(NEW_YORK, since=at(2026, 1, 1), until=at(2027, 1, 1)) == [
        (at(2026, 3, 8, 7), -5 * hour, -4 * hour),
        (at(2026, 11, 1, 6), -4 * hour, -5 * hour),
    ]
    assert offset_changes("Asia/Kolkata", since=at(2026, 1, 1), until=at(2027, 1, 1)) == []


class TestEvaluateSchedule:
    def test_a_zoned_firing_says_the_zone_and_the_local_time(self):
        # Monday 2026-03-30, 09:00 CEST; the rule was due at that occurrence.
        due = at(2026, 3, 30, 7)

        result = evaluate_schedule(schedule="0 9 * * 1-5", due_at=due, now=at(2026, 3, 30, 7, 0, 20), timezone=BERLIN)

        assert result.fired
        assert result.evidence == {
            "schedule": "0 9 * * 1-5",
            "scheduledFor": "2026-03-30T07:00:00Z",
            "timezone": "Europe/Berlin",
            "scheduledForLocal": "2026-03-30T09:00:00+02:00",
        }
        assert result.reason == "The schedule '0 9 * * 1-5' occurred at 2026-03-30T07:00:00Z (09:00 Europe/Berlin)."

    def test_the_collapsed_firing_is_the_gaps_end(self):
        result = evaluate_schedule(
            schedule="30 2 * * *", due_at=at(2026, 3, 29, 1), now=at(2026, 3, 29, 1, 0, 5), timezone=BERLIN
        )

        assert result.evidence["scheduledFor"] == "2026-03-29T01:00:00Z"
        assert result.evidence["scheduledForLocal"] == "2026-03-29T03:00:00+02:00"

    def test_a_local_date_other_than_the_utc_one_is_named(self):
        result = evaluate_schedule(
            schedule="0 0 * * *", due_at=at(2026, 3, 28, 18, 30), now=at(2026, 3, 28, 18, 31), timezone="Asia/Kolkata"
        )

        assert result.reason == (
            "The schedule '0 0 * * *' occurred at 2026-03-28T18:30:00Z (2026-03-29 00:00 Asia/Kolkata)."
        )

    def test_not_yet_due_names_the_next_occurrence_in_both(self):
        # 12:00 UTC is 07:00 EST: 09:00 is still to come today.
        result = evaluate_schedule(schedule="0 9 * * *", due_at=None, now=at(2026, 11, 26, 12), timezone=NEW_YORK)

        assert not result.fired and not result.decided
        assert result.reason == "Next occurrence is 2026-11-26T14:00:00Z (09:00 America/New_York)."

    def test_utc_evidence_is_as_before(self):
        result = evaluate_schedule(schedule="0 13 * * *", due_at=at(2026, 11, 26, 13), now=at(2026, 11, 26, 13, 30))

        assert result.evidence == {"schedule": "0 13 * * *", "scheduledFor": "2026-11-26T13:00:00Z"}
