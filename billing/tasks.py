from celery import shared_task

from billing.services.usage import usage_rollup


@shared_task(max_retries=0, ignore_result=True, expires=3000)
def rollup_daily_usage() -> int:
    """Every tenant gets today's usage rows (gauges carried forward). Idempotent; runs hourly."""
    return usage_rollup()
