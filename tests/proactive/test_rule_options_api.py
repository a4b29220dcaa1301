"""The rule options of the API: defaults that keep the guide's behaviour, and every bad combination named."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from proactive.models import TriggerRule
from tests.factories import TriggerRuleFactory

pytestmark = pytest.mark.django_db

THRESHOLD_RULE = {"name": "MQL spike", "type": "metric_threshold", "metric": "analytics.mql.delta", "threshold": 25}
ANOMALY_RULE = {"name": "Latency", "type": "anomaly", "metric": "api.latency"}
SCHEDULE_RULE = {"name": "Weekly", "type": "schedule", "schedule": "0 9 * * 1"}
OPTIONS = (
    "comparison",
    "thresholdHigh",
    "compareDays",
    "aggregate",
    "aggregateMinutes",
    "forEvaluations",
    "clearEvaluations",
    "noData",
    "method",
    "direction",
    "timezone",
)


def options(body: dict) -> dict:
    return {name: body[name] for name in OPTIONS}


def test_a_rule_made_of_the_guides_fields_gets_the_guides_behaviour(tenant_client):
    threshold = tenant_client.post("/triggers", THRESHOLD_RULE, format="json").json()
    anomaly = tenant_client.post("/triggers", ANOMALY_RULE, format="json").json()
    schedule = tenant_client.post("/triggers", SCHEDULE_RULE, format="json").json()

    none = dict.fromkeys(OPTIONS)
    assert options(threshold) == {
        **none,
        "comparison": "above",
        "aggregate": "last",
        "forEvaluations": 1,
        "clearEvaluations": 1,
        "noData": "ok",
    }
    assert options(anomaly) == {
        **none,
        "method": "zscore",
        "direction": "both",
        "forEvaluations": 1,
        "clearEvaluations": 1,
        "noData": "ok",
    }
    assert options(schedule) == none  # the tenant's zone


def test_every_option_is_stored_and_returned(tenant_client):
    rule = {
        **THRESHOLD_RULE,
        "comparison": "outside",
        "threshold": 10,
        "thresholdHigh": 90,
        "aggregate": "avg",
        "aggregateMinutes": 15,
        "forEvaluations": 3,
        "clearEvaluations": 5,
        "noData": "alert",
    }
    anomaly = {**ANOMALY_RULE, "method": "seasonal", "direction": "up", "noData": "keep"}
    schedule = {**SCHEDULE_RULE, "timezone": "Europe/Berlin"}

    created = [tenant_client.post("/triggers", body, format="json") for body in (rule, anomaly, schedule)]

    assert [response.status_code for response in created] == [201, 201, 201]
    assert {k: v for k, v in options(created[0].json()).items() if v is not None} == {
        "comparison": "outside",
        "thresholdHigh": 90.0,
        "aggregate": "avg",
        "aggregateMinutes": 15,
        "forEvaluations": 3,
        "clearEvaluations": 5,
        "noData": "alert",
    }
    assert (created[1].json()["method"], created[1].json()["direction"], created[1].json()["noData"]) == (
        "seasonal",
        "up",
        "keep",
    )
    assert created[2].json()["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {**THRESHOLD_RULE, "comparison": "over"},
            {
                "comparison": [
                    '"over" is not a valid comparison; allowed: above, below, outside, inside, changeAbove, '
                    "changeBelow."
                ]
            },
        ),
        (
            {**THRESHOLD_RULE, "comparison": "outside"},
            {"thresholdHigh": ["Required for the outside comparison (the range's upper bound)."]},
        ),
        (
            {**THRESHOLD_RULE, "comparison": "inside", "thresholdHigh": 25},
            {"thresholdHigh": ["Must be greater than threshold (the range is threshold to thresholdHigh)."]},
        ),
        (
            {**THRESHOLD_RULE, "thresholdHigh": 50},
            {"thresholdHigh": ["Only used by the outside and inside comparisons; leave it empty."]},
        ),
        (
            {**THRESHOLD_RULE, "comparison": "changeAbove"},
            {
                "compareDays": [
                    "Required for the changeAbove comparison: how many days back the value compared with is."
                ]
            },
        ),
        (
            {**THRESHOLD_RULE, "compareDays": 7},
            {"compareDays": ["Only used by the changeAbove and changeBelow comparisons; leave it empty."]},
        ),
        (
            {**THRESHOLD_RULE, "aggregate": "avg"},
            {"aggregateMinutes": ["Required for the avg aggregate: the minutes it reduces."]},
        ),
        (
            {**THRESHOLD_RULE, "aggregateMinutes": 5},
            {"aggregateMinutes": ["Only used by the avg, sum, min, max and count aggregates; leave it empty."]},
        ),
        (
            {**THRESHOLD_RULE, "aggregate": "sum", "aggregateMinutes": 1441, "windowDays": 1},
            {"aggregateMinutes": ["At most windowDays × 1440 (1440): the window bounds it."]},
        ),
        (
            {**THRESHOLD_RULE, "aggregate": "median", "aggregateMinutes": 5},
            {"aggregate": ['"median" is not a valid aggregate; allowed: last, avg, sum, min, max, count.']},
        ),
        (
            {**THRESHOLD_RULE, "forEvaluations": 0, "clearEvaluations": 1441},
            {
                "forEvaluations": ["Ensure this value is greater than or equal to 1."],
                "clearEvaluations": ["Ensure this value is less than or equal to 1440."],
            },
        ),
        (
            {**THRESHOLD_RULE, "noData": "ignore"},
            {"noData": ['"ignore" is not a valid noData; allowed: ok, alert, keep.']},
        ),
        (
            {**THRESHOLD_RULE, "method": "robust", "direction": "up"},
            {
                "method": ["Only used by anomaly rules; leave it empty."],
                "direction": ["Only used by anomaly rules; leave it empty."],
            },
        ),
        (
            {**ANOMALY_RULE, "comparison": "below", "aggregate": "avg"},
            {
                "comparison": ["Only used by metric_threshold rules; leave it empty."],
                "aggregate": ["Only used by metric_threshold rules; leave it empty."],
            },
        ),
        (
            {**ANOMALY_RULE, "method": "prophet"},
            {"method": ['"prophet" is not a valid method; allowed: zscore, robust, seasonal.']},
        ),
        (
            {**SCHEDULE_RULE, "timezone": "Mars/Olympus"},
            {"timezone": ["'Mars/Olympus' is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)."]},
        ),
        (
            {**SCHEDULE_RULE, "forEvaluations": 2, "noData": "alert"},
            {
                "forEvaluations": ["Only used by metric_threshold and anomaly rules; leave it empty."],
                "noData": ["Only used by metric_threshold and anomaly rules; leave it empty."],
            },
        ),
        (
            {**THRESHOLD_RULE, "timezone": "UTC"},
            {"timezone": ["Only used by schedule rules; leave it empty."]},
        ),
    ],
)
def test_each_bad_combination_is_a_400_naming_the_field_and_nothing_is_written(tenant_client, body, errors):
    response = tenant_client.post("/triggers", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": "validation_error", "detail": errors}
    assert not TriggerRule.objects.exists()


def test_changing_the_comparison_drops_what_the_old_one_used(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, comparison="outside", threshold=10.0, threshold_high=20.0)

    response = tenant_client.patch(
        f"/triggers/{rule.pk}", {"comparison": "changeBelow", "compareDays": 7}, format="json"
    )

    assert response.status_code == 200
    assert options(response.json())["thresholdHigh"] is None and response.json()["compareDays"] == 7
    rule.refresh_from_db()
    assert (rule.comparison, rule.threshold_high, rule.compare_days) == ("changeBelow", None, 7)


def test_changing_what_counts_as_breaching_restarts_the_streaks(tenant, tenant_client):
    rule = TriggerRuleFactory(tenant=tenant, for_evaluations=3)
    TriggerRule.objects.filter(pk=rule.pk).update(breaching_streak=2, clear_streak=0)

    renamed = tenant_client.patch(f"/triggers/{rule.pk}", {"name": "Renamed"}, format="json")
    rule.refresh_from_db()
    kept = rule.breaching_streak
    changed = tenant_client.patch(f"/triggers/{rule.pk}", {"threshold": 99}, format="json")
    rule.refresh_from_db()

    assert (renamed.status_code, renamed.json()["name"]) == (200, "Renamed")
    assert (changed.status_code, changed.json()["threshold"]) == (200, 99)
    assert kept == 2 and rule.breaching_streak == 0


@pytest.mark.django_db(transaction=True)
def test_existing_rules_keep_todays_behaviour_after_the_migration():
    before = [("proactive", "0004_rule_health"), ("tenants", "0003_tenant_timezone")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    tenant = old.get_model("tenants", "Tenant").objects.create(id="old", name="Old", slug="old", timezone="UTC")
    OldRule = old.get_model("proactive", "TriggerRule")
    made = {
        name: OldRule.objects.create(tenant=tenant, name=name, severity="warning", **fields).pk
        for name, fields in {
            "resolving": {
                "type": "metric_threshold",
                "metric": "m",
                "threshold": 1,
                "window_days": 30,
                "auto_resolve": True,
            },
            "plain": {"type": "metric_threshold", "metric": "m", "threshold": 1, "window_days": 30},
            "anomaly": {"type": "anomaly", "metric": "m", "threshold": 2.5, "window_days": 30},
            "schedule": {"type": "schedule", "schedule": "0 9 * * 1"},
        }.items()
    }

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rules = {name: TriggerRule.objects.get(pk=pk) for name, pk in made.items()}
    assert (rules["resolving"].comparison, rules["resolving"].aggregate, rules["resolving"].no_data) == (
        "above",
        "last",
        "keep",  # no data left its alert open until now: it still does
    )
    assert (rules["plain"].no_data, rules["plain"].for_evaluations, rules["plain"].clear_evaluations) == ("ok", 1, 1)
    assert (rules["anomaly"].method, rules["anomaly"].direction) == ("zscore", "both")
    assert (rules["schedule"].comparison, rules["schedule"].no_data, rules["schedule"].for_evaluations) == (
        "",
        "",
        None,
    )


def test_a_tenant_sets_its_time_zone(tenant, tenant_client):
    moved = tenant_client.patch("/tenant", {"timezone": "America/New_York"}, format="json")
    bad = tenant_client.patch("/tenant", {"timezone": "EST5EDT-ish"}, format="json")
    unknown = tenant_client.patch("/tenant", {"slug": "new"}, format="json")

    assert moved.status_code == 200 and moved.json()["timezone"] == "America/New_York"
    assert bad.status_code == 400 and list(bad.json()["detail"]) == ["timezone"]
    assert unknown.status_code == 400 and list(unknown.json()["detail"]) == ["slug"]
    tenant.refresh_from_db()
    assert tenant.timezone == "America/New_York"
