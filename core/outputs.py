"""
Output bodies made by the database. For a page of 50 alerts with their history, building model
instances and running DRF's per-field machinery costs several times the query; here the output
serializer — still the one description of the body, its names, sources and types, and with them
the OpenAPI document — is translated once into SQL that builds each row's JSON object, and the
response splices those texts in as they are (core.renderers.RawJSON). See docs/performance.md,
"The API under load".
"""

from django.db import models
from rest_framework import fields as drf_fields
from rest_framework import serializers
from rest_framework.settings import api_settings

from core.db import iso_datetime_sql
from core.renderers import RawJSON
from core.serializers import EmptyAsNullCharField, EmptyAsNullChoiceField, UtcDateTimeField

ISO_8601 = "iso-8601"

# Which model fields each serializer field may read as they are stored (same JSON value).
_COMPATIBLE = (
    (drf_fields.BooleanField, (models.BooleanField,)),
    (drf_fields.IntegerField, (models.IntegerField, models.AutoField, models.ForeignKey)),
    (drf_fields.FloatField, (models.FloatField,)),
    (drf_fields.ChoiceField, (models.CharField, models.TextField)),
    (drf_fields.CharField, (models.CharField, models.TextField)),
    (drf_fields.JSONField, (models.JSONField,)),
    (drf_fields.ListField, (models.JSONField,)),
    (drf_fields.DateTimeField, (models.DateTimeField,)),
)


def _own(field, base) -> bool:
    """Whether `field` renders exactly as `base` does (its class does not change `to_representation`)."""
    return isinstance(field, base) and type(field).to_representation is base.to_representation


class _RowText(models.Expression):
    """Text the database makes from each row of the query: its SQL names the row's table (the `key`'s alias)."""

    output_field = models.TextField()

    def get_source_expressions(self):
        return [self.key] if hasattr(self, "key") else []

    def set_source_expressions(self, expressions):
        if expressions:
            [self.key] = expressions

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        resolved = self.copy()
        resolved.key = models.F("pk").resolve_expression(query, allow_joins, reuse, summarize, for_save)
        return resolved

    def table(self, compiler) -> str:
        return compiler.quote_name_unless_alias(self.key.alias)


class SQLOutput(_RowText):
    """
    `SQLOutput(Serializer, model=Model)` in `.values(body=…)` gives each row's
    `Serializer(instance).data` as JSON text, made by the database (PostgreSQL or SQLite).

    Every field must read a column of `model` (its `source`), or be a nested `many=True` serializer
    over a reverse foreign key (in the related model's `Meta.ordering`, as a prefetch would read
    it). A field whose output SQL cannot reproduce exactly — a computed or dotted source, a class
    with its own `to_representation`, a format other than ISO 8601 — is refused when this is
    built, so a new field cannot silently differ from the serializer's output (the tests compare
    both on varied rows).
    """

    def __init__(
        self, serializer_class: type[serializers.Serializer], *, model: type[models.Model], kept: dict | None = None
    ):
        super().__init__()
        self.serializer_class, self.model = serializer_class, model
        self._spec = _spec(serializer_class, model, kept or {})
        self._sql: dict[str, str] = {}

    def as_sql(self, compiler, connection):
        return self.sql(self.table(compiler), connection), []

    def sql(self, table: str, connection) -> str:
        """The body's SQL over the rows of `table` (a quoted name or alias), for a hand-written query."""
        if connection.vendor not in self._sql:
            self._sql[connection.vendor] = _object_sql(self._spec, "{table}", connection, depth=0)
        return self._sql[connection.vendor].replace("{table}", table)

    def kept_text(self, name: str) -> "KeptText":
        """
        The nested list `name` as JSON text, made from its related rows: what its kept column must
        hold (`Model.objects.filter(…).update(column=body.kept_text(name))`).
        """
        [source] = [source for field, kind, source in self._spec if field == name and kind == "many"]
        return KeptText(source)

    def kept_entry_sql(self, name: str, row: str, connection) -> str:
        """
        SQL for one element of the nested list `name` as JSON text (PostgreSQL), made from `row`: an
        alias whose columns are named as the related model's. For appending a new entry to the kept
        column in the statement that writes it.
        """
        [source] = [source for field, kind, source in self._spec if field == name and kind == "many"]
        return f"({_object_sql(source[4], row, connection, depth=1)})::text"

    @staticmethod
    def texts(rows, key: str = "body") -> RawJSON:
        """The bodies of a page of rows as one JSON array, for a response (core.renderers splices it in)."""
        return RawJSON(f"[{','.join([row[key] for row in rows])}]")


class KeptText(_RowText):
    """A nested list of each row as JSON text, from its related rows (SQLOutput.kept_text)."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def as_sql(self, compiler, connection):
        value = _list_sql(self.source, self.table(compiler), connection, depth=0)
        return (f"({value})::text" if connection.vendor == "postgresql" else value), []


def _spec(serializer_class, model, kept: dict | None = None) -> list[tuple]:
    """
    (output name, kind, column or nested spec) for each field, checked against the model. `kept`:
    nested lists whose JSON text a column of the model keeps ({"history": "history_json"}).
    """
    kept = dict(kept or {})
    serializer = serializer_class()
    name_of = serializer_class.__name__
    if type(serializer).to_representation is not serializers.Serializer.to_representation:
        raise TypeError(f"{name_of} has its own to_representation.")
    fields = {field.name: field for field in model._meta.get_fields()}
    fields.update({field.attname: field for field in model._meta.concrete_fields})
    spec = []
    for name, field in serializer.fields.items():
        if field.write_only:
            continue
        where = f"{name_of}.{name}"
        if field.source == "*" or "." in field.source or field.source not in fields:
            raise TypeError(f"{where}: source {field.source!r} is not a field of {model.__name__}.")
        model_field = fields[field.source]
        if isinstance(field, serializers.ListSerializer):
            if type(field).to_representation is not serializers.ListSerializer.to_representation:
                raise TypeError(f"{where}: its list class has its own to_representation.")
            if not (model_field.one_to_many and model_field.auto_created):
                raise TypeError(f"{where}: a nested list must read a reverse foreign key.")
            related = model_field.related_model
            nested = _spec(type(field.child), related)
            column = kept.pop(name, None)
            if column is not None and not isinstance(fields.get(column), models.TextField):
                raise TypeError(f"{where}: the column keeping it, {column!r}, must be a TextField of {model.__name__}.")
            spec.append(
                (
                    name,
                    "many",
                    (
                        related,
                        model_field.field.column,
                        model._meta.pk.column,
                        related._meta.ordering,
                        nested,
                        column and fields[column].column,
                    ),
                )
            )
            continue
        spec.append((name, _kind(field, model_field, where), model_field.column))
    if kept:
        raise TypeError(f"{name_of}: {', '.join(kept)} is not a nested list.")
    return spec


def _kind(field, model_field, where: str) -> str:
    if _own(field, EmptyAsNullChoiceField) or _own(field, EmptyAsNullCharField):
        kind = "empty_as_null"
    elif _own(field, drf_fields.DateTimeField) or _own(field, UtcDateTimeField):
        if getattr(field, "format", api_settings.DATETIME_FORMAT) != ISO_8601 or hasattr(field, "timezone"):
            raise TypeError(f"{where}: only ISO 8601 in UTC is supported.")
        kind = "datetime"
    elif _own(field, drf_fields.JSONField) and not field.binary or _own(field, drf_fields.ListField):
        kind = "json"
    elif _own(field, drf_fields.BooleanField):
        kind = "boolean"
    elif any(_own(field, base) for base, _ in _COMPATIBLE):
        kind = "plain"
    else:
        raise TypeError(f"{where}: {type(field).__name__} is not supported.")
    allowed = next(targets for base, targets in _COMPATIBLE if isinstance(field, base))
    if not isinstance(model_field, allowed):
        raise TypeError(f"{where}: {type(model_field).__name__} is not what {type(field).__name__} renders as is.")
    return kind


def _object_sql(spec, table: str, connection, *, depth: int) -> str:
    quote, postgres = connection.ops.quote_name, connection.vendor == "postgresql"
    if connection.vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(connection.vendor)
    pairs = []
    for name, kind, source in spec:
        if kind == "many":
            value = _list_sql(source, table, connection, depth=depth)
            kept_column = source[-1]
            if kept_column:  # NULL: not kept (yet), made from the rows
                kept = f"{table}.{quote(kept_column)}"
                value = f"COALESCE({kept}::json, {value})" if postgres else f"COALESCE(json({kept}), {value})"
        else:
            column = f"{table}.{quote(source)}"
            if kind == "datetime":
                value = iso_datetime_sql(connection.vendor, column)
            elif kind == "empty_as_null":
                value = f"NULLIF({column}, '')"
            elif kind == "json" and not postgres:
                value = f"json({column})"
            elif kind == "boolean" and not postgres:
                value = f"json(CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END)"
            else:
                value = column
        pairs.append(f"'{name}', {value}")
    body = ", ".join(pairs)
    if not postgres:
        return f"json_object({body})"
    return f"json_build_object({body})" + ("::text" if depth == 0 else "")  # text: psycopg would parse json


def _list_sql(source, table: str, connection, *, depth: int) -> str:
    """A nested list's JSON array, made from its related rows in their model's ordering."""
    quote = connection.ops.quote_name
    related, fk_column, pk_column, ordering, nested, _kept_column = source
    alias = f"_r{depth}"
    related_table = quote(related._meta.db_table)
    element = _object_sql(nested, alias, connection, depth=depth + 1)
    order = ", ".join(
        f"{alias}.{quote(related._meta.get_field(o.lstrip('-')).column)}{' DESC' if o.startswith('-') else ''}"
        for o in ordering
    )
    rows = f"FROM {related_table} {alias} WHERE {alias}.{quote(fk_column)} = {table}.{quote(pk_column)}"
    if connection.vendor == "postgresql":
        return f"array_to_json(ARRAY(SELECT {element} {rows} ORDER BY {order}))"
    # json_group_array keeps the order of the rows it is given
    return f"(SELECT json_group_array(json(_e.v)) FROM (SELECT {element} AS v {rows} ORDER BY {order}) _e)"
