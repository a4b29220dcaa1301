import logging
from datetime import datetime

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from proactive.engine.runner import CHUNK_SIZE, chunked, evaluate_rules, tick_due_rule_ids

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, max_retries=0, expires=55)
def engine_tick() -> int:
    """
    The one beat entry of the engine (every minute): due rules, by the indexed `next_run_at`, fanned
    out to workers in chunks. A chunk that is queued twice (overlapping ticks) is harmless: its
    rules are claimed row by row, and rules no longer due are skipped.
    """
    now = timezone.now()
    rule_ids = tick_due_rule_ids(now=now)
    chunks = list(chunked(rule_ids, CHUNK_SIZE))
    for chunk in chunks:
        # The tick's moment, not the worker's: a rule chosen because its window moved by now is
        # evaluated as of now, whenever a worker gets to it (so sleeping and waking stay exact).
        evaluate_rule_chunk.delay(chunk, now.isoformat())
    if rule_ids:
        logger.info("engine tick: %d due rule(s) in %d chunk(s)", len(rule_ids), len(chunks))
    return len(rule_ids)


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    max_retries=3,
    retry_backoff=True,
    expires=300,  # a chunk that waited this long is stale: the next tick selects its rules again
    soft_time_limit=120,
)
def evaluate_rule_chunk(rule_ids: list[int], at: str | None = None) -> dict:
    now = datetime.fromisoformat(at) if at else timezone.now()
    # A chunk that waited past its tick's minute read older data than a later tick's wakes: its
    # rules are looked at again at the next tick instead of sleeping on what it read.
    late = now < timezone.now().replace(second=0, microsecond=0)
    report = evaluate_rules(rule_ids=rule_ids, now=now, may_sleep=not late)
    return {
        "evaluated": report.evaluated,
        "fired": report.fired,
        "alertsCreated": report.alerts_created,
        "errors": report.errors,
        "skipped": report.skipped,
    }
