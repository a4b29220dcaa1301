from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.models import Membership, Tenant
from tenants.services import api_key_create


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: f"Tenant {o.id}")
    slug = factory.LazyAttribute(lambda o: o.id)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class StaffUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)


def issue_api_key(tenant: Tenant, name: str = "test") -> str:
    """A raw API key for `tenant`, made the way production makes them."""
    return api_key_create(tenant=tenant, name=name).raw_key


class TriggerRuleFactory(factory.django.DjangoModelFactory):
    """Rules as the services make them (validated, with next_run_at)."""

    class Meta:
        model = "proactive.TriggerRule"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    type = "metric_threshold"
    metric = "analytics.mql.delta"
    threshold = 10.0
    severity = "warning"
    enabled = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from proactive.services import trigger_rule_create

        tenant = kwargs.pop("tenant")
        if kwargs.get("type") == "schedule":
            kwargs.setdefault("schedule", "0 13 * * 1")
            kwargs["metric"] = ""
            kwargs["threshold"] = None
        return trigger_rule_create(tenant=tenant, **kwargs)


class MetricPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "proactive.MetricPoint"

    tenant = factory.SubFactory(TenantFactory)
    metric = "analytics.mql.delta"
    timestamp = factory.LazyFunction(timezone.now)
    value = 1.0

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Written as the metrics API writes a point: its rules wake at the next tick."""
        from proactive.services import metric_wakes_record

        point = super()._create(model_class, *args, **kwargs)
        metric_wakes_record(tenant=point.tenant, metric=point.metric, timestamps=[point.timestamp], now=point.timestamp)
        return point


def rule_with_health(*, health: str, last_error: str = "", **fields):
    """A rule whose last evaluation saw `health` (the engine's bookkeeping, written as the engine writes it)."""
    rule = TriggerRuleFactory(**fields)
    type(rule).objects.filter(pk=rule.pk).update(health=health, last_error=last_error)
    rule.refresh_from_db()
    return rule


def metric_points(tenant, metric, *values, end, every=timedelta(hours=1)):
    """
    A series of `metric`: `values` oldest first, `every` apart, the last one at `end` (one INSERT),
    written at `end` as the metrics API writes: the rules reading it wake at the next tick.
    """
    from proactive.services import metric_wakes_record

    created = MetricPointFactory._meta.model.objects.bulk_create(
        [
            MetricPointFactory.build(
                tenant=tenant, metric=metric, timestamp=end - every * (len(values) - 1 - i), value=v
            )
            for i, v in enumerate(values)
        ]
    )
    metric_wakes_record(tenant=tenant, metric=metric, timestamps=[point.timestamp for point in created], now=end)
    return created


def alert_payload(rule, *, value: float = 42.0) -> dict:
    """A payload shaped as the engine writes it for the rule's type (the API documents each shape)."""
    observed_at = "2026-11-26T14:00:00Z"
    if rule.type == "schedule":
        evidence = {"schedule": rule.schedule, "scheduledFor": observed_at}
    elif rule.type == "anomaly":
        evidence = {
            "metric": rule.metric,
            "value": value,
            "mean": 10.0,
            "std": 2.0,
            "zScore": (value - 10.0) / 2.0,
            "threshold": rule.threshold,
            "windowDays": rule.window_days,
            "points": 20,
            "observedAt": observed_at,
        }
    else:
        evidence = {"metric": rule.metric, "value": value, "threshold": rule.threshold, "observedAt": observed_at}
    return {**evidence, "reason": f"{rule.name} fired."}


def raise_alert(rule, payload=None, triggered_at=None):
    """An alert raised through the alerts service, as the engine raises them."""
    from alerts.services import alert_raise

    return alert_raise(rule=rule, payload=payload or alert_payload(rule), triggered_at=triggered_at).alert
