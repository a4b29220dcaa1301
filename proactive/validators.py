import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from django.core.exceptions import ValidationError

from proactive.metric_providers import builtin_provider_for, namespace_noun

METRIC_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
MAX_FUTURE_SKEW = timedelta(hours=1)


class _CronField(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low+1, …

    def value(self, text: str) -> int:
        lowered = text.lower()
        if lowered in self.names:
            return self.low + self.names.index(lowered)
        if not text.isdigit():
            raise ValueError(f"{self.name} {text!r} is not a number{self._name_hint()}")
        number = int(text)
        if not self.low <= number <= self.high:
            raise ValueError(f"{self.name} {number} is out of range ({self.low}-{self.high})")
        return number

    def _name_hint(self) -> str:
        return f" or a name ({self.names[0]}-{self.names[-1]})" if self.names else ""


_CRON_FIELDS = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day of month", 1, 31),
    _CronField("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    # 0 and 7 are both Sunday.
    _CronField("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_ITEM = re.compile(r"(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?")


def _check_cron_field(field: _CronField, text: str) -> None:
    """Standard cron only: `*`, values, `a-b` ranges (low to high), lists, `*/n` and `a-b/n` steps."""
    for item in text.split(","):
        match = _CRON_ITEM.fullmatch(item)
        if match is None:
            raise ValueError(
                f"{field.name} {item!r} is not standard cron (use *, a value, a range a-b, a list, "
                "or a step */n or a-b/n)"
            )
        part, step = match["range"], match["step"]
        if part != "*":
            low, _, high = part.partition("-")
            first = field.value(low)
            if high:
                last = field.value(high)
                if last < first:
                    raise ValueError(f"{field.name} range {part!r} runs backwards; write it low-high")
            elif step is not None:
                raise ValueError(f"{field.name} step {item!r} needs * or a range before the /, e.g. */{step}")
        if step is not None and not 1 <= int(step) <= field.high - field.low:
            raise ValueError(f"{field.name} step /{step} must be from 1 to {field.high - field.low}")


def validate_cron(expression: str) -> None:
    """A standard five-field cron expression (wall-clock times in the rule's zone) that occurs at least once."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValidationError(
            f"{expression!r} is not a valid cron expression: it needs exactly 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 13 * * 1'.",
            code="invalid_cron",
        )
    try:
        for field, text in zip(_CRON_FIELDS, fields, strict=True):
            _check_cron_field(field, text)
    except ValueError as exc:
        raise ValidationError(f"{expression!r} is not a valid cron expression: {exc}.", code="invalid_cron") from None
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValidationError(
            f"{expression!r} is not a valid cron expression: it never occurs.", code="invalid_cron"
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ValidationError(f"{expression!r} is not a valid cron expression: {exc}", code="invalid_cron") from None


@lru_cache(maxsize=1024)
def cron_field_values(expression: str) -> tuple[frozenset[int], ...]:
    """
    The values each field of a standard cron expression allows (minute, hour, day of month, month,
    day of week with Sunday as 0). When day of month and day of week are both restricted, a day
    matches when either does (as in cron and croniter): callers check that on the expression's text.
    Raises ValueError if not standard.
    """
    values = []
    for field, text in zip(_CRON_FIELDS, expression.split(), strict=True):
        _check_cron_field(field, text)
        allowed = set()
        for item in text.split(","):
            match = _CRON_ITEM.fullmatch(item)
            part, step = match["range"], int(match["step"] or 1)
            if part == "*":
                first, last = field.low, field.high
            else:
                low, _, high = part.partition("-")
                first = field.value(low)
                last = field.value(high) if high else first
            allowed.update(range(first, last + 1, step))
        values.append(frozenset(value % 7 if field.name == "day of week" else value for value in allowed))
    return tuple(values)


@lru_cache(maxsize=1024)
def nonstandard_cron_problem(expression: str) -> str:
    """
    For a schedule saved before standard cron was enforced: what is wrong with it ("" if nothing).
    Such a rule still runs as croniter reads it; the engine reports this as its error until it is fixed.
    """
    try:
        validate_cron(expression)
    except ValidationError as exc:
        return f"{exc.messages[0]} The rule still runs as before; change it to standard cron (every edit needs it)."
    return ""


def validate_point_time(timestamp: datetime, *, now: datetime) -> None:
    """A datapoint may be at most MAX_FUTURE_SKEW ahead of now (clocks differ; the future does not report)."""
    if timestamp > now + MAX_FUTURE_SKEW:
        raise ValidationError("Is more than an hour in the future.", code="future")


def validate_metric_identifier(metric: str) -> None:
    if not METRIC_PATTERN.fullmatch(metric):
        raise ValidationError(
            f"{metric!r} is not a valid metric identifier: use 1-200 letters, digits, '.', '_', ':' "
            "or '-', starting with a letter or digit (e.g. analytics.mql.delta).",
            code="invalid_metric",
        )
    provider = builtin_provider_for(metric)
    if provider is not None and metric not in provider.metric_names:
        raise ValidationError(
            f"{metric!r} is not a built-in {namespace_noun(provider)} metric; "
            f"allowed: {', '.join(provider.metric_names)}.",
            code="unknown_builtin_metric",
        )
