"""A schedule explained: its description and its next occurrences. Pure: no database."""

import locale
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError

from proactive.engine.backtest import schedule_occurrences
from proactive.engine.schedules import describe_schedule, next_occurrences
from proactive.models import TriggerRule
from proactive.services import next_run_after
from proactive.validators import validate_cron


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("0 9 * * 1-5", "At 09:00, Monday through Friday (UTC)"),
        ("0 9 * * MON-FRI", "At 09:00, Monday through Friday (UTC)"),
        ("0 9 * * mon-Fri", "At 09:00, Monday through Friday (UTC)"),
        ("30 13 * * 1", "At 13:30, only on Monday (UTC)"),
        ("45 23 * * *", "At 23:45 (UTC)"),
        # Sunday is 0 and 7.
        ("0 13 * * 0", "At 13:00, only on Sunday (UTC)"),
        ("0 13 * * 7", "At 13:00, only on Sunday (UTC)"),
        ("0 13 * * sun", "At 13:00, only on Sunday (UTC)"),
        ("0 13 * * 0,7", "At 13:00, only on Sunday (UTC)"),
        ("0 13 * * 5-7", "At 13:00, Friday through Sunday (UTC)"),
        ("0 13 * * SAT,sun", "At 13:00, only on Saturday and Sunday (UTC)"),
        ("0 13 * * 0-7", "At 13:00 (UTC)"),
        ("0 13 * * 1-7", "At 13:00 (UTC)"),
        ("0 13 * * */7", "At 13:00, only on Sunday (UTC)"),
        # Steps and ranges.
        ("*/15 * * * *", "Every 15 minutes (UTC)"),
        ("0-30/10 * * * *", "Every 10 minutes, minutes 0 through 30 past the hour (UTC)"),
        ("0 */6 * * *", "Every 6 hours (UTC)"),
        ("15 */2 * * *", "At 15 minutes past the hour, every 2 hours (UTC)"),
        ("0 9-17 * * 1-5", "At 0 minutes past the hour, between 09:00 and 17:59, Monday through Friday (UTC)"),
        ("0 9,17 * * *", "At 09:00 and 17:00 (UTC)"),
        ("0 9-11/1,17 * * *", "At 09:00, 10:00, 11:00 and 17:00 (UTC)"),
        ("0 0 * * 1-5/2", "At 00:00, only on Monday, Wednesday, and Friday (UTC)"),
        ("0 0 * * */2", "At 00:00, only on Tuesday, Thursday, Saturday, and Sunday (UTC)"),
        # Months, by number and by name.
        ("0 0 1 jan *", "At 00:00, on day 1 of the month, only in January (UTC)"),
        ("0 0 1 JAN,jul *", "At 00:00, on day 1 of the month, only in January and July (UTC)"),
        ("0 0 1 */3 *", "At 00:00, on day 1 of the month, every 3 months (UTC)"),
        ("59 23 31 12 *", "At 23:59, on day 31 of the month, only in December (UTC)"),
        # Day of month and day of week both restricted: either matches, as cron runs it.
        ("0 0 1,15 * 1", "At 00:00, on day 1 and 15 of the month or on Monday (UTC)"),
        ("0 0 1 jan 1-5", "At 00:00, on day 1 of the month or Monday through Friday, only in January (UTC)"),
        ("0 0 1-31 * 1", "At 00:00 (UTC)"),
        ("0 0 1 * 0-7", "At 00:00 (UTC)"),
    ],
)
def test_describes_the_schedule_in_plain_english(expression, description):
    assert describe_schedule(expression) == description


def _standard_cron_expressions(count: int, seed: int = 20261126):
    """Expressions of every form the validator takes: values, names, ranges, steps, lists and mixes of them."""
    fields = [(0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, ("jan", "jun", "Dec")), (0, 7, ("sun", "MON", "Sat"))]
    rng = random.Random(seed)

    def value(low, high, names):
        return rng.choice(names) if names and rng.random() < 0.3 else str(rng.randint(low, high))

    def item(low, high, names):
        first, last = sorted((rng.randint(low, high), rng.randint(low, high)))
        step = rng.randint(1, high - low)
        return rng.choice(["*", value(low, high, names), f"{first}-{last}", f"*/{step}", f"{first}-{last}/{step}"])

    while count:
        expression = " ".join(
            ",".join(item(*field) for _ in range(rng.choice([1, 1, 2, 3]))) if rng.random() < 0.7 else "*"
            for field in fields
        )
        try:
            validate_cron(expression)
        except ValidationError:
            continue
        count -= 1
        yield expression


def test_never_fails_on_an_expression_the_validator_accepts():
    described = {expression: describe_schedule(expression) for expression in _standard_cron_expressions(3000)}

    assert len(described) > 2500
    assert all(description.endswith(" (UTC)") and len(description) > 6 for description in described.values())
    assert not [text for text in described.values() if "Sunday through Sunday" in text or "Sunday and Sunday" in text]


@pytest.mark.parametrize("expression", ["*/100 * * * *", "5/15 * * * *", "@daily", "0 0 * * * *"])
def test_a_schedule_that_is_not_standard_cron_is_not_described(expression):
    with pytest.raises(ValueError):
        describe_schedule(expression)


def test_the_description_is_english_and_24_hour_whatever_the_servers_locale(monkeypatch):
    monkeypatch.setattr(locale, "getlocale", lambda *args: ("de_DE", "UTF-8"))
    describe_schedule.cache_clear()

    assert describe_schedule("30 14 * * 1-5") == "At 14:30, Monday through Friday (UTC)"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        (
            "0 0 1 * *",
            at(2026, 10, 15, 8, 0),
            [at(2026, 11, 1), at(2026, 12, 1), at(2027, 1, 1), at(2027, 2, 1), at(2027, 3, 1)],
        ),
        (
            "30 23 31 12 *",
            at(2026, 6, 1),
            [at(year, 12, 31, 23, 30) for year in range(2026, 2031)],
        ),
        (
            "0 12 29 2 *",
            at(2026, 1, 1),
            [at(2028, 2, 29, 12), at(2032, 2, 29, 12), at(2036, 2, 29, 12), at(2040, 2, 29, 12), at(2044, 2, 29, 12)],
        ),
        (
            "0 13 * * 1",  # after a Wednesday: the next five Mondays, across the new year
            at(2026, 12, 30, 12, 0),
            [at(2027, 1, 4, 13), at(2027, 1, 11, 13), at(2027, 1, 18, 13), at(2027, 1, 25, 13), at(2027, 2, 1, 13)],
        ),
        (
            "0 0 31 * sun",  # day 31 or a Sunday
            at(2026, 12, 25),
            [at(2026, 12, 27), at(2026, 12, 31), at(2027, 1, 3), at(2027, 1, 10), at(2027, 1, 17)],
        ),
    ],
)
def test_next_occurrences_cross_months_and_years(expression, after, expected):
    assert next_occurrences(expression, after=after) == expected


def test_next_occurrences_are_strictly_after_and_in_utc():
    on_an_occurrence = at(2026, 11, 26, 9, 0)
    same_moment_elsewhere = on_an_occurrence.astimezone(timezone(timedelta(hours=-5)))

    from_elsewhere = next_occurrences("0 9 * * *", after=same_moment_elsewhere, count=2)
    from_utc = next_occurrences("0 9 * * *", after=on_an_occurrence, count=2)

    assert from_utc == [at(2026, 11, 27, 9), at(2026, 11, 28, 9)]
    assert from_elsewhere == from_utc
    assert all(moment.utcoffset() == timedelta(0) for moment in from_utc + from_elsewhere)
    assert next_occurrences("0 9 * * *", after=at(2026, 11, 26, 8, 59, 59), count=1) == [on_an_occurrence]


def test_next_occurrences_need_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrences("0 9 * * *", after=datetime(2026, 11, 26, 9, 0))


@pytest.mark.parametrize(
    "expression", ["0 13 * * 1", "*/20 9-17 * * mon-fri", "0 0 1,15 * 7", "30 6 * jan,jul 0", "0 12 * * 0-7/3"]
)
def test_next_occurrences_are_when_the_engine_runs_the_rule(expression):
    after = at(2026, 12, 30, 12, 0, 30)
    rule = TriggerRule(type="schedule", schedule=expression, timezone="UTC", enabled=True)

    occurrences = next_occurrences(expression, after=after, count=8)

    engine, moment = [], after  # the engine runs the rule when due, then sets its next run from then
    for _ in range(8):
        moment = next_run_after(rule=rule, now=moment)
        engine.append(moment)
    replayed = schedule_occurrences(expression, since=after, until=occurrences[-1])
    assert occurrences == engine
    assert [int(moment.timestamp()) for moment in occurrences] == replayed.tolist()


@pytest.mark.parametrize(
    ("expression", "timezone", "description"),
    [
        ("0 9 * * 1-5", "Europe/Berlin", "At 09:00, Monday through Friday (Europe/Berlin)"),
        ("30 2 * * *", "America/New_York", "At 02:30 (America/New_York)"),
        ("*/15 * * * *", "Asia/Kolkata", "Every 15 minutes (Asia/Kolkata)"),
        ("0 9 * * 1-5", "UTC", "At 09:00, Monday through Friday (UTC)"),
    ],
)
def test_a_schedule_is_described_in_the_zone_it_is_read_in(expression, timezone, description):
    assert describe_schedule(expression, timezone) == description


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        (  # Berlin's spring-forward night: 02:30 does not exist, it fires at 03:00 CEST
            "30 2 * * *",
            "Europe/Berlin",
            at(2026, 3, 27, 12),
            [at(2026, 3, 28, 1, 30), at(2026, 3, 29, 1), at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)],
        ),
        (  # New York's fall-back night: 01:30 happens twice, it fires on the first (EDT)
            "30 1 * * *",
            "America/New_York",
            at(2026, 10, 30, 12),
            [at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30), at(2026, 11, 3, 6, 30)],
        ),
        (  # 2026-11-26 is a Thursday: Friday, then Monday to Wednesday, 09:00 CET
            "0 9 * * 1-5",
            "Europe/Berlin",
            at(2026, 11, 26, 12),
            [at(2026, 11, 27, 8), at(2026, 11, 30, 8), at(2026, 12, 1, 8), at(2026, 12, 2, 8)],
        ),
    ],
)
def test_next_occurrences_in_a_zone_are_utc_instants(expression, timezone, after, expected):
    occurrences = next_occurrences(expression, after=after, count=4, timezone=timezone)

    assert occurrences == expected
    assert all(moment.utcoffset() == timedelta(0) for moment in occurrences)


@pytest.mark.parametrize(
    ("timezone", "after"),
    [
        ("Europe/Berlin", at(2026, 3, 28, 23)),
        ("Europe/Berlin", at(2026, 10, 24, 23)),
        ("America/New_York", at(2026, 11, 1, 4)),
    ],
)
@pytest.mark.parametrize("expression", ["*/20 * * * *", "30 2 * * *", "0 1,2,3 * * *", "* 1-2 * * *"])
def test_next_occurrences_in_a_zone_are_when_the_engine_runs_the_rule(expression, timezone, after):
    rule = TriggerRule(type="schedule", schedule=expression, timezone=timezone, enabled=True)

    occurrences = next_occurrences(expression, after=after, count=12, timezone=timezone)

    engine, moment = [], after
    for _ in range(12):
        moment = next_run_after(rule=rule, now=moment)
        engine.append(moment)
    replayed = schedule_occurrences(expression, since=after, until=occurrences[-1], timezone=timezone)
    assert occurrences == engine
    assert [int(moment.timestamp()) for moment in occurrences] == replayed.tolist()
