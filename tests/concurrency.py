import threading
from collections.abc import Callable, Sequence

from django.db import connection


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
