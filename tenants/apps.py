from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and API keys"

    def ready(self):
        from tenants import openapi  # noqa: F401  (registers the auth schemes with drf-spectacular)
