"""
Cron read in a time zone: the fields are wall-clock times there, and each occurrence is an instant,
an aware datetime in UTC. Pure: no database. (UTC itself is read by `conditions`, without any of this.)

Where clocks change, a wall-clock time can be missing or repeated:

- an occurrence whose local time does not exist (clocks spring forward over it) fires once, at the
  first valid time after the gap — 03:00 in Europe/Berlin on its spring-forward day. Several missing
  occurrences collapse into that one firing;
- an occurrence in the repeated hour (clocks fall back) fires once, on the first pass.

So the occurrences are `fire_at(m)` for every local minute m the cron matches: m's first instant, or
the end of the gap m falls in. `fire_at` never decreases as m grows, which is what lets the searches
below walk local time with croniter and stop at the first instant past `now` (or the last before it).
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

MINUTE = timedelta(minutes=1)
# The offset is sampled this often to find where it changes: no zone has changed it twice within an hour.
_OFFSET_SAMPLE = timedelta(hours=1)


def wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """The local minute `moment` falls in, naive (fold 0: croniter walks wall-clock minutes)."""
    return moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)


def fire_at(local: datetime, zone: ZoneInfo) -> datetime:
    """When the naive local minute `local` fires in `zone`, in UTC."""
    instant = local.replace(tzinfo=zone).astimezone(UTC)  # fold 0: the first pass through a repeated hour
    if wall_clock(instant, zone) == local:
        return instant
    return _gap_end(local, zone)


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant clocks jumped over `local` (a time that does not exist there): the first valid time after it."""
    # Read with the offset after the jump (fold 1) the time lands before the jump, read with the one
    # before it (fold 0) after the jump.
    return _offset_change(
        zone, local.replace(tzinfo=zone, fold=1).astimezone(UTC), local.replace(tzinfo=zone).astimezone(UTC)
    )


def _offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first whole second in (low, high] whose offset is not low's (offsets change on whole seconds)."""
    low -= timedelta(microseconds=low.microsecond)  # whole seconds from here on
    offset = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle -= timedelta(microseconds=middle.microsecond)
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def occurrences_after(schedule: str, after: datetime, timezone: str) -> Iterator[datetime]:
    """Every occurrence strictly after `after`, in order, each instant once."""
    zone = ZoneInfo(timezone)
    cron = croniter(schedule, wall_clock(after, zone))
    last = after
    while True:
        instant = fire_at(cron.get_next(datetime), zone)
        # Earlier minutes of a repeated hour (now on its second pass), or a gap's collapsed occurrences.
        if instant > last:
            last = instant
            yield instant


@lru_cache(maxsize=4096)
def next_occurrence_in_zone(schedule: str, now: datetime, timezone: str) -> datetime:
    """The first occurrence strictly after `now` (a UTC instant), the cron read in `timezone`."""
    return next(occurrences_after(schedule, now, timezone))


def latest_occurrence_in_zone(schedule: str, now: datetime, timezone: str) -> datetime:
    """The most recent occurrence at or before `now`, the cron read in `timezone`."""
    zone = ZoneInfo(timezone)
    # On the second pass through a repeated hour, its minutes after now's wall-clock time already fired
    # on the first pass: walk back from now read with the first pass's offset.
    now = now.astimezone(UTC)
    first_pass_offset = now.astimezone(zone).replace(fold=0).utcoffset()
    start = (now + first_pass_offset).replace(tzinfo=None, second=0, microsecond=0) + MINUTE
    cron = croniter(schedule, start)
    while True:
        instant = fire_at(cron.get_prev(datetime), zone)
        if instant <= now:
            return instant


def offset_changes(timezone: str, *, since: datetime, until: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    """Where the zone's UTC offset changes in (since, until]: (the instant, the offset before, the offset after)."""
    zone = ZoneInfo(timezone)
    changes = []
    moment, offset = since, since.astimezone(zone).utcoffset()
    while moment < until:
        later = min(moment + _OFFSET_SAMPLE, until)
        later_offset = later.astimezone(zone).utcoffset()
        if later_offset != offset:
            changes.append((_offset_change(zone, moment, later), offset, later_offset))
        moment, offset = later, later_offset
    return changes
