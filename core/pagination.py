import re

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

# What a cursor this API gives out looks like: base64 text.
_CURSOR_PATTERN = re.compile(r"[A-Za-z0-9+/=]{1,1000}")


class NewestFirstCursorPagination(CursorPagination):
    """
    Cursor pagination: stable while new rows arrive, which is what an alert feed needs.
    Returns {"results": [...], "next": url|null, "previous": url|null}.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")
    invalid_cursor_message = "Invalid cursor: use the `next` or `previous` link of a previous page."

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

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError:  # a forged cursor whose position is not of the column's type
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None

    def get_paginated_response(self, data):
        return Response(
            {"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
            },
        }


def paginated_response(*, request, view, queryset, serializer_class, pagination_class, ordering=None):
    paginator = pagination_class()
    if ordering is not None:
        paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request})
    return paginator.get_paginated_response(serializer.data)
