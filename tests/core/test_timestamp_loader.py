"""core.db's timestamptz loader reads every time PostgreSQL can send as Django's own loader does."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format

from core.db import _iso_loader, use_iso_timestamp_loader

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a psycopg loader"),
]


def _loaders():
    connection.ensure_connection()
    adapters = connection.connection.adapters
    ours = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)
    return ours, ours.__bases__[-1]  # the one it replaced: Django's loader for the connection's zone


def _texts(values: list[datetime]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM unnest(%s::timestamptz[]) AS t", [values])
        return [row[0] for row in cursor.fetchall()]


def test_a_new_connection_reads_times_with_it_once():
    ours, django_loader = _loaders()

    assert ours.__name__ == "IsoTimestamptzLoader"
    assert django_loader.__module__ == "django.db.backends.postgresql.psycopg_any"
    use_iso_timestamp_loader(sender=None, connection=connection)  # a pooled connection, handed out again
    assert _loaders()[0] is ours


def test_in_another_zone_the_repeated_hour_reads_as_djangos_loader_reads_it():
    paris = type("ParisLoader", (BaseTzLoader,), {"timezone": ZoneInfo("Europe/Paris")})  # Django's, in Paris
    new, old = _iso_loader(paris)(1184, connection.connection), paris(1184, connection.connection)
    # 02:30 twice on 2026-10-25, at +02 and then at +01: whatever Django makes of each, so does it.
    for text in (b"2026-10-25 02:30:00+02", b"2026-10-25 02:30:00+01", b"2026-10-25 01:30:00+00"):
        value, django_value = new.load(text), old.load(text)
        assert (value.astimezone(UTC), value.fold, value.tzinfo) == (
            django_value.astimezone(UTC),
            django_value.fold,
            django_value.tzinfo,
        )


def test_it_reads_what_djangos_loader_reads_fraction_lengths_old_years_and_leap_days_included():
    ours, django_loader = _loaders()
    rng = random.Random(15)
    start = datetime(1, 1, 1, tzinfo=UTC)
    span = (datetime(9999, 12, 31, tzinfo=UTC) - start) // timedelta(seconds=1)
    values = [start + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6)) for _ in range(500)]
    values += [
        datetime(2026, 11, 27, 13, 0, tzinfo=UTC),  # no fraction: `…13:00:00+00`
        datetime(2026, 11, 27, 13, 0, 0, 500000, tzinfo=UTC),  # `.5`
        datetime(2026, 11, 27, 13, 0, 0, 120, tzinfo=UTC),  # `.00012`
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(99, 1, 1, tzinfo=UTC),  # a year of two digits, written `0099`
        datetime(1, 1, 1, tzinfo=UTC),
    ]
    texts = _texts(values)
    new, old = ours(1184, connection.connection), django_loader(1184, connection.connection)

    read = [new.load(text.encode()) for text in texts]

    assert read == [old.load(text.encode()) for text in texts] == values
    assert {value.tzinfo for value in read} == {old.load(texts[0].encode()).tzinfo}
    with connection.cursor() as cursor:  # and through a query, as the ORM reads them
        cursor.execute("SELECT t FROM unnest(%s::timestamptz[]) AS t", [values])
        assert [row[0] for row in cursor.fetchall()] == values


@pytest.mark.parametrize("value", ["infinity", "-infinity", "0044-03-15 12:00:00+00 BC", "12026-01-01 00:00:00+00"])
def test_times_python_cannot_hold_fail_as_they_did(value):
    with connection.cursor() as cursor:
        with pytest.raises(DataError, match="timestamp too"):
            cursor.execute("SELECT %s::timestamptz", [value])
            cursor.fetchone()


def test_it_leaves_other_databases_alone():
    class Other:
        vendor = "sqlite"

    assert use_iso_timestamp_loader(sender=None, connection=Other()) is None
