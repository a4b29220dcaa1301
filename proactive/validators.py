import re
from datetime import UTC, datetime

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from django.core.exceptions import ValidationError

METRIC_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
USAGE_METRIC_PREFIX = "usage."
USAGE_METRICS = ("tokensUsed", "tasksExecuted", "alertsTriggered", "activeWidgets")
BUILTIN_USAGE_METRICS = tuple(f"{USAGE_METRIC_PREFIX}{name}" for name in USAGE_METRICS)


def validate_cron(expression: str) -> None:
    """A five-field cron expression (UTC) that occurs at least once."""
    if len(expression.split()) != 5:
        raise ValidationError(
            f"{expression!r} is not a valid cron expression: it needs exactly 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 13 * * 1'.",
            code="invalid_cron",
        )
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValidationError(
            f"{expression!r} is not a valid cron expression: it never occurs.", code="invalid_cron"
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ValidationError(
            f"{expression!r} is not a valid cron expression: {exc}", code="invalid_cron"
        ) from None


def is_usage_metric(metric: str) -> bool:
    return metric.startswith(USAGE_METRIC_PREFIX)


def validate_metric_identifier(metric: str) -> None:
    if not METRIC_PATTERN.match(metric):
        raise ValidationError(
            f"{metric!r} is not a valid metric identifier: use 1-200 letters, digits, '.', '_', ':' "
            "or '-', starting with a letter or digit (e.g. analytics.mql.delta).",
            code="invalid_metric",
        )
    if is_usage_metric(metric) and metric not in BUILTIN_USAGE_METRICS:
        raise ValidationError(
            f"{metric!r} is not a built-in usage metric; allowed: {', '.join(BUILTIN_USAGE_METRICS)}.",
            code="unknown_usage_metric",
        )
