"""
How the OpenAPI document is made: a product surface, so it says exactly what the server does.

- Operations are described by their `extend_schema(summary=..., description=...)`, never by a
  docstring (DISABLE_DOCSTRING_DESCRIPTIONS: those are for the people who maintain the code).
- Every operation lists every error status it can answer, each with the one error shape and an
  example of the codes it carries (`add_error_responses`). Operation-specific ones (a 409 and
  why) are declared on the view with `error_response`.
- Serializers of closed objects (`core.serializers.ClosedSerializer`) forbid other properties,
  so that a `oneOf` of them is exact.
"""

from http import HTTPStatus

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse


class ApiAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        # `AlertOutputSerializer` is the component `Alert`; inputs keep their `…Input` name.
        name = super().get_serializer_name(serializer, direction).removesuffix("Serializer")
        return name.removesuffix("Output") or name


class ClosedSerializerExtension(OpenApiSerializerExtension):
    """Closed output objects and every strict input (which rejects unknown fields): no other properties."""

    target_class = "core.serializers.ClosedSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}


def drop_slashed_duplicates(endpoints):
    """drf-spectacular hook: each route is mounted twice (see core.routing); document it once."""
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path == "/" or not path.endswith("/")
    ]


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every 4xx answer: a stable code and what is wrong, and where.",
    "required": ["error", "detail"],
    "properties": {
        "error": {
            "type": "string",
            "description": "A stable code: validation_error, parse_error, tenant_required, invalid_signature, "
            "bad_request (a request Django refuses to read, e.g. over 1,000 query parameters), "
            "not_authenticated, authentication_failed, permission_denied, not_found, conflict, "
            "payload_too_large, uri_too_long, unsupported_media_type.",
        },
        "detail": {
            "description": "A message, or (validation errors) each field's name → its messages; "
            "`nonFieldErrors` holds what belongs to no one field.",
            "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}],
        },
    },
}


def error_example(code: str, detail, *, summary: str | None = None) -> dict:
    return {"summary": summary or code, "value": {"error": code, "detail": detail}}


def _bad_input_examples(operation: dict, schemas: dict) -> dict:
    """Examples of the 400s this operation can really answer, from what it takes."""
    examples = {
        "repeated_parameter": error_example(
            "validation_error",
            {
                "limit": [
                    "Give this parameter once (several values: separate them with commas where a parameter "
                    "takes a list)."
                ]
            },
            summary="validation_error (a query parameter given twice)",
        ),
    }
    parameters = {parameter["name"]: parameter for parameter in operation.get("parameters", [])}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    body = schemas.get(body.get("$ref", "").rsplit("/", 1)[-1], body)
    if body.get("properties"):
        allowed = ", ".join(sorted(body["properties"]))
        examples["validation_error"] = error_example(
            "validation_error", {"colour": [f"Unknown field. Allowed: {allowed}."]}
        )
        examples["parse_error"] = error_example(
            "parse_error", "JSON parse error - Expecting value: line 1 column 1 (char 0)"
        )
    elif "limit" in parameters:
        maximum = parameters["limit"]["schema"]["maximum"]
        examples["validation_error"] = error_example(
            "validation_error", {"limit": [f"Must be a whole number from 1 to {maximum}."]}
        )
    elif "metric" in parameters or "slug" in parameters:
        name = "metric" if "metric" in parameters else "slug"
        examples["validation_error"] = error_example(
            "validation_error",
            {name: [f"'Bad Name' is not a valid {'metric identifier' if name == 'metric' else name}."]},
        )
    if "X-Tenant-Id" in parameters:
        examples["tenant_required"] = error_example(
            "tenant_required",
            {"X-Tenant-Id": ["Required: staff and the admin key act for the tenant this header names."]},
        )
    return examples


def _generic_errors(operation: dict, schemas: dict) -> dict[str, tuple[str, dict]]:
    """status → (description, {example name: example}) for the errors any operation may meet."""
    body_limit = f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}"
    return {
        "400": (
            "Bad input: `detail` names each field (or parameter, or header) and what is wrong with it. "
            "Nothing was changed.",
            _bad_input_examples(operation, schemas),
        ),
        "401": (
            "Missing or wrong credentials.",
            {
                "not_authenticated": error_example(
                    "not_authenticated", "Authentication credentials were not provided."
                ),
                "authentication_failed": error_example("authentication_failed", "Invalid or revoked API key."),
            },
        ),
        "403": (
            "Right credentials, wrong rights: a tenant key on an admin-only endpoint, or a tenant "
            "the caller is not a member of.",
            {
                "permission_denied": error_example(
                    "permission_denied", "This endpoint is for administrators: a staff user or the X-Admin-Key header."
                )
            }
            if _admin_only(operation)
            else {
                "another_tenant": error_example(
                    "permission_denied",
                    "This API key belongs to another tenant than X-Tenant-Id names.",
                    summary="permission_denied (X-Tenant-Id names another tenant than the key's)",
                ),
                "not_a_member": error_example(
                    "permission_denied",
                    "You are not a member of tenant 'globex'.",
                    summary="permission_denied (a signed-in user outside that tenant)",
                ),
            },
        ),
        "404": (
            "No such object for this tenant (another tenant's id looks exactly like a missing one).",
            {"not_found": error_example("not_found", "Not found.")},
        ),
        "413": (
            f"The request body is larger than {body_limit} bytes.",
            {
                "payload_too_large": error_example(
                    "payload_too_large", f"The request body may be at most {body_limit} bytes."
                )
            },
        ),
        "414": (
            f"The URL (path and query) is longer than {settings.MAX_URL_LENGTH} characters.",
            {
                "uri_too_long": error_example(
                    "uri_too_long",
                    f"The URL has {settings.MAX_URL_LENGTH + 1} characters; at most {settings.MAX_URL_LENGTH} "
                    "are allowed.",
                )
            },
        ),
        "415": (
            "The body is not `application/json`.",
            {
                "unsupported_media_type": error_example(
                    "unsupported_media_type", 'Unsupported media type "text/plain" in request.'
                )
            },
        ),
    }


def error_response(description: str, *examples: tuple[str, object]) -> OpenApiResponse:
    """An operation-specific error answer, e.g. `409: error_response("Why", ("conflict", "…"))`."""
    return OpenApiResponse(
        response=ERROR_REF,
        description=description,
        examples=[OpenApiExample(code, value={"error": code, "detail": detail}) for code, detail in examples],
    )


def _statuses_for(path: str, method: str, operation: dict) -> list[str]:
    # core.middleware answers these for any request: a body or URL too large, a query parameter
    # given twice (Django itself: more than 1,000 of them).
    statuses = ["400", "413", "414"]
    if _authenticated(operation):
        statuses += ["401", "403"]
    if "{" in path and "{metric}" not in path:  # an object named in the path may not exist
        statuses.append("404")
    if "requestBody" in operation and operation.get("operationId") != "billing_webhook":
        statuses.append("415")
    return statuses


def _authenticated(operation: dict) -> bool:
    return bool(operation.get("security")) and operation["security"] != [{}]


def _admin_only(operation: dict) -> bool:
    return not any("apiKey" in requirement for requirement in operation.get("security", []))


def add_error_responses(result, generator, request, public):
    """drf-spectacular hook: every operation documents each error status it can answer."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    parameter["schema"].setdefault("minimum", 1)  # ids start at 1
            responses = operation.setdefault("responses", {})
            generic = _generic_errors(operation, schemas)
            for status in _statuses_for(path, method, operation):
                if status in responses:
                    continue
                description, examples = generic[status]
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": ERROR_REF, "examples": examples}},
                }
            for status, response in responses.items():
                if not response.get("description"):
                    response["description"] = HTTPStatus(int(status)).phrase
            operation["responses"] = dict(sorted(responses.items()))
    return result
