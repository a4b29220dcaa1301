from django.apps import AppConfig


class ProactiveConfig(AppConfig):
    name = "proactive"
    verbose_name = "Proactive insights (rules, metrics, engine)"
