"""The rule pages of the staff console: health, schedules explained, the backtest panel and Preview."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from alerts.models import Alert
from proactive.models import TriggerRule
from tests.factories import (
    StaffUserFactory,
    TriggerRuleFactory,
    UserFactory,
    metric_points,
    raise_alert,
    rule_with_health,
)

pytestmark = pytest.mark.django_db

RULES = "/admin/proactive/triggerrule/"


def form(**overrides):
    return {
        "tenant": "acme",
        "name": "Preview me",
        "type": "metric_threshold",
        "severity": "warning",
        "enabled": "on",
        "schedule": "",
        "metric": "queue.depth",
        "threshold": "50",
        "window_days": "",
        "preview_days": "1",
        **overrides,
    }


def spiky_minutes(tenant, metric="queue.depth"):
    """A day of one-minute points at 10, with three spikes to 80 (two of them within the hour)."""
    end = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    values = [10.0] * 1440
    for minute in (300, 330, 1000):
        values[minute] = 80.0
    metric_points(tenant, metric, *values, end=end, every=timedelta(minutes=1))


def test_status_column_and_health_filter_tell_disabled_from_ok_no_data_and_error(staff, tenant):
    rule_with_health(tenant=tenant, name="Healthy", health="ok")
    rule_with_health(tenant=tenant, name="Broken", health="error", last_error="boom")
    rule_with_health(tenant=tenant, name="Silent", health="noData")
    rule_with_health(tenant=tenant, name="Switched off", enabled=False, health="ok")

    def names(health):
        return sorted(rule.name for rule in staff.get(RULES, {"health": health}).context["cl"].result_list)

    assert names("ok") == ["Healthy"]
    assert names("error") == ["Broken"]
    assert names("noData") == ["Silent"]
    assert names("disabled") == ["Switched off"]
    listing = staff.get(RULES).content.decode()
    assert re.findall(r'data-status="(\w+)"', listing).count("disabled") == 1
    assert "● No data" in listing and "● Error" in listing and "● Disabled" in listing


def test_schedule_rule_page_explains_the_cron_and_lists_the_next_five_runs(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="30 9 * * 1-5", metric="", threshold=None)

    body = staff.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert "At 09:30, Monday through Friday (UTC)" in body
    runs = re.findall(r"<li>(\d{4}-\d\d-\d\d 09:30 UTC)</li>", body)
    assert len(runs) == 5 and runs == sorted(runs)
    assert "the schedule had" in body  # its backtest: occurrences in the last days


def test_metric_rule_page_backtests_the_last_week_with_chart_and_would_be_alerts(staff, tenant):
    spiky_minutes(tenant)
    rule = TriggerRuleFactory(tenant=tenant, metric="queue.depth", threshold=50.0, auto_resolve=True)

    body = staff.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert 'data-alerts="3" data-flaps="1"' in body
    assert re.search(r'class="pi-line" data-series="queue.depth" data-points="\d+"', body)
    assert 'class="pi-threshold" data-series="threshold" data-value="50.0"' in body
    assert body.count('class="pi-span" data-series="would-be alert"') == 3
    assert not Alert.objects.exists()


def test_preview_backtests_unsaved_values_and_saves_nothing(staff, tenant):
    spiky_minutes(tenant)

    response = staff.post(f"{RULES}preview/", form(threshold="50", auto_resolve="on"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview of the values in the form (not saved)." in body
    assert 'data-alerts="3" data-flaps="1" data-firings="3"' in body
    assert body.count('class="pi-marker" data-series="would-be alert opens"') == 3
    assert not TriggerRule.objects.exists() and not Alert.objects.exists()


def test_preview_of_an_anomaly_rule_draws_the_band(staff, tenant):
    spiky_minutes(tenant)

    body = staff.post(
        f"{RULES}preview/", form(type="anomaly", threshold="3", window_days="1", auto_resolve="on")
    ).content.decode()

    assert re.search(r'class="pi-band" data-series="mean ± 3σ" data-points="\d+"', body)
    assert int(re.search(r'data-alerts="(\d+)"', body).group(1)) >= 1


def test_preview_on_a_saved_rule_uses_the_form_values_not_the_saved_ones(staff, tenant):
    spiky_minutes(tenant)
    rule = TriggerRuleFactory(tenant=tenant, metric="queue.depth", threshold=50.0)

    body = staff.post(f"{RULES}{rule.pk}/preview/", form(threshold="100")).content.decode()

    assert 'data-alerts="0"' in body
    rule.refresh_from_db()
    assert rule.threshold == 50.0


def test_preview_shows_the_same_validation_errors_as_saving_and_changes_nothing(staff, tenant):
    body = staff.post(
        f"{RULES}preview/", form(type="schedule", schedule="61 * * * *", metric="", threshold="")
    ).content.decode()

    assert "These values cannot be backtested" in body
    assert "<strong>schedule</strong>: &#x27;61 * * * *&#x27; is not a valid cron expression" in body
    assert not TriggerRule.objects.exists()


def test_preview_can_run_before_the_rule_is_named(staff, tenant):
    spiky_minutes(tenant)

    body = staff.post(f"{RULES}preview/", form(name="")).content.decode()

    # Three firings, but without auto-resolve the first alert stays open: one alert.
    assert "These values cannot be backtested" not in body and 'data-alerts="1" data-flaps="0" data-firings="3"' in body


def test_preview_and_the_alert_buttons_need_the_csrf_token(tenant):
    from django.test import Client

    from tests.factories import raise_alert as raise_one

    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffUserFactory())
    alert = raise_one(TriggerRuleFactory(tenant=tenant))

    assert client.post(f"{RULES}preview/", form()).status_code == 403
    assert client.post(f"/admin/alerts/alert/{alert.pk}/work/", {"action": "acknowledge"}).status_code == 403
    alert.refresh_from_db()
    assert alert.status == "pending"


def test_preview_is_post_only_and_needs_a_rule_that_exists(staff, tenant):
    assert staff.get(f"{RULES}preview/").status_code == 405
    assert staff.post(f"{RULES}999999/preview/", form()).status_code == 404


def test_add_form_carries_the_preview_button_and_the_type_switching_script(staff):
    body = staff.get(f"{RULES}add/").content.decode()

    assert 'id="rule-preview-button" data-url="/admin/proactive/triggerrule/preview/"' in body
    assert "proactive/admin/rule_form.js" in body


def test_preview_of_a_schedule_explains_it_and_counts_its_occurrences(staff, tenant):
    body = staff.post(
        f"{RULES}preview/",
        form(type="schedule", schedule="0 */6 * * *", metric="", threshold="", preview_days="7"),
    ).content.decode()

    assert "<strong>Every 6 hours (UTC)</strong>" in body
    assert re.search(r"the schedule had (2[89]|30) occurrences", body)
    assert len(re.findall(r"<li>\d{4}-\d\d-\d\d \d\d:00 UTC</li>", body)) == 5


def test_a_schedule_saved_before_cron_was_strict_still_shows_its_page(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 9 * * 1", metric="", threshold=None)
    TriggerRule.objects.filter(pk=rule.pk).update(schedule="0 9 * * 1#2")  # croniter's "second Monday"

    response = staff.get(f"{RULES}{rule.pk}/change/")

    assert response.status_code == 200
    assert "day of week &#x27;1#2&#x27; is not standard cron" in response.content.decode()


def test_staff_who_may_only_view_rules_cannot_preview(client, tenant):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_triggerrule"))
    client.force_login(viewer)
    rule = TriggerRuleFactory(tenant=tenant)

    page = client.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert "rule-preview-button" not in page
    assert client.post(f"{RULES}{rule.pk}/preview/", form()).status_code == 403
    assert client.post(f"{RULES}preview/", form()).status_code == 403


def test_the_form_script_is_shipped_and_told_each_types_fields(staff):
    from django.contrib.staticfiles import finders

    script = Path(finders.find("proactive/admin/rule_form.js")).read_text()
    page = staff.get(f"{RULES}add/").content.decode()

    declared = json.loads(
        re.search(r'<script id="rule-fields-of-type" type="application/json">(.*?)</script>', page).group(1)
    )
    assert declared["type"]["schedule"] == ["schedule", "timezone", "schedule_explained"]
    assert declared["type"]["anomaly"] == [
        "metric",
        "threshold",
        "window_days",
        "auto_resolve",
        "for_evaluations",
        "clear_evaluations",
        "no_data",
        "method",
        "direction",
    ]
    assert "comparison" in declared["type"]["metric_threshold"] and "method" not in declared["type"]["metric_threshold"]
    assert declared["comparison"]["outside"] == ["threshold_high"] and declared["comparison"]["above"] == []
    assert declared["aggregate"]["avg"] == ["aggregate_minutes"] and declared["aggregate"]["last"] == []
    assert "rule-fields-of-type" in script and "rule-preview-button" in script


def test_switching_a_rule_to_schedule_drops_the_hidden_metric_fields(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, metric="queue.depth", threshold=50.0, window_days=7, auto_resolve=True)

    # What the browser posts after the type is switched: the hidden metric inputs still hold their values.
    response = staff.post(
        f"{RULES}{rule.pk}/change/",
        {**form(type="schedule", schedule="0 9 * * 1", window_days="7", auto_resolve="on"), "tenant": tenant.pk},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert (rule.type, rule.schedule, rule.metric, rule.threshold, rule.window_days, rule.auto_resolve) == (
        "schedule",
        "0 9 * * 1",
        "",
        None,
        None,
        False,
    )


def test_a_bad_value_in_a_field_the_type_does_not_use_is_dropped_not_reported(staff, tenant):
    response = staff.post(f"{RULES}add/", form(schedule="61 * * * *"))  # a metric rule; the schedule is hidden

    assert response.status_code == 302
    assert TriggerRule.objects.get().schedule == ""


def test_staff_who_may_only_view_rules_cannot_enable_or_disable_them(client, tenant):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_triggerrule"))
    client.force_login(viewer)
    rule = TriggerRuleFactory(tenant=tenant, enabled=False)

    listing = client.get(RULES).content.decode()
    client.post(RULES, {"action": "enable_rules", "_selected_action": [rule.pk]})

    assert "enable_rules" not in listing
    rule.refresh_from_db()
    assert rule.enabled is False


def test_deleting_a_rule_in_the_admin_keeps_its_alerts(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="Gone soon")
    alert = raise_alert(rule)

    staff.post(f"{RULES}{rule.pk}/delete/", {"post": "yes"})

    alert.refresh_from_db()
    assert not TriggerRule.objects.exists()
    assert (alert.rule_id, alert.rule_name) == (None, "Gone soon")


def test_preview_draws_a_ranges_two_lines_and_no_line_for_a_change(staff, tenant):
    spiky_minutes(tenant)

    ranged = staff.post(
        f"{RULES}preview/", form(comparison="outside", threshold="5", threshold_high="50", aggregate="last")
    ).content.decode()
    change = staff.post(
        f"{RULES}preview/", form(comparison="changeAbove", threshold="100", compare_days="1", aggregate="last")
    ).content.decode()

    assert re.findall(r'class="pi-threshold" data-series="(\w+)" data-value="([\d.]+)"', ranged) == [
        ("low", "5.0"),
        ("high", "50.0"),
    ]
    assert 'data-alerts="1" data-flaps="0" data-firings="3"' in ranged  # no auto-resolve: one alert stays open
    assert "pi-threshold" not in change and "These values cannot be backtested" not in change
