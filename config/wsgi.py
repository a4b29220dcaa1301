import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from core.checks import enforce_production_secrets  # noqa: E402  (needs the app registry)

enforce_production_secrets()
