"""
Product telemetry (PostHog). Capturing only puts the event on the posthog client's in-memory
queue; a background thread sends it. A slow or dead PostHog therefore never slows the caller, and
nothing here raises. Nothing is sent without POSTHOG_API_KEY, and never for a tenant listed in
TELEMETRY_DISABLED_TENANTS.
"""

import logging
import os
import threading

from django.conf import settings
from posthog import Posthog

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_clients: dict[tuple, Posthog] = {}


def _log_send_error(error, batch):
    logger.warning("PostHog did not take %d event(s): %s", len(batch), error)


def _client() -> Posthog | None:
    if not settings.POSTHOG_API_KEY:
        return None
    # One client per process (its sender thread does not survive a fork) and per configuration.
    key = (os.getpid(), settings.POSTHOG_API_KEY, settings.POSTHOG_HOST)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = Posthog(
                settings.POSTHOG_API_KEY,
                host=settings.POSTHOG_HOST,
                timeout=3,
                max_retries=2,
                flush_interval=1.0,
                on_error=_log_send_error,
                enable_exception_autocapture=False,
                enable_local_evaluation=False,
            )
            _clients[key] = client
    return client


def telemetry_enabled_for(tenant_id: str) -> bool:
    return bool(settings.POSTHOG_API_KEY) and tenant_id not in settings.TELEMETRY_DISABLED_TENANTS


def telemetry_capture(*, event: str, tenant_id: str, properties: dict, uuid: str | None = None) -> bool:
    """Queue `event` for the tenant (distinct id and group). True if it was queued."""
    if not telemetry_enabled_for(tenant_id):
        return False
    try:
        client = _client()
        client.capture(event, distinct_id=tenant_id, properties=properties, groups={"tenant": tenant_id}, uuid=uuid)
    except Exception:
        logger.exception("could not queue telemetry event %s", event)
        return False
    return True


def telemetry_flush(timeout_seconds: float = 5.0) -> None:
    """Send what is queued (process shutdown, tests). Bounded by `timeout_seconds`."""
    for client in list(_clients.values()):
        try:
            client.flush(timeout_seconds=timeout_seconds)
        except Exception:
            logger.warning("telemetry flush failed", exc_info=True)
