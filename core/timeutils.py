from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as the API writes times inside JSON payloads and reasons."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
