from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert
from billing.models import BillingUsage, UsageSnapshot
from marketplace.models import TenantWidget
from proactive.engine.runner import due_rule_ids, evaluate_rules
from proactive.models import TriggerRule
from tenants.models import ApiKey, Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("tenants", "proactive", "alerts", "marketplace", "billing")


def seed(*args):
    out = StringIO()
    call_command("seed_slice6", *args, stdout=out)
    return out.getvalue()


def row_counts():
    return {
        model._meta.label: model.objects.count()
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models()
    }


def test_seeds_the_four_steps_for_the_named_tenant():
    out = seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    tenant = Tenant.objects.get(pk="demo-tenant")
    assert (tenant.name, tenant.slug) == ("Demo Tenant", "demo-tenant")
    install = TenantWidget.objects.get(tenant=tenant)
    assert (install.widget.slug, install.enabled) == ("revenue-radar", True)
    assert install.widget.dashboard["tile"]["title"] == "Revenue radar"
    assert sorted(TriggerRule.objects.filter(tenant=tenant).values_list("type", flat=True)) == [
        "anomaly", "metric_threshold", "metric_threshold", "schedule"
    ]
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["acknowledged", "resolved", "resolved"]
    today = timezone.now().date()
    days = list(BillingUsage.objects.filter(tenant=tenant).order_by("day").values_list("day", flat=True))
    assert len(days) == 8 and days[-1] == today and (today - days[0]).days == 7
    assert UsageSnapshot.objects.filter(tenant=tenant).count() == 8
    assert set(BillingUsage.objects.filter(tenant=tenant).exclude(day=today).values_list("active_widgets", flat=True)) == {1}
    assert "tenant 'demo-tenant': created" in out and "Seeded 'demo-tenant': 12 thing(s) created." in out


def test_default_tenant_id():
    seed()

    assert Tenant.objects.get(pk="tenant-slice6-demo").slug == "slice-6-demo"


def test_running_twice_changes_nothing():
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    before = row_counts()
    usage_before = list(BillingUsage.objects.order_by("day").values())

    out = seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    assert row_counts() == before
    assert [{k: v for k, v in row.items() if k != "updated_at"} for row in BillingUsage.objects.order_by("day").values()] == [
        {k: v for k, v in row.items() if k != "updated_at"} for row in usage_before
    ]
    assert "nothing new: already seeded" in out
    assert "rule 'MQL delta spike' (metric_threshold): found" in out


def test_a_slug_that_belongs_to_another_tenant_is_a_clear_error():
    TenantFactory(id="someone-else", name="Demo Tenant", slug="demo-tenant")

    with pytest.raises(CommandError, match=r"The slug 'demo-tenant' .* belongs to tenant 'someone-else'; choose another with --tenant-slug"):
        seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    assert not Tenant.objects.filter(pk="demo-tenant").exists()

    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant", "--tenant-slug", "demo-tenant-2")
    assert Tenant.objects.get(pk="demo-tenant").slug == "demo-tenant-2"


def test_an_invalid_tenant_id_is_a_clear_error():
    with pytest.raises(CommandError, match="Cannot create tenant 'Bad Id'"):
        seed("--tenant", "Bad Id")


def test_the_next_engine_tick_fires_every_seeded_rule_type():
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    now = timezone.now()

    report = evaluate_rules(rule_ids=due_rule_ids(now=now), now=now)

    assert (report.evaluated, report.errors) == (4, 0)
    engine_alerts = Alert.objects.filter(history__actor="engine")
    assert sorted(engine_alerts.values_list("rule_type", flat=True)) == ["anomaly", "metric_threshold", "schedule"]
    anomaly = engine_alerts.get(rule_type="anomaly").payload
    assert (anomaly["metric"], anomaly["value"]) == ("usage.tokensUsed", 9600.0)
    assert engine_alerts.get(rule_type="metric_threshold").payload["value"] == 31.0
    # The acknowledged example keeps the churn rule from raising a second open alert.
    assert Alert.objects.filter(rule__name="Churn risk above 0.7").count() == 1
    assert sum(BillingUsage.objects.filter(day=now.date()).values_list("alerts_triggered", flat=True)) == 3


def test_demo_access_prints_a_working_key_and_revokes_the_previous_one():
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    out = StringIO()
    call_command("demo_access", "--tenant", "demo-tenant", stdout=StringIO())
    call_command("demo_access", "--tenant", "demo-tenant", "--base-url", "http://localhost:9000", stdout=out)

    key = next(line.strip() for line in out.getvalue().splitlines() if line.strip().startswith("pi_"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert len(client.get("/alerts").json()["results"]) == 3
    assert "curl -s http://localhost:9000/alerts" in out.getvalue()
    assert ApiKey.objects.filter(tenant_id="demo-tenant", revoked_at__isnull=True).count() == 1
    with pytest.raises(CommandError, match="run seed_slice6 first"):
        call_command("demo_access", "--tenant", "nobody", stdout=StringIO())
