from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from proactive.models import TriggerRule
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db

SCHEDULE_RULE = {"name": "Weekly briefing", "type": "schedule", "schedule": "0 13 * * 1", "severity": "info"}
THRESHOLD_RULE = {"name": "MQL spike", "type": "metric_threshold", "metric": "analytics.mql.delta", "threshold": 25}
ANOMALY_RULE = {"name": "Token anomaly", "type": "anomaly", "metric": "usage.tokensUsed", "windowDays": 14}


def test_create_schedule_rule(tenant_client):
    response = tenant_client.post("/triggers", SCHEDULE_RULE, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {
        k: body[k] for k in ("name", "type", "schedule", "metric", "threshold", "windowDays", "severity", "enabled")
    } == {
        "name": "Weekly briefing",
        "type": "schedule",
        "schedule": "0 13 * * 1",
        "metric": None,
        "threshold": None,
        "windowDays": None,
        "severity": "info",
        "enabled": True,
    }
    next_run = datetime.fromisoformat(body["nextRunAt"])
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 13, 0)
    assert body["lastEvaluatedAt"] is None and body["lastError"] is None
    assert TriggerRule.objects.get(pk=body["id"]).tenant_id == "acme"


def test_create_threshold_rule_defaults_to_warning(tenant_client):
    body = tenant_client.post("/triggers", THRESHOLD_RULE, format="json").json()

    # The window the engine reads is stored and shown, not left implicit.
    assert (body["threshold"], body["severity"], body["windowDays"]) == (25.0, "warning", 30)


def test_anomaly_threshold_defaults_to_2_5_and_window_to_30(tenant_client):
    body = tenant_client.post(
        "/triggers", {"name": "a", "type": "anomaly", "metric": "analytics.mql.delta"}, format="json"
    ).json()

    assert (body["threshold"], body["windowDays"]) == (2.5, 30)
    override = tenant_client.post("/triggers", {**ANOMALY_RULE, "threshold": 3.5}, format="json").json()
    assert (override["threshold"], override["windowDays"]) == (3.5, 14)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({**SCHEDULE_RULE, "schedule": "61 * * * *"}, "schedule", "'61 * * * *' is not a valid cron expression: "),
        ({**SCHEDULE_RULE, "schedule": "* * * *"}, "schedule", "needs exactly 5 fields"),
        ({**SCHEDULE_RULE, "schedule": "*/5 * * * * *"}, "schedule", "needs exactly 5 fields"),
        ({**SCHEDULE_RULE, "schedule": "0 0 31 2 *"}, "schedule", "it never occurs"),
        ({k: v for k, v in SCHEDULE_RULE.items() if k != "schedule"}, "schedule", "Required for schedule rules"),
        ({**SCHEDULE_RULE, "metric": "x.y"}, "metric", "Only used by metric_threshold and anomaly rules"),
        (
            {k: v for k, v in THRESHOLD_RULE.items() if k != "metric"},
            "metric",
            "Required for metric_threshold and anomaly",
        ),
        ({k: v for k, v in THRESHOLD_RULE.items() if k != "threshold"}, "threshold", "Required for metric_threshold"),
        ({**THRESHOLD_RULE, "threshold": "NaN"}, "threshold", "Must be a number."),
        ({**THRESHOLD_RULE, "threshold": "Infinity"}, "threshold", "Must be a number."),
        ({**THRESHOLD_RULE, "threshold": "25"}, "threshold", "Must be a number."),
        ({**THRESHOLD_RULE, "threshold": True}, "threshold", "Must be a number."),
        ({**THRESHOLD_RULE, "schedule": "0 * * * *"}, "schedule", "Only used by schedule rules"),
        ({**THRESHOLD_RULE, "metric": "has space"}, "metric", "is not a valid metric identifier"),
        (
            {**THRESHOLD_RULE, "metric": "usage.nope"},
            "metric",
            "not a built-in usage metric; allowed: usage.tokensUsed",
        ),
        ({**ANOMALY_RULE, "threshold": 0}, "threshold", "must be greater than 0"),
        ({**ANOMALY_RULE, "windowDays": 0}, "windowDays", "greater than or equal to 1"),
        ({**ANOMALY_RULE, "windowDays": -3}, "windowDays", "greater than or equal to 1"),
        ({**ANOMALY_RULE, "windowDays": 2.5}, "windowDays", "Must be a whole number."),
        ({**ANOMALY_RULE, "windowDays": "7"}, "windowDays", "Must be a whole number."),
        ({**ANOMALY_RULE, "windowDays": 400}, "windowDays", "less than or equal to 365"),
        ({**THRESHOLD_RULE, "type": "webhook"}, "type", "allowed: schedule, metric_threshold, anomaly"),
        ({**THRESHOLD_RULE, "severity": "fatal"}, "severity", "allowed: info, warning, critical"),
        ({**THRESHOLD_RULE, "name": ""}, "name", "may not be blank"),
        ({**THRESHOLD_RULE, "name": "x" * 201}, "name", "no more than 200 characters"),
        ({**THRESHOLD_RULE, "enabled": "maybe"}, "enabled", "Must be true or false."),
        ({**THRESHOLD_RULE, "enabled": 1}, "enabled", "Must be true or false."),
        ({**THRESHOLD_RULE, "name": 7}, "name", "Must be a string."),
        ({**ANOMALY_RULE, "window_days": 3}, "window_days", "Did you mean 'windowDays'?"),
    ],
)
def test_each_bad_field_is_a_400_that_names_it_and_writes_nothing(tenant_client, payload, field, message):
    response = tenant_client.post("/triggers", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert field in body["detail"], body
    assert any(message in text for text in body["detail"][field]), body
    assert not TriggerRule.objects.exists()


def test_list_is_scoped_filtered_and_paginated(tenant, other_tenant, tenant_client):
    for n in range(3):
        TriggerRuleFactory(tenant=tenant, name=f"t{n}")
    TriggerRuleFactory(tenant=tenant, name="s", type="schedule", severity="critical")
    TriggerRuleFactory(tenant=other_tenant, name="theirs")

    everything = tenant_client.get("/triggers?limit=3").json()
    rest = tenant_client.get(everything["next"]).json()
    schedules = tenant_client.get("/triggers?type=schedule").json()
    critical = tenant_client.get("/triggers?severity=critical&enabled=true").json()

    assert [r["name"] for r in everything["results"]] == ["s", "t2", "t1"]
    assert [r["name"] for r in rest["results"]] == ["t0"] and rest["next"] is None
    assert [r["name"] for r in schedules["results"]] == ["s"]
    assert [r["name"] for r in critical["results"]] == ["s"]
    assert tenant_client.get("/triggers?type=nope").json()["detail"]["type"] == [
        '"nope" is not a valid type; allowed: schedule, metric_threshold, anomaly.'
    ]


def test_patch_changes_only_what_is_sent_and_validates_the_result(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, threshold=10)

    ok = tenant_client.patch(f"/triggers/{rule.pk}", {"threshold": 50, "severity": "critical"}, format="json")
    bad = tenant_client.patch(f"/triggers/{rule.pk}", {"threshold": None}, format="json")

    assert ok.status_code == 200
    assert (ok.json()["threshold"], ok.json()["severity"], ok.json()["name"]) == (50.0, "critical", rule.name)
    assert bad.status_code == 400 and "threshold" in bad.json()["detail"]
    rule.refresh_from_db()
    assert (rule.threshold, rule.severity) == (50.0, "critical")


def test_patch_to_another_type_drops_the_fields_that_no_longer_apply(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", threshold=3.0)

    response = tenant_client.patch(
        f"/triggers/{rule.pk}", {"type": "schedule", "schedule": "*/15 * * * *"}, format="json"
    )

    body = response.json()
    assert (body["type"], body["schedule"], body["metric"], body["threshold"], body["windowDays"]) == (
        "schedule",
        "*/15 * * * *",
        None,
        None,
        None,
    )


def test_disabling_clears_next_run_and_enabling_sets_it(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant)

    disabled = tenant_client.patch(f"/triggers/{rule.pk}", {"enabled": False}, format="json").json()
    enabled = tenant_client.patch(f"/triggers/{rule.pk}", {"enabled": True}, format="json").json()

    assert disabled["nextRunAt"] is None
    assert enabled["nextRunAt"] is not None


def test_delete_keeps_the_rules_alerts_readable(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, name="Doomed")
    alert = raise_alert(rule)

    response = tenant_client.delete(f"/triggers/{rule.pk}")

    assert response.status_code == 204
    assert tenant_client.get(f"/triggers/{rule.pk}").status_code == 404
    listed = tenant_client.get("/alerts").json()["results"]
    assert [(a["id"], a["ruleId"], a["ruleName"]) for a in listed] == [(alert.pk, None, "Doomed")]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_tenants_rule_is_404_and_untouched(other_tenant, tenant_client, method):
    theirs = TriggerRuleFactory(tenant=other_tenant, threshold=10)

    response = getattr(tenant_client, method)(f"/triggers/{theirs.pk}", {"threshold": 1}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}
    theirs.refresh_from_db()
    assert theirs.threshold == 10


def test_database_refuses_rules_that_skip_validation(tenant):
    for bad in [
        {"type": "schedule", "schedule": ""},
        {"type": "metric_threshold", "metric": "", "threshold": 1},
        {"type": "metric_threshold", "metric": "m", "threshold": None},
        {"type": "anomaly", "metric": "m", "threshold": -1},
        {"type": "anomaly", "metric": "m", "window_days": 0},
        {"type": "metric_threshold", "metric": "m", "threshold": float("nan")},
        {"type": "bogus", "metric": "m"},
        {"type": "anomaly", "metric": "m", "severity": "fatal"},
    ]:
        with pytest.raises(IntegrityError), transaction.atomic():
            TriggerRule.objects.create(tenant=tenant, name="raw", **bad)


NOW = datetime(2026, 12, 30, 12, 0, 30, tzinfo=UTC)  # a Wednesday
NEXT_FIVE_MONDAYS_AT_13 = [
    "2027-01-04T13:00:00Z",
    "2027-01-11T13:00:00Z",
    "2027-01-18T13:00:00Z",
    "2027-01-25T13:00:00Z",
    "2027-02-01T13:00:00Z",
]


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def explained(body: dict) -> tuple:
    return body["scheduleDescription"], body["nextOccurrences"]


def test_a_schedule_rule_explains_itself_in_every_response(tenant_client, frozen_now):
    created = tenant_client.post("/triggers", SCHEDULE_RULE, format="json").json()
    listed = tenant_client.get("/triggers").json()["results"][0]
    fetched = tenant_client.get(f"/triggers/{created['id']}").json()

    assert explained(created) == ("At 13:00, only on Monday (UTC)", NEXT_FIVE_MONDAYS_AT_13)
    assert explained(listed) == explained(fetched) == explained(created)
    assert created["nextRunAt"] == "2027-01-04T13:00:00Z"  # the first occurrence is when the engine runs it


def test_a_disabled_schedule_rule_still_shows_what_its_schedule_means(tenant, tenant_client, frozen_now):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 13 * * 1")

    disabled = tenant_client.patch(f"/triggers/{rule.pk}", {"enabled": False}, format="json").json()
    rescheduled = tenant_client.patch(f"/triggers/{rule.pk}", {"schedule": "30 8 1 jan,jul *"}, format="json").json()

    assert disabled["nextRunAt"] is None
    assert explained(disabled) == ("At 13:00, only on Monday (UTC)", NEXT_FIVE_MONDAYS_AT_13)
    assert explained(rescheduled) == (
        "At 08:30, on day 1 of the month, only in January and July (UTC)",
        [
            "2027-01-01T08:30:00Z",
            "2027-07-01T08:30:00Z",
            "2028-01-01T08:30:00Z",
            "2028-07-01T08:30:00Z",
            "2029-01-01T08:30:00Z",
        ],
    )


def test_metric_rules_have_no_schedule_to_explain(tenant_client, frozen_now):
    created = tenant_client.post("/triggers", THRESHOLD_RULE, format="json").json()
    anomaly = tenant_client.post("/triggers", ANOMALY_RULE, format="json").json()
    listed = tenant_client.get("/triggers").json()["results"]
    fetched = tenant_client.get(f"/triggers/{created['id']}").json()

    assert [explained(body) for body in (created, anomaly, *listed, fetched)] == [(None, None)] * 5


def test_a_schedule_saved_before_standard_cron_shows_when_it_runs_but_no_description(tenant, tenant_client, frozen_now):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 * * * *")
    TriggerRule.objects.filter(pk=rule.pk).update(schedule="*/100 * * * *")  # as croniter used to accept

    body = tenant_client.get(f"/triggers/{rule.pk}").json()

    # croniter, and so the engine, reads it as minute 0 of every hour.
    assert explained(body) == (
        None,
        [
            "2026-12-30T13:00:00Z",
            "2026-12-30T14:00:00Z",
            "2026-12-30T15:00:00Z",
            "2026-12-30T16:00:00Z",
            "2026-12-30T17:00:00Z",
        ],
    )
