"""Quiet hours and the daily digest's hour, on the tenant's clock, across both clock changes."""

from datetime import UTC, date, datetime, time

import pytest

from alerts.quiet_hours import in_quiet_hours, local_instant, next_daily_at, quiet_until

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args):
    return datetime(*args, tzinfo=UTC)


class TestInQuietHours:
    @pytest.mark.parametrize(
        ("wall", "inside"),
        [
            (time(21, 59), False),
            (time(22, 0), True),
            (time(23, 59), True),
            (time(0, 0), True),
            (time(6, 59), True),
            (time(7, 0), False),
            (time(12, 0), False),
        ],
    )
    def test_past_midnight(self, wall, inside):
        assert in_quiet_hours(wall, start=time(22), end=time(7)) is inside

    @pytest.mark.parametrize(
        ("wall", "inside"), [(time(12, 59), False), (time(13, 0), True), (time(13, 59), True), (time(14, 0), False)]
    )
    def test_within_a_day(self, wall, inside):
        assert in_quiet_hours(wall, start=time(13), end=time(14)) is inside


class TestQuietUntil:
    def test_outside_quiet_hours_nothing_waits(self):
        assert quiet_until(utc(2026, 11, 27, 12), start=time(22), end=time(7), zone=BERLIN) is None

    def test_before_midnight_waits_for_the_next_morning_in_the_tenants_zone(self):
        # 23:30 in Berlin (UTC+1 in November): held until 07:00 Berlin, 06:00 UTC.
        assert quiet_until(utc(2026, 11, 27, 22, 30), start=time(22), end=time(7), zone=BERLIN) == utc(2026, 11, 28, 6)

    def test_after_midnight_waits_for_the_same_morning(self):
        assert quiet_until(utc(2026, 11, 28, 2), start=time(22), end=time(7), zone=BERLIN) == utc(2026, 11, 28, 6)

    def test_the_end_is_on_the_new_offset_after_the_spring_change(self):
        # Berlin moves to UTC+2 at 02:00 on 29 March 2026: 07:00 that morning is 05:00 UTC.
        assert quiet_until(utc(2026, 3, 28, 23), start=time(22), end=time(7), zone=BERLIN) == utc(2026, 3, 29, 5)

    def test_the_end_is_on_the_old_offset_after_the_autumn_change(self):
        # Back to UTC+1 at 03:00 on 25 October 2026: 07:00 is 06:00 UTC.
        assert quiet_until(utc(2026, 10, 24, 22), start=time(22), end=time(7), zone=BERLIN) == utc(2026, 10, 25, 6)

    def test_an_end_the_clock_skips_is_when_it_jumps_past_it(self):
        # New York skips 02:00–03:00 on 8 March 2026 (07:00 UTC): quiet hours ending at 02:30 end then.
        assert quiet_until(utc(2026, 3, 8, 5), start=time(22), end=time(2, 30), zone=NEW_YORK) == utc(2026, 3, 8, 7)

    def test_an_end_the_clock_shows_twice_is_its_first_pass(self):
        # New York repeats 01:00–02:00 on 1 November 2026: 01:30 first passes at 05:30 UTC.
        assert quiet_until(utc(2026, 11, 1, 3), start=time(22), end=time(1, 30), zone=NEW_YORK) == utc(
            2026, 11, 1, 5, 30
        )


class TestNextDailyAt:
    def test_later_today_or_tomorrow(self):
        assert next_daily_at(utc(2026, 11, 27, 7), hour=9, zone=BERLIN) == utc(2026, 11, 27, 8)
        assert next_daily_at(utc(2026, 11, 27, 8), hour=9, zone=BERLIN) == utc(2026, 11, 28, 8)  # strictly after

    def test_the_same_local_hour_across_a_clock_change(self):
        before = next_daily_at(utc(2026, 3, 28, 7), hour=9, zone=BERLIN)
        after = next_daily_at(before, hour=9, zone=BERLIN)
        assert (before, after) == (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7))  # 23 hours apart

    def test_an_hour_the_clock_skips_comes_once_when_it_jumps(self):
        assert next_daily_at(utc(2026, 3, 8, 0), hour=2, zone=NEW_YORK) == utc(2026, 3, 8, 7)

    def test_an_hour_the_clock_repeats_comes_once(self):
        first = next_daily_at(utc(2026, 11, 1, 0), hour=1, zone=NEW_YORK)
        assert first == utc(2026, 11, 1, 5)
        assert next_daily_at(first, hour=1, zone=NEW_YORK) == utc(2026, 11, 2, 6)


def test_local_instant_of_an_ordinary_time():
    assert local_instant(date(2026, 7, 1), time(9), BERLIN) == utc(2026, 7, 1, 7)
