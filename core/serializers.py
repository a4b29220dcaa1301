import difflib
import math

from rest_framework import serializers

from core.validators import FLOAT_BOUND, contains_nul


class StrictInputSerializer(serializers.Serializer):
    """
    An input serializer that rejects fields it does not know, so that a typo such as
    `window_days` for `windowDays` is a 400 naming it instead of a silently ignored value.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [self._unknown_field_message(name)] for name in unknown}
                )
        return super().to_internal_value(data)

    def _unknown_field_message(self, name: str) -> str:
        known = [field for field, spec in self.fields.items() if not spec.read_only]
        close = difflib.get_close_matches(name.replace("_", ""), known, n=1, cutoff=0.6) or [
            match for match in known if match.lower() == name.replace("_", "").lower()
        ]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"Unknown field.{hint} Allowed: {', '.join(sorted(known))}."


class FiniteFloatField(serializers.FloatField):
    default_error_messages = {
        "not_finite": "Must be a finite number.",
        "invalid": "A number is required.",
        "out_of_range": f"Must be between -{FLOAT_BOUND:g} and {FLOAT_BOUND:g}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        try:
            value = float(data.strip() if isinstance(data, str) else data)
        except (TypeError, ValueError):
            self.fail("invalid")
        except OverflowError:  # an integer literal too large for any float
            self.fail("out_of_range")
        if not math.isfinite(value):
            self.fail("not_finite")
        if abs(value) > FLOAT_BOUND:
            self.fail("out_of_range")
        return super().to_internal_value(data)


def choice_field(choices, *, noun: str, **kwargs) -> serializers.ChoiceField:
    """A ChoiceField whose error names the allowed values."""
    allowed = ", ".join(value for value, _label in choices)
    return serializers.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not a valid {noun}; allowed: {allowed}.'},
        **kwargs,
    )


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset (`Z` or `+00:00`); returned in UTC. Naive times are refused."""

    default_error_messages = {
        "naive": "Include a time zone offset, e.g. 2026-11-26T14:00:00Z.",
        "invalid": "Use ISO 8601 with a time zone offset, e.g. 2026-11-26T14:00:00Z.",
        "out_of_range": "Is out of range (years 0002 to 9998).",
    }

    def to_internal_value(self, value):
        from datetime import UTC

        from django.utils.dateparse import parse_datetime

        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        if not 2 <= parsed.year <= 9998:  # room for UTC conversion and window arithmetic
            self.fail("out_of_range")
        return parsed.astimezone(UTC)


class EmptyAsNullCharField(serializers.CharField):
    """Output only: the database stores "not set" as "", the API says null."""

    def to_representation(self, value):
        return value or None


def serializer_with_fields(name: str, fields: dict) -> type[serializers.Serializer]:
    """A Serializer class from a dict, for field names Python cannot declare (`from`)."""
    return type(name, (serializers.Serializer,), dict(fields))


class StorableJSONField(serializers.JSONField):
    """JSON that PostgreSQL can store: no NUL characters."""

    default_error_messages = {"nul": "May not contain NUL (\\u0000) characters."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if contains_nul(value):
            self.fail("nul")
        return value
