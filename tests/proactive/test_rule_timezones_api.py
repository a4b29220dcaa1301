"""A schedule rule's zone in the API: which zone, its description and next runs there, and when the tenant moves."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from proactive.engine.runner import evaluate_rules
from tests.factories import TenantFactory, TriggerRuleFactory
from tests.proactive.test_trigger_api import SCHEDULE_RULE, THRESHOLD_RULE

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)  # a Thursday, 13:00 in Berlin, 07:00 in New York


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def berlin(db):
    return TenantFactory(id="berlin", name="Berlin GmbH", slug="berlin", timezone="Europe/Berlin")


@pytest.fixture
def berlin_client(berlin, client_for):
    return client_for(berlin)


WEEKDAYS_AT_9 = {**SCHEDULE_RULE, "name": "Morning briefing", "schedule": "0 9 * * 1-5"}


def zone_fields(body: dict) -> tuple:
    return (
        body["timezone"],
        body["scheduleTimezone"],
        body["scheduleDescription"],
        body["nextOccurrences"],
        body["nextOccurrencesLocal"],
    )


def test_a_rule_following_its_tenants_zone_explains_itself_there(berlin_client, frozen_now):
    created = berlin_client.post("/triggers", WEEKDAYS_AT_9, format="json").json()
    fetched = berlin_client.get(f"/triggers/{created['id']}").json()
    listed = berlin_client.get("/triggers").json()["results"][0]

    assert zone_fields(created) == (
        None,
        "Europe/Berlin",
        "At 09:00, Monday through Friday (Europe/Berlin)",
        [
            "2026-11-27T08:00:00Z",
            "2026-11-30T08:00:00Z",
            "2026-12-01T08:00:00Z",
            "2026-12-02T08:00:00Z",
            "2026-12-03T08:00:00Z",
        ],
        [
            "2026-11-27T09:00:00+01:00",
            "2026-11-30T09:00:00+01:00",
            "2026-12-01T09:00:00+01:00",
            "2026-12-02T09:00:00+01:00",
            "2026-12-03T09:00:00+01:00",
        ],
    )
    assert zone_fields(fetched) == zone_fields(listed) == zone_fields(created)
    assert created["nextRunAt"] == "2026-11-27T08:00:00Z"


def test_a_rule_in_its_own_zone(berlin_client, frozen_now):
    body = berlin_client.post("/triggers", {**WEEKDAYS_AT_9, "timezone": "America/New_York"}, format="json").json()

    assert zone_fields(body)[:3] == (
        "America/New_York",
        "America/New_York",
        "At 09:00, Monday through Friday (America/New_York)",
    )
    # 07:00 EST now: 09:00 is still to come today.
    assert body["nextOccurrences"][:2] == ["2026-11-26T14:00:00Z", "2026-11-27T14:00:00Z"]
    assert body["nextOccurrencesLocal"][:2] == ["2026-11-26T09:00:00-05:00", "2026-11-27T09:00:00-05:00"]
    assert body["nextRunAt"] == "2026-11-26T14:00:00Z"


def test_next_runs_across_a_clock_change_show_both_offsets(berlin_client, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 27, 12, tzinfo=UTC))

    body = berlin_client.post("/triggers", {**SCHEDULE_RULE, "schedule": "30 2 * * *"}, format="json").json()

    assert body["nextOccurrences"] == [
        "2026-03-28T01:30:00Z",
        "2026-03-29T01:00:00Z",  # 02:30 does not exist that night: 03:00 CEST
        "2026-03-30T00:30:00Z",
        "2026-03-31T00:30:00Z",
        "2026-04-01T00:30:00Z",
    ]
    assert body["nextOccurrencesLocal"] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
        "2026-04-01T02:30:00+02:00",
    ]


def test_a_utc_tenant_sees_utc_with_its_offset(tenant_client, frozen_now):
    body = tenant_client.post("/triggers", WEEKDAYS_AT_9, format="json").json()

    assert body["scheduleTimezone"] == "UTC"
    assert body["scheduleDescription"] == "At 09:00, Monday through Friday (UTC)"
    assert body["nextOccurrences"][0] == "2026-11-27T09:00:00Z"
    assert body["nextOccurrencesLocal"][0] == "2026-11-27T09:00:00+00:00"


def test_metric_rules_have_no_schedule_zone(berlin_client, frozen_now):
    body = berlin_client.post("/triggers", THRESHOLD_RULE, format="json").json()

    assert zone_fields(body) == (None, None, None, None, None)


def test_moving_the_tenant_moves_its_rules_next_runs(berlin_client, frozen_now):
    rule = berlin_client.post("/triggers", WEEKDAYS_AT_9, format="json").json()
    own_zone = berlin_client.post("/triggers", {**WEEKDAYS_AT_9, "timezone": "Asia/Tokyo"}, format="json").json()

    moved = berlin_client.patch("/tenant", {"timezone": "America/New_York"}, format="json")
    after = berlin_client.get(f"/triggers/{rule['id']}").json()
    untouched = berlin_client.get(f"/triggers/{own_zone['id']}").json()

    assert moved.status_code == 200 and moved.json()["timezone"] == "America/New_York"
    assert after["nextRunAt"] == "2026-11-26T14:00:00Z"  # 09:00 EST today, was 08:00 UTC tomorrow (09:00 CET)
    assert after["scheduleDescription"] == "At 09:00, Monday through Friday (America/New_York)"
    assert after["nextOccurrencesLocal"][0] == "2026-11-26T09:00:00-05:00"
    assert untouched["nextRunAt"] == own_zone["nextRunAt"] == "2026-11-27T00:00:00Z"  # 09:00 JST


def test_a_zoned_alert_and_a_dry_run_carry_the_zone_in_their_evidence(berlin, berlin_client, frozen_now):
    rule = TriggerRuleFactory(
        tenant=berlin, type="schedule", schedule="0 9 * * 1-5", now=datetime(2026, 11, 25, 12, tzinfo=UTC)
    )
    evaluate_rules(rule_ids=[rule.pk], now=NOW)  # due since 08:00 UTC (09:00 CET)

    alert = berlin_client.get("/alerts").json()["results"][0]
    dry_run = berlin_client.post(f"/triggers/{rule.pk}/evaluate", {"dryRun": True}, format="json").json()

    expected = {
        "schedule": "0 9 * * 1-5",
        "scheduledFor": "2026-11-26T08:00:00Z",
        "timezone": "Europe/Berlin",
        "scheduledForLocal": "2026-11-26T09:00:00+01:00",
    }
    assert alert["payload"] == {
        **expected,
        "reason": "The schedule '0 9 * * 1-5' occurred at 2026-11-26T08:00:00Z (09:00 Europe/Berlin).",
    }
    assert dry_run["fired"] is False  # it ran: the next occurrence is tomorrow's
    assert dry_run["reason"] == "Next occurrence is 2026-11-27T08:00:00Z (09:00 Europe/Berlin)."
    assert dry_run["rule"]["scheduleTimezone"] == "Europe/Berlin"


def test_listing_zoned_rules_costs_no_query_per_rule(berlin, berlin_client, frozen_now):
    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert berlin_client.get("/triggers").status_code == 200
        return len(queries)

    TriggerRuleFactory(tenant=berlin, type="schedule", schedule="0 9 * * *")
    queries_for_a_page()  # the key's first use is recorded once
    one = queries_for_a_page()
    for _ in range(5):
        TriggerRuleFactory(tenant=berlin, type="schedule", schedule="0 9 * * *")

    assert queries_for_a_page() == one
