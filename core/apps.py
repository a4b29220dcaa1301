from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.db.backends.signals import connection_created
        from django.db.models import IntegerField

        from core import checks, openapi  # noqa: F401  (register the system checks and schema extensions)
        from core.db import AnyOf, use_iso_timestamp_loader

        IntegerField.register_lookup(AnyOf)
        connection_created.connect(use_iso_timestamp_loader)
