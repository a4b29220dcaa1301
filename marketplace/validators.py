import json
import re

from django.core.exceptions import ValidationError

from core.validators import json_problem

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# semver.org's regular expression, without the optional leading "v".
SEMVER_PATTERN = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
TILE_SIZES = ("sm", "md", "lg", "xl")
MAX_JSON_BYTES = 16 * 1024


def validate_widget_slug(value: str) -> None:
    if not SLUG_PATTERN.fullmatch(value or ""):
        raise ValidationError(
            f"{value!r} is not a valid slug: use lowercase letters and digits in words joined by "
            "single hyphens, e.g. revenue-radar.",
            code="invalid_slug",
        )


def validate_semver(value: str) -> None:
    if not SEMVER_PATTERN.fullmatch(value or ""):
        raise ValidationError(
            f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0 or 2.0.0-beta.1).",
            code="invalid_version",
        )


def _validate_json_object(value, *, what: str) -> None:
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object.", code="not_an_object")
    problem = json_problem(value)
    if problem:
        raise ValidationError(f"{what} {problem[0].lower()}{problem[1:]}", code="unstorable")
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_JSON_BYTES:
        raise ValidationError(f"{what} is {size} bytes; at most {MAX_JSON_BYTES} are allowed.", code="too_large")


def validate_metadata(value) -> None:
    _validate_json_object(value, what="Metadata")


def validate_config(value) -> None:
    _validate_json_object(value, what="The widget configuration")


def validate_dashboard(value) -> None:
    """A JSON object; its optional `tile` needs a `title` and a `size` from TILE_SIZES."""
    _validate_json_object(value, what="The dashboard declaration")
    if "tile" not in value:
        return
    tile = value["tile"]
    if not isinstance(tile, dict):
        raise ValidationError("dashboard.tile must be an object with a title and a size.", code="invalid_tile")
    problems = []
    title = tile.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("dashboard.tile.title is required (a non-empty string).")
    elif len(title) > 100:
        problems.append("dashboard.tile.title must be at most 100 characters.")
    if tile.get("size") not in TILE_SIZES:
        problems.append(f"dashboard.tile.size must be one of {', '.join(TILE_SIZES)} (got {tile.get('size')!r}).")
    if problems:
        raise ValidationError(problems, code="invalid_tile")
