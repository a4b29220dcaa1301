def drop_slashed_duplicates(endpoints):
    """drf-spectacular hook: each route is mounted twice (see core.routing); document it once."""
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path == "/" or not path.endswith("/")
    ]


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "example": "validation_error"},
        "detail": {
            "description": "What is wrong: a message, or field name → messages.",
            "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}],
        },
    },
}
_ERROR_RESPONSES = {
    "400": "Bad input: `detail` names each field and what is wrong with it.",
    "401": "Missing or wrong credentials.",
    "403": "Right credentials, wrong rights.",
    "404": "No such object for this tenant (another tenant's id looks exactly like a missing one).",
}
_PUBLIC_PATHS = {"/health", "/api/schema", "/api/docs"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular hook: every operation documents the one error shape of its 4xx answers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if path in _PUBLIC_PATHS:
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in _ERROR_RESPONSES.items():
                if path == "/billing/webhook" and status in ("401", "403", "404"):
                    continue  # authenticated by its signature: bad ones are a 400
                responses.setdefault(status, {"description": description, "content": reference})
    return result
