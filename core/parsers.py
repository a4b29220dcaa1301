import json
import math

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from core.validators import nested_deeper_than

# How deeply a request body may nest. Every body the API takes is a few levels deep; stored JSON
# fields have their own, lower bound (core.validators.MAX_STORED_JSON_DEPTH) that names the field.
MAX_BODY_DEPTH = 64


def body_too_large_message() -> str:
    return f"The request body may be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes."


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "payload_too_large"


def loads_request_json(raw: bytes):
    """Parse a JSON request body: NaN and Infinity refused, depth bounded. Raises ParseError."""
    try:
        text = raw.decode(settings.DEFAULT_CHARSET)
    except UnicodeDecodeError as exc:
        raise ParseError(f"JSON parse error - the body is not {settings.DEFAULT_CHARSET}: {exc}") from None
    too_deep = ParseError(f"JSON parse error - the document is nested more than {MAX_BODY_DEPTH} levels deep.")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    except RecursionError:
        raise too_deep from None
    if nested_deeper_than(value, MAX_BODY_DEPTH):
        raise too_deep
    return value


def _reject_constant(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: a valid JSON number no float (and no jsonb column) can hold
        raise ValueError(f"{text} is too large a number")
    return value


class SafeJSONParser(JSONParser):
    """
    DRF's JSON parser, bounded: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413), at most
    MAX_BODY_DEPTH levels of nesting, and no NaN or Infinity (400s).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(body_too_large_message())
        return loads_request_json(raw)
