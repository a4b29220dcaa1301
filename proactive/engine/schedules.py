"""
What a schedule rule's cron expression means to a person: a plain-English description, and the
next times it occurs — the times the engine runs the rule. Pure: no database.

The description comes from cron-descriptor, which misreads or fails on some expressions that
standard cron allows, so each field is first handed to it in a form it reads right.
"""

from datetime import UTC, datetime
from functools import lru_cache

from cron_descriptor import ExpressionDescriptor

from proactive.engine.conditions import next_occurrence
from proactive.validators import cron_field_values

_EVERY_DAY_OF_MONTH = frozenset(range(1, 32))
_EVERY_WEEKDAY = frozenset(range(7))


@lru_cache(maxsize=1024)
def describe_schedule(expression: str, timezone: str = "UTC") -> str:
    """
    "At 09:00, Monday through Friday (Europe/Berlin)" for "0 9 * * mon-fri" read in Europe/Berlin.
    Raises ValueError for an expression that is not standard cron (a schedule saved before that was
    enforced).
    """
    minutes, hours, days, months, weekdays = cron_field_values(expression)
    minute, hour, day, month, weekday = expression.split()
    # With both day fields restricted, cron runs on the days either allows (so do croniter and the
    # engine); cron-descriptor would write "on day 1 of the month, only on Monday".
    either_day = day != "*" and weekday != "*"
    if either_day and (days == _EVERY_DAY_OF_MONTH or weekdays == _EVERY_WEEKDAY):
        day = weekday = "*"
        either_day = False

    descriptor = _Descriptor(
        " ".join(
            (
                _readable(minute, minutes),
                _readable(hour, hours),
                _readable(day, days),
                _readable(month, months),
                "*" if weekday == "*" else _weekday_field(weekdays),
            )
        ),
        locale_code="en_US",  # not the server's locale
        use_24hour_time_format=True,
    )
    description = descriptor.get_description()
    if either_day:
        on_days = descriptor.transform_verbosity(descriptor.get_day_of_month_description(), False)
        on_weekdays = descriptor.get_day_of_week_description()  # ", only on Monday", ", Monday through Friday"
        or_weekdays = " or " + on_weekdays.removeprefix(", ").removeprefix("only ")
        description = description.replace(on_days + on_weekdays, on_days + or_weekdays)
    return f"{description} ({timezone})"


def _readable(text: str, values: frozenset[int]) -> str:
    """
    The field as written, but a list with a range, a step or a * in it (cron-descriptor fails on
    some of those) as the values it allows.
    """
    items = text.split(",")
    if len(items) == 1 or all(item.isalnum() for item in items):
        return text
    if "*" in items:
        return "*"
    return ",".join(str(value) for value in sorted(values))


def _weekday_field(weekdays: frozenset[int]) -> str:
    """
    The days of the week (Sunday = 0) from Monday to Sunday (7), three or more in a row as a range.
    cron-descriptor reads "0-7" (every day) as "Sunday through Sunday", "0,7" as "Sunday and
    Sunday", and fails on "*/7".
    """
    if weekdays == _EVERY_WEEKDAY:
        return "*"
    runs: list[list[int]] = []
    for weekday in sorted(weekday or 7 for weekday in weekdays):
        if runs and weekday == runs[-1][-1] + 1:
            runs[-1].append(weekday)
        else:
            runs.append([weekday])
    return ",".join(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)) for run in runs)


class _Descriptor(ExpressionDescriptor):
    def get_minutes_description(self):
        description = super().get_minutes_description()
        if not description and not self._expression_parts[2].startswith("*"):
            # Minute 0 goes unsaid: "0 9-17 * * *" would be "Between 09:00 and 17:59", as if every minute.
            return "at 0 minutes past the hour"
        return description


def next_occurrences(expression: str, *, after: datetime, count: int = 5, timezone: str = "UTC") -> list[datetime]:
    """
    The next `count` occurrences strictly after `after` (timezone-aware), in UTC, the cron read in
    `timezone`: one after the other, as the engine sets a rule's next run each time it has run it.
    """
    if after.utcoffset() is None:
        raise ValueError("`after` must be timezone-aware.")
    occurrences = []
    moment = after.astimezone(UTC)  # croniter reads the expression in the zone of the time it starts from
    for _ in range(count):
        moment = next_occurrence(expression, moment, timezone)
        occurrences.append(moment)
    return occurrences
