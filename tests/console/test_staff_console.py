"""
The staff console end to end in headless Chromium: log in, preview an anomaly rule and see the
would-be alerts on its chart, save it, acknowledge an alert from the list and find your name in its
history. The screenshots are the ones docs/guide.md shows (UPDATE_SCREENSHOTS=1 rewrites them).
"""

import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Alert
from billing.services.usage import usage_insert_if_missing
from marketplace.services import widget_install, widget_register
from proactive.models import TriggerRule
from tests.factories import StaffUserFactory, TriggerRuleFactory, alert_payload, metric_points, raise_alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console_data(tenant):
    """Two days of one-minute latency with three spikes, and an open alert on a queue-depth rule."""
    now = timezone.now().replace(second=0, microsecond=0)
    noise = random.Random(6)
    latency = [100 + noise.gauss(0, 4) for _ in range(2 * 1440)]
    for minute in (1700, 1730, 2500):
        latency[minute] = 190.0
    metric_points(tenant, "api.latency_ms", *latency, end=now - timedelta(minutes=2), every=timedelta(minutes=1))

    fired_at = now - timedelta(hours=2)
    depth = [12 + (i % 7) for i in range(180)] + [95.0] + [14.0] * 30
    metric_points(tenant, "queue.depth", *depth, end=fired_at + timedelta(minutes=30), every=timedelta(minutes=1))
    rule = TriggerRuleFactory(tenant=tenant, name="Queue depth high", metric="queue.depth", threshold=60.0)
    payload = {**alert_payload(rule, value=95.0), "observedAt": f"{fired_at:%Y-%m-%dT%H:%M:%SZ}"}
    payload["reason"] = "queue.depth is 95, above 60."
    alert = raise_alert(rule, payload, triggered_at=fired_at)
    StaffUserFactory(username="dana", password=PASSWORD)

    # For the tenant's overview: a rule that cannot read its metric, usage this month, a widget.
    broken = TriggerRuleFactory(tenant=tenant, name="Signups drop", metric="signups.daily", threshold=5.0)
    TriggerRule.objects.filter(pk=broken.pk).update(health="noData", last_evaluated_at=now)
    today = now.date()
    for days_ago in range(min(today.day, 20)):
        usage_insert_if_missing(
            tenant_id=tenant.pk,
            day=today - timedelta(days=days_ago),
            values={
                "tokens_used": 900 + 37 * days_ago,
                "tasks_executed": 12,
                "alerts_triggered": 1,
                "active_widgets": 0,
            },
        )
    widget = widget_register(
        slug="latency-board", name="Latency board", version="1.2.0", dashboard={"tile": {"title": "p95", "size": "md"}}
    ).widget
    widget_install(tenant=tenant, widget=widget)
    return alert


def drawn_points(path_d: str) -> int:
    return len(re.findall(r"[ML][\d.]+,[\d.]+", path_d))


def test_staff_previews_saves_and_works_alerts_in_the_browser(page, console_data, screenshot):
    alert = console_data

    # Log in.
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("dana")

    # A new anomaly rule: the form shows only its type's fields.
    page.goto("/admin/proactive/triggerrule/add/")
    page.click("#toggle-nav-sidebar")  # more room for the pages (and the screenshots)
    page.click(".field-tenant .select2-selection")
    page.fill(".select2-search__field", "acme")
    page.click(".select2-results__option >> text=Acme")
    page.fill("#id_name", "Latency anomaly")
    page.select_option("#id_type", "schedule")
    expect(page.locator(".form-row.field-schedule")).to_be_visible()
    expect(page.locator(".form-row.field-metric")).to_be_hidden()
    page.select_option("#id_type", "anomaly")
    expect(page.locator(".form-row.field-schedule")).to_be_hidden()
    expect(page.locator(".form-row.field-window_days")).to_be_visible()
    page.fill("#id_metric", "api.latency_ms")
    page.fill("#id_threshold", "4")
    page.fill("#id_window_days", "1")
    page.check("#id_auto_resolve")

    # Preview: the backtest of the unsaved values, drawn.
    page.select_option("#id_preview_days", "1")
    page.click("#rule-preview-button")
    backtest = page.locator("#rule-backtest .pi-backtest[data-alerts]")
    expect(backtest).to_contain_text("Preview of the values in the form (not saved).")
    would_be_alerts = int(backtest.get_attribute("data-alerts"))
    assert would_be_alerts >= 2, backtest.inner_text()
    line = page.locator("#rule-backtest path.pi-line[data-series='api.latency_ms']")
    points = int(line.get_attribute("data-points"))
    assert points >= 1400 and drawn_points(line.get_attribute("d")) == points
    box = line.bounding_box()
    assert box["width"] > 500 and box["height"] > 30  # drawn across the chart, not collapsed
    expect(page.locator("#rule-backtest path.pi-band")).to_have_count(1)
    expect(page.locator("#rule-backtest rect.pi-span")).to_have_count(would_be_alerts)
    expect(page.locator("#rule-backtest .pi-would-be-alerts-table tbody tr")).to_have_count(would_be_alerts)
    screenshot(page, "console-rule-preview", locator=page.locator("#triggerrule_form"))
    assert not TriggerRule.objects.filter(name="Latency anomaly").exists()  # previewing saved nothing

    # Save it.
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_contain_text("Latency anomaly")
    rule = TriggerRule.objects.get(name="Latency anomaly")
    assert (rule.tenant_id, rule.type, rule.threshold, rule.window_days, rule.auto_resolve) == (
        "acme",
        "anomaly",
        4.0,
        1,
        True,
    )
    screenshot(page, "console-rules", full_page=False)

    # Acknowledge the open alert from the list.
    page.goto("/admin/alerts/alert/")
    row = page.locator("#result_list tbody tr", has_text="Queue depth high")
    expect(row).to_contain_text("95")  # the observed value column
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "acknowledge_alerts")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Acknowledged 1 alert(s).")
    screenshot(page, "console-alerts", full_page=False)
    assert Alert.objects.get(pk=alert.pk).status == "acknowledged"

    # Their name is in the alert's history; the chart shows the metric around the firing.
    page.click(f"#result_list a[href$='/alerts/alert/{alert.pk}/change/'] >> nth=0")
    history = page.locator("#history-group")
    expect(history).to_contain_text("user:dana")
    expect(history).to_contain_text("Acknowledged")
    alert_line = page.locator("path.pi-line[data-series='queue.depth']")
    assert drawn_points(alert_line.get_attribute("d")) == int(alert_line.get_attribute("data-points")) > 100
    expect(page.locator("line.pi-threshold")).to_have_count(1)
    expect(page.locator("circle.pi-marker[data-series='fired']")).to_have_count(1)
    expect(page.locator("table.pi-evidence")).to_contain_text("above 60 (threshold)")
    expect(page.locator("details pre")).to_be_hidden()  # the raw JSON is folded away
    screenshot(page, "console-alert")

    # The tenant overview.
    page.goto("/admin/tenants/tenant/acme/overview/")
    expect(page.locator("#overview-alerts")).to_contain_text("Warning")
    expect(page.locator("#overview-alerts tr[data-severity='warning'] .pi-count")).to_have_text("1")
    expect(page.locator("#overview-rules")).to_contain_text("Signups drop")
    expect(page.locator("#overview-widgets")).to_contain_text("p95 · md")
    screenshot(page, "console-tenant-overview", full_page=False)

    # The tenant's page charts its four daily usage counters.
    page.click("text=Daily usage charts, last 90 days")
    for counter in ("tokens_used", "tasks_executed", "alerts_triggered", "active_widgets"):
        usage_line = page.locator(f"path.pi-line[data-series='{counter}']")
        assert usage_line.get_attribute("data-points") == "90"
    screenshot(page, "console-tenant-usage", locator=page.locator(".field-usage"))
