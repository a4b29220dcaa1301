#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        if "DEBUG is off" not in str(exc):
            raise
        # A setting production must give (config/settings.py says which): one line, not a traceback.
        sys.exit(f"error: {exc} Locally, run with DEBUG=1; in production, see docs/operations.md.")
    except OperationalError as exc:
        from core.startup import explain_database_error

        explained = explain_database_error(exc)
        if explained is None:
            raise
        sys.exit(explained)


if __name__ == "__main__":
    main()
