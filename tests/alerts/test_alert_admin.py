import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from alerts.admin import evidence_rows, readable_number
from alerts.models import Alert, AlertEvent
from alerts.services import alert_resolve
from proactive.engine.conditions import evaluate_anomaly
from tests.factories import TriggerRuleFactory, UserFactory, alert_payload, raise_alert

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/alerts/alert/"


def act(client, action, alerts, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [alert.pk for alert in alerts], "index": 0, **extra},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def history(alert) -> list[tuple[str, str, str]]:
    return list(alert.history.order_by("at", "id").values_list("from_status", "to_status", "actor"))


# --- List actions ---------------------------------------------------------------------------------


def test_acknowledge_from_the_list_records_the_staff_user(staff, tenant):
    alerts = [raise_alert(TriggerRuleFactory(tenant=tenant)) for _ in range(2)]

    response = act(staff, "acknowledge_alerts", alerts)

    assert messages_of(response) == ["Acknowledged 2 alert(s)."]
    for alert in alerts:
        alert.refresh_from_db()
        assert alert.status == "acknowledged" and alert.acknowledged_at is not None
        assert history(alert)[-1] == ("pending", "acknowledged", "user:dana")


def test_a_resolved_alert_is_skipped_with_the_reason_and_the_others_still_change(staff, tenant):
    open_alert = raise_alert(TriggerRuleFactory(tenant=tenant))
    resolved = alert_resolve(alert=raise_alert(TriggerRuleFactory(tenant=tenant)), actor="engine")

    response = act(staff, "acknowledge_alerts", [open_alert, resolved])

    assert messages_of(response) == [
        "Acknowledged 1 alert(s).",
        f"Skipped 1: #{resolved.pk}: A resolved alert cannot be acknowledged.",
    ]
    resolved.refresh_from_db()
    assert resolved.status == "resolved" and history(resolved)[-1][2] == "engine"


def test_resolve_from_the_list(staff, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    act(staff, "resolve_alerts", [alert])

    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.history.last().actor == "user:dana" and alert.history.last().reason == "from the admin"


def test_snooze_from_the_list_for_the_chosen_duration(staff, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))
    before = timezone.now()

    response = act(staff, "snooze_alerts", [alert], snooze_for="4h")

    alert.refresh_from_db()
    assert messages_of(response) == ["Snoozed for 4 hours 1 alert(s)."]
    assert alert.status == "snoozed"
    assert before + timedelta(hours=4) <= alert.snoozed_until <= timezone.now() + timedelta(hours=4)
    assert history(alert)[-1] == ("pending", "snoozed", "user:dana")


@pytest.mark.parametrize(
    ("snooze_for", "message"),
    [
        ("", "Choose how long to snooze for; nothing was changed."),
        ("3y", "No action selected."),  # not one of the choices: Django's action form rejects the whole post
    ],
)
def test_snooze_without_a_valid_duration_changes_nothing(staff, tenant, snooze_for, message):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    response = act(staff, "snooze_alerts", [alert], snooze_for=snooze_for)

    alert.refresh_from_db()
    assert alert.status == "pending" and len(history(alert)) == 1
    assert messages_of(response) == [message]


def test_staff_without_the_change_permission_cannot_work_alerts(client, tenant):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    client.force_login(viewer)
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    listing = client.get(CHANGELIST)
    forced = act(client, "acknowledge_alerts", [alert])
    button = client.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "acknowledge"})

    assert listing.status_code == 200 and "acknowledge_alerts" not in listing.content.decode()
    assert forced.status_code == 200 and messages_of(forced) == []
    assert button.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "pending"


# --- Buttons on the alert page --------------------------------------------------------------------


def test_alert_page_buttons_acknowledge_snooze_and_resolve(staff, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))
    page = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()
    assert 'id="alert-work"' in page and 'value="acknowledge"' in page and 'name="snooze_for"' in page

    staff.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "acknowledge"})
    staff.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "snooze", "snooze_for": "15m"})
    response = staff.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "resolve"}, follow=True)

    assert history(alert) == [
        ("", "pending", "engine"),
        ("pending", "acknowledged", "user:dana"),
        ("acknowledged", "snoozed", "user:dana"),
        ("snoozed", "resolved", "user:dana"),
    ]
    assert messages_of(response)[-1] == f"Resolved alert #{alert.pk}."
    assert 'id="alert-work"' not in response.content.decode()  # nothing left to do on a resolved alert


def test_alert_page_refuses_what_the_service_refuses(staff, tenant):
    alert = alert_resolve(alert=raise_alert(TriggerRuleFactory(tenant=tenant)), actor="engine")

    response = staff.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "snooze", "snooze_for": "1h"}, follow=True)
    unknown = staff.post(f"{CHANGELIST}{alert.pk}/work/", {"action": "delete"}, follow=True)

    assert messages_of(response) == [f"Alert #{alert.pk} was not changed: A resolved alert cannot be snoozed."]
    assert messages_of(unknown) == ["Unknown action or snooze duration; nothing was changed."]
    assert AlertEvent.objects.filter(alert=alert).count() == 2


def test_work_on_a_missing_alert_is_404(staff):
    assert staff.post(f"{CHANGELIST}999999/work/", {"action": "acknowledge"}).status_code == 404


# --- Reading --------------------------------------------------------------------------------------


def test_list_shows_reason_and_observed_value_and_filters_by_tenant_rule_status_severity(staff, tenant, other_tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="Spend spike", severity="critical")
    shown = raise_alert(rule, alert_payload(rule, value=1234567.891))
    other_rule = TriggerRuleFactory(tenant=other_tenant, name="Elsewhere")
    raise_alert(other_rule)

    page = staff.get(CHANGELIST, {"tenant__id__exact": tenant.pk, "rule": rule.pk, "severity__exact": "critical"})
    body = page.content.decode()

    assert list(page.context["cl"].result_list) == [shown]
    assert "1,234,568" in body and "Spend spike fired." in body
    assert f"?rule={other_rule.pk}" not in body  # the rule filter lists the chosen tenant's rules only
    assert staff.get(CHANGELIST, {"status__exact": "resolved"}).context["cl"].result_count == 0
    assert staff.get(CHANGELIST, {"rule": "not-a-number"}).context["cl"].result_count == 0


def test_every_time_in_the_admin_says_utc(staff, tenant):
    raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=datetime(2026, 11, 20, 14, 5, tzinfo=UTC))

    body = staff.get(CHANGELIST).content.decode()

    assert "2026-11-20 14:05:00 UTC" in body


def test_anomaly_evidence_is_a_readable_table_with_the_raw_json_folded(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", threshold=3.0, window_days=30)
    payload = {**alert_payload(rule, value=25.123456789), "std": 2.000000000001, "mean": 10.0}
    alert = raise_alert(rule, payload)

    body = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()

    table = re.search(r'<table class="pi-evidence">(.*?)</table>', body, re.S).group(1)
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table))
    assert rows["Observed value"] == "25.12"
    assert rows["Standard deviation (σ)"] == "2"
    assert rows["Normal band"] == "4 to 16"
    assert rows["z-score"] == "7.56σ (fires at ±3σ)"
    assert rows["Compared with"] == "the mean ± 3σ of 20 point(s) over 30 day(s)"
    assert "<details><summary>Raw payload (JSON)</summary>" in body and "25.123456789" in body


def test_evidence_rows_for_threshold_and_schedule_alerts():
    threshold = evidence_rows(
        {"metric": "m", "value": 0.000123456, "threshold": 5, "observedAt": "2026-11-26T14:00:00Z"}
    )
    schedule = evidence_rows({"schedule": "0 9 * * 1", "scheduledFor": "2026-11-23T09:00:00Z"})

    assert threshold == [
        ("Metric", "m"),
        ("Observed value", "0.000123"),
        ("Compared with", "above 5 (threshold)"),
        ("Observed at", "2026-11-26 14:00:00 UTC"),
    ]
    assert schedule == [("Schedule (cron, UTC)", "0 9 * * 1"), ("Scheduled for", "2026-11-23 09:00:00 UTC")]
    assert [readable_number(v) for v in (None, 0, 1500.4, -2.5)] == ["—", "0", "1,500", "-2.5"]


def test_evidence_rows_of_a_schedule_read_in_a_zone_give_its_local_time():
    rows = evidence_rows(
        {
            "schedule": "30 2 * * *",
            "scheduledFor": "2026-03-29T01:00:00Z",
            "timezone": "Europe/Berlin",
            "scheduledForLocal": "2026-03-29T03:00:00+02:00",
        }
    )

    assert rows == [
        ("Schedule (cron, Europe/Berlin)", "30 2 * * *"),
        ("Scheduled for", "2026-03-29 01:00:00 UTC"),
        ("Scheduled for (Europe/Berlin)", "2026-03-29 03:00:00+02:00"),
    ]


def test_the_rule_filter_lists_the_chosen_tenants_rules_once_under_their_latest_name(staff, tenant, other_tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="Old name")
    alert_resolve(alert=raise_alert(rule), actor="engine")
    Alert.objects.filter(rule=rule).update(rule_name="Old name")
    raise_alert(rule, {**alert_payload(rule), "reason": "again"})
    Alert.objects.filter(rule=rule, status="pending").update(rule_name="New name")
    raise_alert(TriggerRuleFactory(tenant=other_tenant, name="Theirs"))

    unfiltered = staff.get(CHANGELIST).content.decode()
    chosen = staff.get(CHANGELIST, {"tenant__id__exact": tenant.pk}).content.decode()

    assert "rule (of the chosen tenant)" in unfiltered and f"rule={rule.pk}" not in unfiltered
    assert chosen.count(f"rule={rule.pk}") == 1 and "New name" in chosen and "Theirs" not in chosen


def test_working_more_alerts_than_the_limit_at_once_is_refused(staff, tenant, monkeypatch):
    monkeypatch.setattr("alerts.admin.MAX_WORKED_AT_ONCE", 2)
    alerts = [raise_alert(TriggerRuleFactory(tenant=tenant)) for _ in range(3)]

    response = act(staff, "acknowledge_alerts", alerts)

    assert messages_of(response) == [
        "3 alerts selected; work at most 2 at a time (filter the list first). Nothing was changed."
    ]
    assert not Alert.objects.filter(status="acknowledged").exists()


def test_alerts_cannot_be_deleted_in_the_admin(staff, tenant):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    listing = staff.get(CHANGELIST).content.decode()
    delete_page = staff.get(f"{CHANGELIST}{alert.pk}/delete/")

    assert "delete_selected" not in listing
    assert delete_page.status_code == 403
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_with_a_single_tenant_the_rule_filter_lists_its_rules_without_a_tenant_chosen(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="Only tenant's rule")
    raise_alert(rule)

    body = staff.get(CHANGELIST).content.decode()

    assert f"?rule={rule.pk}" in body and "Only tenant&#x27;s rule" in body


def test_evidence_rows_say_what_each_option_compared():
    ranged = evidence_rows(
        {
            "metric": "m",
            "value": 95.0,
            "threshold": 10,
            "thresholdHigh": 90,
            "comparison": "outside",
            "observedAt": None,
        }
    )
    change = evidence_rows(
        {
            "metric": "signups",
            "value": 150.0,
            "threshold": -20,
            "comparison": "changeBelow",
            "baseline": 200.0,
            "baselineAt": "2026-11-19T13:25:00Z",
            "compareDays": 7,
            "changePercent": -25.0,
            "observedAt": "2026-11-26T13:25:00Z",
            "aggregate": "avg",
            "aggregateMinutes": 15,
            "points": 3,
            "breachingEvaluations": 3,
            "forEvaluations": 3,
        }
    )
    no_data = evidence_rows({"metric": "m", "noData": True, "aggregateMinutes": 15})

    assert ranged[2] == ("Compared with", "outside 10 to 90")
    assert change == [
        ("Metric", "signups"),
        ("Observed value", "150 (avg of 3 point(s) over 15 min)"),
        ("Compared with", "200 7 day(s) earlier (2026-11-19 13:25:00 UTC)"),
        ("Change", "-25% — fires below -20%"),
        ("Breaching for", "3 of 3 evaluations"),
        ("Observed at", "2026-11-26 13:25:00 UTC"),
    ]
    assert no_data == [
        ("Metric", "m"),
        ("No data", "no datapoints in the last 15 minute(s) (the rule alerts on no data)"),
    ]


def test_evidence_rows_of_robust_and_seasonal_anomalies():
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    mondays = [(start + timedelta(days=7 * week, hours=8), 100.0 + week) for week in range(4)]  # 09:00 in Berlin
    latest = (start + timedelta(days=28, hours=8), 150.0)
    seasonal = evaluate_anomaly(
        metric="checkouts", points=[*mondays, latest], method="seasonal", direction="up", timezone="Europe/Berlin"
    )
    robust = evaluate_anomaly(metric="m", points=[*mondays, (latest[0], 101.5)], method="robust")

    rows = dict(evidence_rows(seasonal.evidence))

    # median 101.5, deviations 1.5 0.5 0.5 1.5 → MAD 1, σ 1.4826; (150 − 101.5) / 1.4826 = 32.71
    assert rows["Method"] == "seasonal (median and MAD of the same hour and weekday)"
    assert rows["Compared with"] == "the median ± 2.5σ of 4 earlier point(s) of Mondays 09:00–10:00 Europe/Berlin"
    assert rows["Median"] == "101.5" and rows["MAD"] == "1" and rows["Robust σ"] == "1.48"
    assert rows["Normal band"] == "97.79 to 105.21"
    assert rows["Score"] == "32.71σ (fires at +2.5σ, up only)"
    assert dict(evidence_rows(robust.evidence))["Score"] == "0σ (fires at ±2.5σ)"
    assert dict(evidence_rows(robust.evidence))["Compared with"] == (
        "the median ± 2.5σ of 4 earlier point(s) over 30 day(s)"
    )
