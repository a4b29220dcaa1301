import functools
import zoneinfo

from django.core.exceptions import ValidationError

# The largest magnitude a stored number may have. Models check it with constraints (PostgreSQL
# compares NaN as greater than every number, so the bound also keeps NaN out), inputs with it.
FLOAT_BOUND = 1e300
# How deeply a JSON value we store (widget config and metadata, webhook events) may nest. Real
# documents nest a handful of levels; the bound keeps every recursive step (encoding, PostgreSQL's
# jsonb) far from Python's recursion limit.
MAX_STORED_JSON_DEPTH = 32


def _walk(value):
    """Every value inside a JSON value with the depth of containers it sits in (iterative: any depth is safe)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)


def nested_deeper_than(value, limit: int) -> bool:
    """Whether containers nest more than `limit` levels deep in a JSON value."""
    return any(isinstance(item, dict | list | tuple) and depth > limit for item, depth in _walk(value))


def json_problem(value, *, max_depth: int = MAX_STORED_JSON_DEPTH) -> str | None:
    """
    Why PostgreSQL cannot (or should not) store this JSON value, or None: a NUL character anywhere
    (keys included), or nesting deeper than `max_depth` containers.
    """
    for item, depth in _walk(value):
        if isinstance(item, str) and "\x00" in item:
            return "May not contain NUL (\\u0000) characters."
        if isinstance(item, dict | list | tuple) and depth > max_depth:
            return f"Is nested more than {max_depth} levels deep."
    return None


def reject_unknown_fields(fields, *, allowed, what: str) -> None:
    """A service taking `**fields` refuses names it does not know, as a keyword-only signature would."""
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"Unknown {what} fields: {sorted(unknown)}")


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA zone names of the tz database this Python has (computed once: it reads the database)."""
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def validate_timezone(name: str) -> None:
    """An IANA time zone name (`Europe/Berlin`, `UTC`)."""
    if name not in known_timezones():
        raise ValidationError(
            f"{name!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York).",
            code="invalid_timezone",
        )
