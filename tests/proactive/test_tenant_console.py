"""The tenant pages of the staff console: daily usage charts and the overview."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.services import alert_resolve
from billing.services.usage import usage_insert_if_missing
from marketplace.services import widget_install, widget_register
from tests.factories import TriggerRuleFactory, raise_alert, rule_with_health

pytestmark = pytest.mark.django_db


def usage(tenant, day, tokens=0, tasks=0, alerts=0, widgets=0):
    usage_insert_if_missing(
        tenant_id=tenant.pk,
        day=day,
        values={"tokens_used": tokens, "tasks_executed": tasks, "alerts_triggered": alerts, "active_widgets": widgets},
    )


def test_tenant_page_charts_the_four_usage_counters_over_ninety_days(staff, tenant):
    today = timezone.now().date()
    usage(tenant, today, tokens=1500, tasks=3, alerts=2, widgets=1)
    usage(tenant, today - timedelta(days=89), tokens=700)
    usage(tenant, today - timedelta(days=90), tokens=999_999)  # outside the 90 days

    body = staff.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()

    for counter in ("tokens_used", "tasks_executed", "alerts_triggered", "active_widgets"):
        assert f'class="pi-line" data-series="{counter}" data-points="90"' in body
    tokens_chart = re.search(r"<svg[^>]*aria-label=\"Tokens used per day\".*?</svg>", body, re.S).group(0)
    y_ticks = re.findall(r'class="pi-y-tick"[^>]*>([^<]+)<', tokens_chart)
    assert y_ticks[-1] == "1500"  # the scale reaches today's 1,500, not the 999,999 before the 90 days


def test_overview_shows_open_alerts_by_severity_rules_needing_attention_widgets_and_month_usage(
    staff, tenant, other_tenant
):
    critical = TriggerRuleFactory(tenant=tenant, severity="critical")
    raise_alert(critical)
    raise_alert(TriggerRuleFactory(tenant=tenant, severity="warning"))
    alert_resolve(alert=raise_alert(TriggerRuleFactory(tenant=tenant, severity="info")), actor="engine")
    raise_alert(TriggerRuleFactory(tenant=other_tenant, severity="critical"))  # not this tenant's
    rule_with_health(tenant=tenant, name="Broken rule", health="error", last_error="Reading 'x' failed: timeout")
    rule_with_health(tenant=tenant, name="Silent rule", health="noData")
    rule_with_health(tenant=tenant, name="Disabled rule", enabled=False, health="error")
    today = timezone.now().date()
    usage(tenant, today, tokens=1200, tasks=4, alerts=3, widgets=1)
    if today.day > 1:
        usage(tenant, today - timedelta(days=1), tokens=300, widgets=2)
    usage(tenant, today.replace(day=1) - timedelta(days=1), tokens=50_000)  # last month
    widget = widget_register(
        slug="revenue-radar",
        name="Revenue radar",
        version="1.0.0",
        dashboard={"tile": {"title": "Radar", "size": "md"}},
    ).widget
    widget_install(tenant=tenant, widget=widget)

    response = staff.get(f"/admin/tenants/tenant/{tenant.pk}/overview/")
    body = response.content.decode()

    counts = dict(re.findall(r'<tr data-severity="(\w+)"><th>\w+</th><td class="pi-count">(?:<a [^>]+>)?(\d+)', body))
    assert counts == {"critical": "1", "warning": "1", "info": "0"}
    assert "Open alerts (2)" in body
    assert "Broken rule" in body and "timeout" in body and "Silent rule" in body
    assert "Disabled rule" not in body
    assert "Revenue radar" in body and "Radar · md" in body
    usage_rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([\d,]+)</td></tr>", body))
    assert usage_rows["Tokens used"] == f"{1200 + (300 if today.day > 1 else 0):,}"
    assert usage_rows["Active widgets (peak day)"] == ("2" if today.day > 1 else "1")


def test_overview_of_an_unknown_tenant_is_404_and_needs_staff(staff, client, tenant):
    assert staff.get("/admin/tenants/tenant/nope/overview/").status_code == 404
    client.logout()
    assert client.get(f"/admin/tenants/tenant/{tenant.pk}/overview/").status_code == 302  # to the login page


def test_overview_shows_only_what_the_staff_user_may_view(client, tenant):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    support = UserFactory(is_staff=True)
    support.user_permissions.add(*Permission.objects.filter(codename__in=["view_tenant", "view_alert"]))
    client.force_login(support)
    raise_alert(TriggerRuleFactory(tenant=tenant, severity="critical"))
    rule_with_health(tenant=tenant, name="Secret rule", health="error", last_error="credentials rejected")

    overview = client.get(f"/admin/tenants/tenant/{tenant.pk}/overview/").content.decode()
    page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()

    assert 'id="overview-alerts"' in overview and "Open alerts (1)" in overview
    assert 'id="overview-rules"' not in overview and "credentials rejected" not in overview
    assert 'id="overview-widgets"' not in overview and 'id="overview-usage"' not in overview
    assert "pi-chart" not in page  # the usage charts need the billing view permission


def test_moving_a_tenant_to_another_zone_in_the_admin_moves_its_schedule_rules(staff, tenant):
    from datetime import UTC, datetime

    follows = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 9 * * *")
    own_zone = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 9 * * *", timezone="UTC")

    response = staff.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "timezone": "Asia/Tokyo",
            "stripe_customer_id": "",
            **{
                f"{prefix}-{field}": value
                for prefix in ("memberships", "api_keys")
                for field, value in (
                    ("TOTAL_FORMS", "0"),
                    ("INITIAL_FORMS", "0"),
                    ("MIN_NUM_FORMS", "0"),
                    ("MAX_NUM_FORMS", "1000"),
                )
            },
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    follows.refresh_from_db()
    own_zone.refresh_from_db()
    tenant.refresh_from_db()
    assert tenant.timezone == "Asia/Tokyo"
    assert follows.next_run_at.astimezone(UTC).hour == 0  # 09:00 in Tokyo
    assert own_zone.next_run_at.astimezone(UTC).hour == 9
    assert follows.next_run_at > datetime.now(UTC)
