"""Small SQL helpers for the hot paths where building Django model instances costs more than the query."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache

from django.db import InterfaceError, OperationalError, connection, models
from django.db.models import Lookup

BATCH_SIZE = 1000
# The errors of a database connection that went away (a restart, a network cut): not the data's fault.
DATABASE_LOST = (OperationalError, InterfaceError)


class AnyOf(Lookup):
    """
    `id__any=[…]`: `id = ANY(%s)` with the values as one array parameter on PostgreSQL, where
    `id__in` sends a placeholder per value — with 1,000 ids, the driver's parsing of the query
    text costs more than the lookup. Elsewhere, IN. Registered on integer fields (core's ready()).
    """

    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [[int(item) for item in value]]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _, rhs_params = self.process_rhs(compiler, connection)
        values = rhs_params[0]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", []
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


def use_iso_timestamp_loader(sender, connection, **kwargs):
    """
    On each new PostgreSQL connection (a `connection_created` receiver): read `timestamptz` values
    in UTC with `datetime.fromisoformat`. Django's loader parses each with psycopg's pure-Python
    regex, 4.85 µs a value here against 0.65 µs: a chunk of the engine loads thousands (its series'
    points, the alerts it resolves). Same values, same zone; in any other zone, Django's loader.
    """
    if connection.vendor != "postgresql":
        return
    from psycopg.pq import Format

    adapters = connection.connection.adapters
    django_loader = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)
    if not issubclass(django_loader, _IsoTimestamptz):  # a pooled connection, handed out again
        adapters.register_loader("timestamptz", _iso_loader(django_loader))


class _IsoTimestamptz:
    def load(self, data):
        # PostgreSQL writes ISO 8601 (DateStyle ISO, which psycopg requires) in the session's zone,
        # which Django sets to its own: `2026-11-27 13:00:31.5+00` in UTC. Elsewhere, an hour that
        # repeats needs Django's conversion (its `fold`), so only UTC takes the short way.
        if self.timezone is UTC:
            try:
                value = datetime.fromisoformat(str(data, "ascii"))
            except ValueError:  # BC, year 10000 and later, infinity: Django's loader says what is wrong
                pass
            else:
                if value.tzinfo is UTC:
                    return value
        return super().load(data)


@lru_cache
def _iso_loader(django_loader: type) -> type:
    # Keeps Django's `timezone`, so its cursors see their zone's loader already in place.
    return type("IsoTimestamptzLoader", (_IsoTimestamptz, django_loader), {"timezone": django_loader.timezone})


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()  # full precision, unlike DjangoJSONEncoder's milliseconds
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_rows(fields: dict[str, models.Field], columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """
    Rows as one JSON array of objects, for jsonb_to_recordset. The values of time columns are
    written as text once per distinct time: a batch's thousands of rows share a few (a tick's
    `now`), and json.dumps would call back into Python for each of them (a third of the engine's
    bookkeeping statement).
    """
    timed = [i for i, column in enumerate(columns) if isinstance(fields[column], models.DateField)]
    texts: dict[date, str] = {}
    document = []
    for row in rows:
        if timed:
            row = list(row)
            for i in timed:
                value = row[i]
                if isinstance(value, date):
                    if (text := texts.get(value)) is None:
                        text = texts[value] = value.isoformat()
                    row[i] = text
        document.append(dict(zip(columns, row, strict=True)))
    return json.dumps(document, default=_json_default, allow_nan=False)


def insert_rows(
    *,
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence],
    suffix: str = "",
    returning: Sequence[str] = (),
    batch_size: int = BATCH_SIZE,
    then: tuple[str, list] | None = None,
) -> list[tuple]:
    """
    INSERT many rows of plain Python values into `model`'s table; returns the RETURNING rows.
    `columns` are column names (`tenant_id`); `suffix` is appended verbatim, e.g.
    "ON CONFLICT DO NOTHING". `then` (PostgreSQL only): a statement and its parameters that run in
    the same statement as the insert, reading the inserted rows (their `returning` columns) from
    `inserted` — e.g. an INSERT of rows that belong to them.

    On PostgreSQL a batch travels as one JSON document (INSERT … SELECT FROM jsonb_to_recordset):
    with thousands of placeholders, the driver's parsing and escaping of parameters costs more
    than the insert itself, while json.dumps is fast.
    """
    rows = list(rows)
    fields = {field.column: field for field in model._meta.concrete_fields}
    table = connection.ops.quote_name(model._meta.db_table)
    quoted_columns = ", ".join(connection.ops.quote_name(column) for column in columns)
    returning_sql = f" RETURNING {', '.join(returning)}" if returning else ""
    postgres = connection.vendor == "postgresql"
    if postgres:
        record = ", ".join(f"{connection.ops.quote_name(c)} {fields[c].db_type(connection)}" for c in columns)
        sql = (
            f"INSERT INTO {table} ({quoted_columns}) SELECT {quoted_columns} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) {suffix}{returning_sql}"
        )
        if then is not None:
            sql = f"WITH inserted AS ({sql}), followed AS ({then[0]}) SELECT {', '.join(returning)} FROM inserted"
    elif then is not None:
        raise NotImplementedError("insert_rows(then=…) needs PostgreSQL")
    returned: list[tuple] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        if postgres:
            params = [_json_rows(fields, columns, batch), *(then[1] if then else ())]
        else:
            placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
            sql = (
                f"INSERT INTO {table} ({quoted_columns}) "
                f"VALUES {', '.join([placeholder] * len(batch))} {suffix}{returning_sql}"
            )
            params = [
                fields[column].get_db_prep_save(value, connection)
                for row in batch
                for column, value in zip(columns, row, strict=True)
            ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if returning:
                returned.extend(cursor.fetchall())
    return returned


def update_rows(
    *,
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence],
    batch_size: int = BATCH_SIZE,
    keep_if_none: Sequence[str] = (),
) -> None:
    """
    Set `columns` of many rows, each to its own values: `rows` are (pk, value, value, …) of plain
    Python values; a None in a column of `keep_if_none` leaves that row's value as it is (so the
    caller need not read it). One UPDATE … FROM jsonb_to_recordset per batch on PostgreSQL;
    elsewhere Django's bulk_update.
    """
    rows = list(rows)
    if not rows:
        return
    if connection.vendor != "postgresql":
        groups: dict[tuple[str, ...], list] = {}
        for pk, *values in rows:
            obj = model(pk=pk)
            for column, value in zip(columns, values, strict=True):
                setattr(obj, model._meta.get_field(column).attname, value)
            kept = tuple(c for c, v in zip(columns, values, strict=True) if c in keep_if_none and v is None)
            groups.setdefault(kept, []).append(obj)
        for kept, objects in groups.items():
            names = [model._meta.get_field(c).name for c in columns if c not in kept]
            model.objects.bulk_update(objects, names, batch_size=batch_size)
        return
    fields = {field.column: field for field in model._meta.concrete_fields}
    pk_column = model._meta.pk.column
    q = connection.ops.quote_name
    record = ", ".join(f"{q(c)} {fields[c].db_type(connection)}" for c in (pk_column, *columns))
    table = q(model._meta.db_table)
    assignments = ", ".join(
        f"{q(c)} = COALESCE(r.{q(c)}, {table}.{q(c)})" if c in keep_if_none else f"{q(c)} = r.{q(c)}" for c in columns
    )
    sql = (
        f"UPDATE {table} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
        f"WHERE {table}.{q(pk_column)} = r.{q(pk_column)}"
    )
    for start in range(0, len(rows), batch_size):
        document = _json_rows(fields, (pk_column, *columns), rows[start : start + batch_size])
        with connection.cursor() as cursor:
            cursor.execute(sql, [document])


# --- Rows for API pages ---------------------------------------------------------------------------


def iso_datetime_sql(vendor: str, column: str) -> str:
    """
    SQL for a timestamp column as the API writes it (DRF's ISO 8601 in UTC): `2026-11-26T14:00:00Z`,
    with `.ffffff` only when there are microseconds.
    """
    if vendor == "postgresql":  # one to_char (three cost ~0.6 ms more per page, and more planning)
        return f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    if vendor == "sqlite":  # Django stores `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, microseconds only if any
        return f"(replace({column}, ' ', 'T') || 'Z')"
    raise NotImplementedError(vendor)
