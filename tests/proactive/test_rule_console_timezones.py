"""The rule pages of the staff console for schedules read in a zone: each next run in the zone's time and in UTC."""

import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from tests.factories import TenantFactory, TriggerRuleFactory
from tests.proactive.test_rule_console import RULES, form

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)  # a Thursday


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def next_runs(body: str) -> list[str]:
    return re.findall(r"<li>([^<]+)</li>", body.split('class="pi-next-runs"')[1].split("</ol>")[0])


def test_a_berlin_rule_page_gives_each_next_run_in_berlin_and_in_utc(staff):
    berlin = TenantFactory(id="berlin", name="Berlin GmbH", slug="berlin", timezone="Europe/Berlin")
    rule = TriggerRuleFactory(tenant=berlin, type="schedule", schedule="0 9 * * 1-5")

    body = staff.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert "At 09:00, Monday through Friday (Europe/Berlin)" in body
    assert next_runs(body) == [
        "2026-11-27 09:00 Europe/Berlin (08:00 UTC)",
        "2026-11-30 09:00 Europe/Berlin (08:00 UTC)",
        "2026-12-01 09:00 Europe/Berlin (08:00 UTC)",
        "2026-12-02 09:00 Europe/Berlin (08:00 UTC)",
        "2026-12-03 09:00 Europe/Berlin (08:00 UTC)",
    ]


def test_a_run_on_another_utc_day_names_that_day(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 1 * * *", timezone="Asia/Kolkata")

    body = staff.get(f"{RULES}{rule.pk}/change/").content.decode()

    assert next_runs(body)[0] == "2026-11-27 01:00 Asia/Kolkata (2026-11-26 19:30 UTC)"


def test_preview_explains_the_schedule_in_the_zone_of_the_form(staff, tenant):
    body = staff.post(
        f"{RULES}preview/",
        form(type="schedule", schedule="30 2 * * *", timezone="America/New_York", metric="", threshold=""),
    ).content.decode()

    assert "<strong>At 02:30 (America/New_York)</strong>" in body
    assert next_runs(body)[0] == "2026-11-27 02:30 America/New_York (07:30 UTC)"
