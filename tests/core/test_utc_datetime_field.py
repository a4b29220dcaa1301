"""core.serializers.UtcDateTimeField writes every time exactly as DRF's DateTimeField does."""

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone as django_timezone
from rest_framework import serializers

from core.serializers import UtcDateTimeField

rng = random.Random(25)
TIMES = [
    datetime(2026, 11, 27, 13, 0, tzinfo=UTC),  # no fraction
    datetime(2026, 11, 27, 13, 0, 0, 120, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # Berlin springs forward at 01:00 UTC
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 27, 14, 0, tzinfo=ZoneInfo("Europe/Berlin")),  # aware, another zone
    datetime(2026, 11, 27, 13, 0, tzinfo=timezone(timedelta(0))),  # UTC, another tzinfo object
    datetime(2026, 11, 27, 13, 0, tzinfo=ZoneInfo("UTC")),
    *(
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6))
        for _ in range(200)
    ),
]


def rendered(field, values):
    return [_written(field, value) for value in values]


def _written(field, value):
    try:
        return field.to_representation(value)
    except serializers.ValidationError as error:  # the calendar's ends shown in another zone: DRF refuses, so must it
        return error.detail


@pytest.mark.parametrize(
    "options",
    [{}, {"format": "%Y-%m-%d %H:%M"}, {"default_timezone": ZoneInfo("Asia/Kolkata")}, {"default_timezone": UTC}],
)
def test_it_writes_what_drf_writes(options):
    assert rendered(UtcDateTimeField(**options), TIMES) == rendered(serializers.DateTimeField(**options), TIMES)


def test_it_writes_what_drf_writes_while_another_zone_is_active():
    with django_timezone.override(ZoneInfo("America/New_York")):
        ours = rendered(UtcDateTimeField(), TIMES)
        assert ours == rendered(serializers.DateTimeField(), TIMES)
    assert ours[0] == "2026-11-27T08:00:00-05:00"  # the active zone's offset, not Z


def test_in_utc_it_writes_z_and_the_microseconds_only_when_there_are_some():
    assert rendered(UtcDateTimeField(), TIMES[:2]) == ["2026-11-27T13:00:00Z", "2026-11-27T13:00:00.000120Z"]
    assert UtcDateTimeField().to_representation(None) is None
