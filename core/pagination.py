import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import DateTimeField, F, Field, Func, Value
from django.db.models.lookups import GreaterThan, LessThan
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, _reverse_ordering
from rest_framework.response import Response

from core.validators import reject_unknown_fields

# What a cursor this API gives out looks like: base64 text.
_CURSOR_PATTERN = re.compile(r"[A-Za-z0-9+/=]{1,1000}")
_ID_SUFFIX = re.compile(r"\|[0-9]{1,19}\Z")
_LARGEST_ID = 2**63 - 1


def _tie_breaker(name: str, ordering: Sequence[str]) -> str | None:
    """The id when `ordering` is a field and the id, sorted the same way (one row comparison serves both)."""
    if len(ordering) == 1:
        return None
    first, second = ordering
    if second.lstrip("-") != "id" or first.startswith("-") != second.startswith("-"):
        raise ImproperlyConfigured(f"{name}.ordering: one field, or one and the id the same way.")
    return "id"


class NewestFirstCursorPagination(CursorPagination):
    """
    Keyset pagination: stable while new rows arrive, which is what an alert feed needs.
    Returns {"results": [...], "next": url|null, "previous": url|null} plus `envelope_fields`.

    A cursor holds the last row's whole sort key — `ordering` is one unique field, or a field and
    the id that breaks its ties — and a page is the rows strictly beyond it, found by the index
    that serves the ordering. DRF's own cursors hold only the first field and count the tied rows
    past it with an OFFSET capped at 1,000: a tick raises thousands of alerts at one moment, and
    paging through those repeated pages without end.

    List views set it as their `pagination_class`: the OpenAPI schema then documents the envelope
    and the `cursor` and `limit` parameters from this same class.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")
    invalid_cursor_message = "Invalid cursor: use the `next` or `previous` link of a previous page."
    # Extra top-level fields of the envelope (name → OpenAPI schema), e.g. the metric of a series.
    envelope_fields: dict[str, dict] = {}
    # For plain rows that carry their position already as a cursor holds it (made by the database:
    # alerts.selectors.alert_body_page): that row key. Loading 51 timestamps into datetime objects
    # only to turn them back into text costs a page more than the rest of its cursor work.
    position_key: str | None = None
    # The id field that breaks the first field's ties, or None: from `ordering`, when a class is made.
    tie_breaker = _tie_breaker("NewestFirstCursorPagination", ordering)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.tie_breaker = _tie_breaker(cls.__name__, cls.ordering)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:  # not ²
            raise ValidationError({"limit": [f"Must be a whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None and not _CURSOR_PATTERN.fullmatch(raw):  # blank, whitespace, NUL, …
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None
        # Keyset cursors carry a position and no offset.
        if cursor is not None and (cursor.offset or cursor.position is None or "\x00" in cursor.position):
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return cursor

    def _key(self, position: str) -> tuple[str, int | None]:
        """A cursor's position as the sort key it holds: the first field's text, and the id if tie-broken."""
        if self.tie_breaker is None:
            return position, None
        if not _ID_SUFFIX.search(position):
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        value, key = position.rsplit("|", 1)
        if int(key) > _LARGEST_ID:
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return value, int(key)

    def _position(self, item) -> str:
        """The item's sort key as a cursor holds it: the first field's text, then `|id` if tie-broken."""
        if self.position_key is not None:
            return item[self.position_key]
        value = super()._get_position_from_instance(item, self.ordering)
        if self.tie_breaker is None:
            return value
        tie = item[self.tie_breaker] if isinstance(item, dict) else getattr(item, self.tie_breaker)
        return f"{value}|{tie}"

    def _beyond(self, queryset, after: tuple[str, int | None], *, reverse: bool):
        """The rows strictly after the key `after` in the page's order (before it, reading backwards)."""
        first, tie_breaker = self.ordering[0], self.tie_breaker
        field = first.lstrip("-")
        lookup = GreaterThan if first.startswith("-") == reverse else LessThan
        model_field = queryset.model._meta.get_field(field)
        value, key = after
        if isinstance(model_field, DateTimeField):
            value = cursor_time(value)
        if tie_breaker is None:
            return queryset.filter(lookup(F(field), Value(value, model_field)))
        # A row comparison, (triggered_at, id) < (%s, %s): the index on the ordering finds the page's
        # first row directly, however many rows share its moment.
        return queryset.filter(
            lookup(
                _row(F(field), F(tie_breaker)),
                _row(Value(value, model_field), Value(key, queryset.model._meta.get_field(tie_breaker))),
            )
        )

    def paginate_queryset(self, queryset, request, view=None):
        def fetch(after: tuple[str, int | None] | None, reverse: bool, limit: int) -> list:
            rows = queryset.order_by(*(_reverse_ordering(self.ordering) if reverse else self.ordering))
            if after is not None:
                rows = self._beyond(rows, after, reverse=reverse)
            return list(rows[:limit])

        return self.paginate_rows(fetch, request)

    def paginate_rows(self, fetch: Callable[[tuple[str, int | None] | None, bool, int], list], request) -> list:
        """
        A page of what `fetch(after, reverse, limit)` reads: at most `limit` rows strictly after the
        cursor's key `after` — (the first field's text, the id or None; None: from the start) — in
        this paginator's order, or in the reverse order when `reverse`. For a page read by
        hand-written SQL (alerts.selectors.alert_body_page), with the same cursors and links as a
        queryset's. A key `fetch` cannot read is a ValidationError: a 400 naming the cursor.
        """
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.cursor = self.decode_cursor(request)
        position = self.cursor.position if self.cursor else None
        reverse = bool(self.cursor and self.cursor.reverse)
        self.after = None if position is None else self._key(position)
        try:
            rows = fetch(self.after, reverse, self.page_size + 1)
        except DjangoValidationError:  # a forged cursor whose position is not of the column's type
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None
        self.page = rows[: self.page_size]
        more = len(rows) > self.page_size
        if reverse:
            self.page.reverse()
        # A cursor's own row lies on the other side of it: a page reached by one has a way back.
        self.has_next, self.has_previous = (position is not None, more) if reverse else (more, position is not None)
        self.display_page_controls = self.has_next or self.has_previous
        return self.page

    def get_next_link(self):
        if hasattr(self, "_sequence_links"):
            return self._sequence_links[0]
        if not self.has_next:
            return None
        position = self._position(self.page[-1]) if self.page else self._over(reverse=False)
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=position))

    def get_previous_link(self):
        if hasattr(self, "_sequence_links"):
            return self._sequence_links[1]
        if not self.has_previous:
            return None
        position = self._position(self.page[0]) if self.page else self._over(reverse=True)
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=position))

    def _over(self, *, reverse: bool) -> str:
        """
        The cursor's position moved one id back, so that reading from it in the direction `reverse`
        takes the cursor's own row too. An empty page (its rows deleted since its cursor was made)
        links back to the page the cursor came from whole, that page's edge row included.
        """
        if self.tie_breaker is None:
            return self.cursor.position
        value, key = self.after
        reads_greater = self.ordering[0].startswith("-") == reverse  # as _beyond compares
        return f"{value}|{max(key - 1, 0) if reads_greater else min(key + 1, _LARGEST_ID)}"

    def paginate_sequence(self, items: Sequence, request, *, key: Callable[[object], datetime]) -> list:
        """
        Page a list that is already in this paginator's order (newest first, `key` unique and
        descending), with the same cursors and links as a queryset: for series that do not come
        from one table (the daily usage metrics).
        """
        self.request = request
        self.base_url = request.build_absolute_uri()
        size = self.get_page_size(request)
        cursor = self.decode_cursor(request)
        keys = [key(item) for item in items]
        position = cursor_time(cursor.position) if cursor is not None else None
        if cursor is not None and cursor.reverse:  # the page just newer than `position`
            end = sum(1 for k in keys if position is None or k > position)
            start = max(0, end - size)
        else:
            start = sum(1 for k in keys if position is not None and k >= position)
            end = start + size
        page = list(items[start:end])
        self._sequence_links = (
            self._sequence_link(keys[end - 1], reverse=False) if page and end < len(items) else None,
            self._sequence_link(keys[start], reverse=True) if page and start > 0 else None,
        )
        return page

    def _sequence_link(self, position: datetime, *, reverse: bool) -> str:
        return self.encode_cursor(Cursor(offset=0, reverse=reverse, position=position.isoformat()))

    def get_paginated_response(self, data, **envelope):
        reject_unknown_fields(envelope, allowed=self.envelope_fields, what="envelope")
        return Response(
            {**envelope, "results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": ["string", "null"], "format": "uri"}  # OpenAPI 3.1
        return {
            "type": "object",
            "required": [*self.envelope_fields, "results", "next", "previous"],
            "properties": {
                **self.envelope_fields,
                "results": schema,
                "next": {**link, "description": "The next (older) page; null on the last page."},
                "previous": {**link, "description": "The previous (newer) page; null on the first page."},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the cursor in a `next` or `previous` link. "
                "Omit for the first page.",
                "schema": {"type": "string", "minLength": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
            },
        ]


def paginated_response(
    *, request, view, pagination_class, queryset=None, fetch=None, serializer_class=None, represent=None, envelope=None
):
    """
    A page of `queryset` — or of what `fetch` reads (NewestFirstCursorPagination.paginate_rows) — in
    `pagination_class`'s envelope, its items rendered by `serializer_class`, or by `represent(items)`
    for plain rows (see core.outputs).
    """
    paginator = pagination_class()
    if fetch is not None:
        page = paginator.paginate_rows(fetch, request)
    else:
        page = paginator.paginate_queryset(queryset, request, view=view)
    if represent is not None:
        data = represent(page)
    else:
        data = serializer_class(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data, **(envelope or {}))


def cursor_time(text: str) -> datetime:
    """
    A time a cursor holds, in UTC. One the API did not write — naive, not a time, or with an offset
    that leaves the calendar (or that PostgreSQL refuses, ±16:00 and beyond) — is an invalid cursor.
    """
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(text)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError({"cursor": [NewestFirstCursorPagination.invalid_cursor_message]}) from None


def _row(*expressions) -> Func:
    """A row value, `(a, b)`: compared as a whole, column by column."""
    return Func(*expressions, function="", output_field=Field())
