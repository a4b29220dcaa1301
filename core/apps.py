from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from core import checks, openapi  # noqa: F401  (register the system checks and schema extensions)
