"""Limits every request meets before a view runs, answered in the API's error shape."""

from django.conf import settings
from django.http import JsonResponse

from core.exception_handler import error_body
from core.parsers import body_too_large_message

# Django's own pages (the admin's filters repeat parameters), not the API.
_NOT_API = ("/admin/", "/static/", "/api-auth/")


class RequestLimitsMiddleware:
    """
    A URL longer than MAX_URL_LENGTH is a 414, a body announced larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE a 413 — before anything reads it. (A body sent without a length is
    cut off by the JSON parser at the same size.) An API query parameter given twice is a 400:
    each takes one value, and silently using one of two would hide the client's mistake.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        url_length = len(request.path) + len(request.META.get("QUERY_STRING", ""))
        if url_length > settings.MAX_URL_LENGTH:
            return JsonResponse(
                error_body(
                    "uri_too_long",
                    f"The URL has {url_length} characters; at most {settings.MAX_URL_LENGTH} are allowed.",
                ),
                status=414,
            )
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        if content_length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return JsonResponse(error_body("payload_too_large", body_too_large_message()), status=413)
        if not request.path.startswith(_NOT_API):
            repeated = sorted(name for name, values in request.GET.lists() if len(values) > 1)
            if repeated:
                return JsonResponse(
                    error_body(
                        "validation_error",
                        {
                            name: [
                                "Give this parameter once (several values: separate them with commas where a "
                                "parameter takes a list)."
                            ]
                            for name in repeated
                        },
                    ),
                    status=400,
                )
        return self.get_response(request)
