"""
The API's answers, held to its OpenAPI document. Every response the test suite's clients receive
from a documented operation is validated against the schema the server publishes (openapi-core):
its status must be documented for that operation and its body must match. A test that meets an
undocumented answer fails, whatever else it asserts.
"""

import json
from functools import cache

from django.test.client import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

# Served by Django or the admin, not by the API the schema describes.
UNDOCUMENTED_PREFIXES = ("/admin/", "/api/schema", "/api/docs", "/api-auth/", "/static/")


@cache
def published_schema() -> dict:
    """The OpenAPI document exactly as GET /api/schema?format=json serves it."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(published_schema())


class _Request(DjangoOpenAPIRequest):
    """The request only locates the operation: the same route with or without its trailing slash."""

    @property
    def path(self) -> str:
        return self.request.path.rstrip("/") or "/"

    @property
    def path_pattern(self):
        if self.request.resolver_match is None:
            return None
        pattern = super().path_pattern
        return pattern.rstrip("/") or "/" if pattern else pattern

    @property
    def body(self) -> bytes:
        return b""  # requests are not validated: the tests send bad ones on purpose


class ContractViolation(AssertionError):
    pass


def _explain(exc: Exception) -> str:
    """The deepest schema errors behind an openapi-core exception, with where they are."""
    while exc is not None and not getattr(exc, "schema_errors", None):
        exc = exc.__cause__
    if exc is None:
        return "the status is not documented for this operation"
    lines = []
    for error in exc.schema_errors:
        for leaf in (error.context or [error]) if error.context else [error]:
            where = "/".join(str(part) for part in leaf.absolute_path) or "(body)"
            lines.append(f"{where}: {leaf.message[:300]}")
    return "\n  " + "\n  ".join(lines)


def check_response(response) -> None:
    request = response.wsgi_request
    if request.path.startswith(UNDOCUMENTED_PREFIXES):
        return
    # A request the middleware answered (413, 414, a repeated parameter) matched no route: the
    # operation is then found from the path alone, and its answer is checked all the same.
    try:
        _openapi().validate_response(_Request(request), DjangoOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        # An unknown path (the JSON 404) or a method the path does not have (405): no operation.
        return
    except Exception as exc:
        body = response.content[:500].decode(errors="replace")
        raise ContractViolation(
            f"{request.method} {request.get_full_path()} answered {response.status_code}, which the OpenAPI "
            f"document does not allow: {_explain(exc)}\nBody: {body}"
        ) from exc


_original_request = Client.request


def _checked_request(self, **request):
    response = _original_request(self, **request)
    check_response(response)
    return response


def enforce_contract(monkeypatch) -> None:
    """Validate every response of Django's and DRF's test clients for the rest of the test."""
    monkeypatch.setattr(Client, "request", _checked_request)
