import re
from collections.abc import Callable, Sequence
from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from core.validators import reject_unknown_fields

# What a cursor this API gives out looks like: base64 text.
_CURSOR_PATTERN = re.compile(r"[A-Za-z0-9+/=]{1,1000}")


class NewestFirstCursorPagination(CursorPagination):
    """
    Cursor pagination: stable while new rows arrive, which is what an alert feed needs.
    Returns {"results": [...], "next": url|null, "previous": url|null} plus `envelope_fields`.

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
    # For a queryset of plain rows that carry the ordering's first field already as text (made by
    # the database, e.g. core.db.IsoDateTime): that row key. Loading 51 timestamps into datetime
    # objects only to turn them back into text costs a page more than the rest of its cursor work.
    position_key: str | None = None

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
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
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return cursor

    def _get_position_from_instance(self, instance, ordering):
        if self.position_key is not None:
            return instance[self.position_key]
        return super()._get_position_from_instance(instance, ordering)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError:  # a forged cursor whose position is not of the column's type
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None

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
        position = None
        if cursor is not None and cursor.position is not None:
            try:
                position = datetime.fromisoformat(cursor.position)
            except ValueError:
                pass
            if position is None or position.tzinfo is None:  # forged: not a time this API wrote
                raise ValidationError({"cursor": [self.invalid_cursor_message]})
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

    def get_next_link(self):
        if hasattr(self, "_sequence_links"):
            return self._sequence_links[0]
        return super().get_next_link()

    def get_previous_link(self):
        if hasattr(self, "_sequence_links"):
            return self._sequence_links[1]
        return super().get_previous_link()

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
    *, request, view, queryset, pagination_class, serializer_class=None, represent=None, envelope=None
):
    """
    A page of `queryset` in `pagination_class`'s envelope, its items rendered by `serializer_class`,
    or by `represent(items)` for a queryset of plain rows (see core.outputs).
    """
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    if represent is not None:
        data = represent(page)
    else:
        data = serializer_class(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data, **(envelope or {}))
