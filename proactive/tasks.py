import logging
import random
from collections.abc import Iterator
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.db import DATABASE_LOST
from proactive.engine.runner import CHUNK_SIZE, chunked, evaluate_rules, tick_due_rule_ids

logger = logging.getLogger(__name__)


def outage_retry_delays() -> list[int]:
    """
    The waits (seconds) before each retry of a chunk that found the database gone: exponential
    backoff, ENGINE_RETRY_BACKOFF_SECONDS × 2ⁿ capped at ENGINE_RETRY_BACKOFF_MAX_SECONDS, for
    ENGINE_MAX_RETRIES retries (defaults 5, 10, 20, 40, 60: the last retry 135 s after the failure).
    """
    factor, cap = settings.ENGINE_RETRY_BACKOFF_SECONDS, settings.ENGINE_RETRY_BACKOFF_MAX_SECONDS
    return [min(cap, factor * 2**n) for n in range(settings.ENGINE_MAX_RETRIES)]


def transaction_conflict(exc: BaseException) -> BaseException | None:
    """
    The error, or the one it arose from, that is PostgreSQL rolling the transaction back for a
    conflict with another one (SQLSTATE class 40: a deadlock, a serialization failure): the database
    is fine and a retry runs on its own. The driver calls these OperationalError, as it does a lost
    server.
    """
    return next((seen for seen in _causes(exc) if str(getattr(seen, "sqlstate", None) or "").startswith("40")), None)


def database_unavailable(exc: BaseException) -> bool:
    """The error, or one it arose from, is the database going away, or the connection is gone."""
    if any(isinstance(seen, DATABASE_LOST) for seen in _causes(exc)):
        return True
    # A statement that failed on a dead connection inside an atomic block can surface as another
    # error (TransactionManagementError); the connection itself then tells.
    return connection.connection is None or not connection.is_usable()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error, then the one it arose from, and so on (Django's errors wrap the driver's)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


@shared_task(ignore_result=True, max_retries=0, expires=55)
def engine_tick() -> int:
    """
    The one beat entry of the engine (every minute): due rules, by the indexed `next_run_at`, fanned
    out to workers in chunks. A chunk that is queued twice (overlapping ticks) is harmless: its
    rules are claimed row by row, and rules no longer due are skipped. A tick that cannot run or
    cannot send all its chunks loses nothing: the rules stay due and the next tick takes them.
    """
    now = timezone.now()
    try:
        rule_ids = tick_due_rule_ids(now=now)
    except DATABASE_LOST as exc:
        logger.warning(
            "engine tick skipped: the database is unavailable (%s); the next tick takes the due rules", _one_line(exc)
        )
        return 0
    chunks = list(chunked(rule_ids, CHUNK_SIZE, slots=settings.ENGINE_CONCURRENCY))
    sent = 0
    try:
        for chunk in chunks:
            # The tick's moment, not the worker's: a rule chosen because its window moved by now is
            # evaluated as of now, whenever a worker gets to it (so sleeping and waking stay exact).
            evaluate_rule_chunk.delay(chunk, now.isoformat())
            sent += 1
    except Exception as exc:  # the broker went away: what was not sent is still due
        unsent = sum(len(chunk) for chunk in chunks[sent:])
        logger.error(
            "engine tick: the broker took %d of %d chunk(s) (%s); the other %d rule(s) stay due for the next tick",
            sent,
            len(chunks),
            _one_line(exc),
            unsent,
        )
        return len(rule_ids) - unsent
    if rule_ids:
        logger.info("engine tick: %d due rule(s) in %d chunk(s)", len(rule_ids), len(chunks))
    return len(rule_ids)


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    expires=300,  # a chunk that waited this long is stale: the next tick selects its rules again
    soft_time_limit=120,
)
def evaluate_rule_chunk(self, rule_ids: list[int], at: str | None = None) -> dict:
    """
    Evaluate one chunk in one transaction. If the database goes away meanwhile, nothing of the
    chunk was written: it is retried with backoff (`outage_retry_delays`), and once the retries
    are spent its rules are still due, so the next tick after the outage takes them.
    """
    now = datetime.fromisoformat(at) if at else timezone.now()
    # A chunk that waited past its tick's minute read older data than a later tick's wakes: its
    # rules are looked at again at the next tick instead of sleeping on what it read.
    late = now < timezone.now().replace(second=0, microsecond=0)
    try:
        report = evaluate_rules(rule_ids=rule_ids, now=now, may_sleep=not late)
    except Exception as exc:
        if conflict := transaction_conflict(exc):
            return _retry_after_failure(self, rule_ids, conflict, "it conflicted with another transaction", "conflict")
        if database_unavailable(exc):
            return _retry_after_failure(self, rule_ids, exc, "the database is unavailable", "outage")
        raise
    return {
        "evaluated": report.evaluated,
        "fired": report.fired,
        "alertsCreated": report.alerts_created,
        "errors": report.errors,
        "skipped": report.skipped,
    }


def _retry_after_failure(task, rule_ids: list[int], exc: BaseException, why: str, kind: str) -> dict:
    """One line for the chunk, then a retry: nothing of it was written (its transaction rolled back)."""
    delays = outage_retry_delays()
    attempt = task.request.retries
    if attempt >= len(delays):
        logger.error(
            "chunk of %d rule(s) not evaluated: %s (%s) after %d retries; its rules stay due for the next tick",
            len(rule_ids),
            why,
            _one_line(exc),
            attempt,
        )
        return {"evaluated": 0, kind: True}
    # A little jitter on top (never less than the backoff), so that a tick's chunks do not all
    # come back in the same instant.
    countdown = delays[attempt] * (1 + random.uniform(0, 0.1))
    logger.warning(
        "chunk of %d rule(s) not evaluated: %s (%s); nothing was written, retry %d of %d in %.0f s",
        len(rule_ids),
        why,
        _one_line(exc),
        attempt + 1,
        len(delays),
        countdown,
    )
    raise task.retry(countdown=countdown, max_retries=len(delays), exc=exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"
