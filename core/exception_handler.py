"""
One error shape for every 4xx: {"error": "<code>", "detail": <what is wrong and where>}.
The single place that turns ApplicationError, Django's ValidationError and DRF's exceptions into it.
"""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import NON_FIELD_ERRORS, ApplicationError
from core.parsers import PayloadTooLarge, body_too_large_message

# DRF's own codes, renamed where the contract spells them differently.
_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, detail) -> dict:
    return {"error": code, "detail": detail}


def camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _django_validation_detail(exc: DjangoValidationError):
    """Services validate models, whose fields are snake_case; the API names them in camelCase."""
    if hasattr(exc, "error_dict"):
        return {
            (NON_FIELD_ERRORS if field == "__all__" else camel_case(field)): messages
            for field, messages in exc.message_dict.items()
        }
    return {NON_FIELD_ERRORS: exc.messages}


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.detail), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(body_too_large_message())

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: let Django log it and answer 500

    code = next(
        (name for cls, name in _DRF_CODES.items() if isinstance(exc, cls)),
        getattr(exc, "default_code", "error"),
    )
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        # Field name → messages, also for a field that happens to be called "detail".
        if not isinstance(detail, dict):
            detail = {NON_FIELD_ERRORS: detail if isinstance(detail, list) else [detail]}
    elif isinstance(detail, dict) and set(detail) == {"detail"}:
        detail = detail["detail"]
    response.data = error_body(code, detail)
    return response
