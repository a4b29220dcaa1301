"""What a newcomer sees when the process cannot start: one clear line, not a traceback."""

from django.conf import settings


def _where(database: dict) -> str:
    if database["ENGINE"].endswith("sqlite3"):
        return f"the SQLite file {database['NAME']}"
    host = database.get("HOST") or "localhost"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"the PostgreSQL database {database['NAME']!r} at {host}{port}"


def explain_database_error(exc: Exception) -> str | None:
    """One line for a database that cannot be reached, or None when `exc` is something else."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not (message.startswith("connection failed") or "unable to open database file" in message):
        return None
    database = settings.DATABASES["default"]
    if "does not exist" in message:
        hint = (
            f"create it (createdb -h {database.get('HOST') or 'localhost'} -U {database.get('USER') or 'postgres'} "
            f"{database['NAME']}) or point DATABASE_URL at one that exists"
        )
    elif "refused" in message or "could not" in message:
        hint = "is the server running there? Check DATABASE_URL"
    else:
        hint = "check DATABASE_URL"
    return f"error: cannot use {_where(database)}: {message.removeprefix('connection failed: ')} — {hint}."
