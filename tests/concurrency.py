"""Concurrency for tests: threads with their own database connections, and waiting on PostgreSQL locks."""

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from django.db import connection, transaction


def run_concurrently(calls: Sequence[Callable]) -> tuple[list, list[Exception]]:
    """
    Run each call in its own thread (so with its own database connection), all released at once.
    Returns the results and the exceptions raised.
    """
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call):
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


class Background:
    """A call running in a thread with its own connection; `join()` returns its result or raises its error."""

    def __init__(self, call: Callable):
        self._outcome: dict = {}

        def run():
            try:
                self._outcome["result"] = call()
            except Exception as exc:
                self._outcome["error"] = exc
            finally:
                connection.close()

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def join(self, timeout: float = 30.0):
        self._thread.join(timeout)
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome.get("result")


@contextmanager
def rows_locked_by_another_transaction(queryset):
    """While inside, another connection holds FOR UPDATE locks on the queryset's rows."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            list(queryset.select_for_update())
            locked.set()
            release.wait(timeout=30)

    holder = Background(hold)
    try:
        assert locked.wait(timeout=10), "the other transaction never took its locks"
        yield
    finally:
        release.set()
        holder.join()


def wait_until_a_transaction_waits_for_a_lock(timeout: float = 10.0) -> None:
    """Block until some transaction in this database waits for a lock (pg_stat_activity says so)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is cached per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("no transaction ever waited for a lock")
