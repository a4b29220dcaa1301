import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import stripe
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert
from alerts.services import alert_resolve
from billing.models import BillingUsage, UsageSnapshot
from core.envfile import read_env_file
from marketplace.models import TenantWidget, Widget
from marketplace.services import widget_uninstall
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
        "anomaly",
        "metric_threshold",
        "metric_threshold",
        "schedule",
    ]
    assert sorted(Alert.objects.values_list("status", flat=True)) == ["acknowledged", "resolved", "resolved"]
    today = timezone.now().date()
    days = list(BillingUsage.objects.filter(tenant=tenant).order_by("day").values_list("day", flat=True))
    assert len(days) == 8 and days[-1] == today and (today - days[0]).days == 7
    assert UsageSnapshot.objects.filter(tenant=tenant).count() == 8
    assert set(
        BillingUsage.objects.filter(tenant=tenant).exclude(day=today).values_list("active_widgets", flat=True)
    ) == {1}
    assert "tenant 'demo-tenant': created" in out
    assert "Seeded 'demo-tenant': 19 thing(s) created, 0 left as they were." in out


def test_default_tenant_id():
    seed()

    assert Tenant.objects.get(pk="tenant-slice6-demo").slug == "slice-6-demo"


def test_running_twice_changes_nothing():
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    before = row_counts()
    usage_before = list(BillingUsage.objects.order_by("day").values())

    out = seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    assert row_counts() == before
    assert [
        {k: v for k, v in row.items() if k != "updated_at"} for row in BillingUsage.objects.order_by("day").values()
    ] == [{k: v for k, v in row.items() if k != "updated_at"} for row in usage_before]
    assert "nothing new: already seeded (19 thing(s) left as they were)" in out
    assert "rule 'MQL delta spike' (metric_threshold): exists, left as it is" in out


def test_seeding_again_never_overwrites_live_data(client):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    yesterday = timezone.now().date() - timedelta(days=1)
    seeded_tokens = BillingUsage.objects.get(tenant_id="demo-tenant", day=yesterday).tokens_used
    # Live changes: a billing event adds 500 tokens to a seeded day, the tenant uninstalls the
    # widget, someone raises a rule's threshold and resolves the acknowledged example alert.
    payload = json.dumps(
        {
            "id": "evt_live",
            "type": "invoice.created",
            "data": {
                "object": {
                    "metadata": {"tenantId": "demo-tenant", "tokensUsed": "500", "usageDate": yesterday.isoformat()}
                }
            },
        }
    )
    webhook = client.post(
        "/billing/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe.WebhookSignature.generate_signature_header(
            payload, settings.STRIPE_WEBHOOK_SECRET
        ),
    )
    widget_uninstall(tenant=Tenant.objects.get(pk="demo-tenant"), widget=Widget.objects.get(slug="revenue-radar"))
    TriggerRule.objects.filter(name="MQL delta spike").update(threshold=99)
    acknowledged = Alert.objects.get(status="acknowledged")
    alert_resolve(alert=acknowledged, actor="user:ops")
    before = row_counts()
    usage_before = list(BillingUsage.objects.order_by("day").values())

    out = seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    assert webhook.json()["outcome"] == "applied"
    assert BillingUsage.objects.get(tenant_id="demo-tenant", day=yesterday).tokens_used == seeded_tokens + 500
    assert UsageSnapshot.objects.get(tenant_id="demo-tenant", day=yesterday).tokens_used == seeded_tokens + 500
    assert list(BillingUsage.objects.order_by("day").values()) == usage_before
    assert row_counts() == before
    assert TenantWidget.objects.get().enabled is False
    assert TriggerRule.objects.get(name="MQL delta spike").threshold == 99
    assert Alert.objects.get(pk=acknowledged.pk).status == "resolved"
    assert f"usage {yesterday}: exists, left as it is" in out
    assert "widget 'revenue-radar' for 'demo-tenant': uninstalled, left as it is" in out


def test_a_deleted_seeded_day_is_written_again_and_said_so():
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    day = timezone.now().date() - timedelta(days=3)
    BillingUsage.objects.filter(day=day).delete()

    out = seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    assert BillingUsage.objects.filter(day=day).count() == 1
    assert f"usage {day}: written" in out
    assert "Seeded 'demo-tenant': 1 thing(s) created, 18 left as they were." in out


def test_a_slug_that_belongs_to_another_tenant_is_a_clear_error():
    TenantFactory(id="someone-else", name="Demo Tenant", slug="demo-tenant")

    with pytest.raises(
        CommandError,
        match=r"The slug 'demo-tenant' .* belongs to tenant 'someone-else'; choose another with --tenant-slug",
    ):
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


@pytest.fixture
def demo_env(settings, tmp_path):
    settings.DEBUG = True  # demo_access is for the local demo only
    settings.DEMO_ENV_FILE = tmp_path / "var" / "demo.env"
    return settings.DEMO_ENV_FILE


def demo_access(*args) -> str:
    out = StringIO()
    call_command("demo_access", "--tenant", "demo-tenant", *args, stdout=out)
    return out.getvalue()


def test_demo_access_keeps_the_key_across_restarts_and_writes_what_the_docs_use(demo_env, settings):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")

    first = demo_access()
    second = demo_access("--base-url", "http://localhost:9000")

    values = read_env_file(demo_env)
    assert set(values) == {"KEY", "INTERNAL_ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET"}
    assert oct(demo_env.stat().st_mode & 0o777) == "0o600"
    key = values["KEY"]
    assert f"API key (new):\n    {key}" in first
    assert f"API key (the same as at the last start):\n    {key}" in second
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert len(client.get("/alerts").json()["results"]) == 3
    assert "curl -s http://localhost:9000/alerts" in second
    assert f"set -a; . {demo_env}; set +a" in second
    assert ApiKey.objects.filter(tenant_id="demo-tenant", revoked_at__isnull=True).count() == 1
    # The test settings set both secrets: the file carries what the server uses, and says so.
    assert values["INTERNAL_ADMIN_API_KEY"] == settings.INTERNAL_ADMIN_API_KEY
    assert values["STRIPE_WEBHOOK_SECRET"] == settings.STRIPE_WEBHOOK_SECRET
    assert "Admin key, X-Admin-Key (from your settings)" in second


def test_secrets_read_back_from_the_file_are_said_to_be_kept(demo_env, settings):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    settings.DEMO_SECRETS_FROM_FILE = ["INTERNAL_ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET"]

    out = demo_access()

    assert "Admin key, X-Admin-Key (kept from the last start)" in out
    assert "Webhook secret, STRIPE_WEBHOOK_SECRET (kept from the last start)" in out


def test_demo_access_generates_the_missing_secrets(demo_env, settings):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    settings.INTERNAL_ADMIN_API_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    out = demo_access()

    values = read_env_file(demo_env)
    assert values["STRIPE_WEBHOOK_SECRET"].startswith("whsec_") and len(values["STRIPE_WEBHOOK_SECRET"]) > 40
    assert len(values["INTERNAL_ADMIN_API_KEY"]) >= 40
    assert f"Admin key, X-Admin-Key (generated for this demo): {values['INTERNAL_ADMIN_API_KEY']}" in out
    assert f"(generated for this demo): {values['STRIPE_WEBHOOK_SECRET']}" in out


def test_a_lost_demo_key_is_replaced_and_the_old_one_revoked_saying_so(demo_env):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    demo_access()
    old = read_env_file(demo_env)["KEY"]
    demo_env.write_text("")  # the file was deleted or edited

    out = demo_access()

    new = read_env_file(demo_env)["KEY"]
    assert new != old
    assert "API key (new; the previous demo key (1) was revoked)" in out
    assert ApiKey.objects.get(revoked_at__isnull=True).prefix == new.split("_")[1]


def test_demo_access_needs_the_tenant(demo_env):
    with pytest.raises(CommandError, match="run seed_slice6 first"):
        call_command("demo_access", "--tenant", "nobody", stdout=StringIO())


def test_demo_access_refuses_to_print_production_secrets(demo_env, settings):
    seed("--tenant", "demo-tenant", "--tenant-name", "Demo Tenant")
    settings.DEBUG = False

    with pytest.raises(CommandError, match="for the local demo"):
        demo_access()
    assert not demo_env.exists()


def test_debug_settings_read_the_demo_secrets_and_the_environment_wins(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "demo.env").write_text("KEY=pi_x\nINTERNAL_ADMIN_API_KEY=from-file\nSTRIPE_WEBHOOK_SECRET=whsec_file\n")
    code = "from django.conf import settings; print(settings.INTERNAL_ADMIN_API_KEY, settings.STRIPE_WEBHOOK_SECRET)"

    def settings_in(**env):
        base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(var), **env},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert settings_in(DEBUG="1") == ["from-file", "whsec_file"]
    assert settings_in(DEBUG="1", INTERNAL_ADMIN_API_KEY="from-env") == ["from-env", "whsec_file"]
    # Production never reads it (and so refuses to start without real secrets).
    production = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(var),
            "SECRET_KEY": "x" * 50,
            "DEBUG": "0",
        },
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert production.returncode != 0 and "core.E001" in production.stderr
