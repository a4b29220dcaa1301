"""
When a channel's notices wait: quiet hours and the daily digest, read on the tenant's clock.
Pure functions of instants and wall times; nothing here touches the database.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, wall: time, zone: str) -> datetime:
    """
    The instant (UTC) the zone's clock shows `wall` on `day`. A time the clock shows twice (the
    autumn change) is its first pass; a time it skips (the spring change) is the moment the clock
    jumps past it.
    """
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    moment = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the gap, on the old offset
    moment = moment.replace(second=0, microsecond=0)
    while moment.astimezone(tz).replace(tzinfo=None) < naive:  # clocks change on a minute
        moment += timedelta(minutes=1)
    return moment


def in_quiet_hours(wall: time, *, start: time, end: time) -> bool:
    """From `start` (included) to `end` (excluded); past midnight when `end` comes first (22:00–07:00)."""
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def quiet_until(at: datetime, *, start: time, end: time, zone: str) -> datetime | None:
    """When the quiet hours that `at` falls in end (UTC); None when `at` is not in quiet hours."""
    local = at.astimezone(ZoneInfo(zone))
    wall = local.time().replace(tzinfo=None)
    if not in_quiet_hours(wall, start=start, end=end):
        return None
    end_day = local.date() if wall < end else local.date() + timedelta(days=1)
    return local_instant(end_day, end, zone)


def next_daily_at(after: datetime, *, hour: int, zone: str) -> datetime:
    """The first instant strictly after `after` at which the zone's clock shows `hour`:00."""
    day = after.astimezone(ZoneInfo(zone)).date()
    for offset in range(3):
        candidate = local_instant(day + timedelta(days=offset), time(hour), zone)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a day always has the hour, or the moment it was skipped")
