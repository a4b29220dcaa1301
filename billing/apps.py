from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing usage"

    def ready(self):
        from billing.metrics import UsageSnapshotMetricProvider
        from proactive.metrics import metric_provider_register
        from proactive.validators import USAGE_METRIC_PREFIX

        metric_provider_register(prefix=USAGE_METRIC_PREFIX, provider=UsageSnapshotMetricProvider())
