from datetime import date, timedelta

import pytest
from django.utils import timezone

from billing.services.usage import UsageDelta, usage_apply

pytestmark = pytest.mark.django_db


def add(tenant_id, day, **values):
    usage_apply(deltas=[UsageDelta(tenant_id=tenant_id, day=day, **values)])


def test_range_is_zero_filled_with_summed_counters_and_peak_widgets(tenant_client, tenant):
    add("acme", date(2026, 11, 2), tokens_used=100, tasks_executed=1, active_widgets=2)
    add("acme", date(2026, 11, 4), tokens_used=50, alerts_triggered=3, active_widgets=-1)  # 2 carried, one uninstalled

    body = tenant_client.get("/billing/usage?from=2026-11-01&to=2026-11-05").json()

    assert body == {
        "tenantId": "acme",
        "from": "2026-11-01",
        "to": "2026-11-05",
        "totals": {"tokensUsed": 150, "tasksExecuted": 1, "alertsTriggered": 3, "activeWidgets": 2},
        "points": [
            {"date": "2026-11-01", "tokensUsed": 0, "tasksExecuted": 0, "alertsTriggered": 0, "activeWidgets": 0},
            {"date": "2026-11-02", "tokensUsed": 100, "tasksExecuted": 1, "alertsTriggered": 0, "activeWidgets": 2},
            {"date": "2026-11-03", "tokensUsed": 0, "tasksExecuted": 0, "alertsTriggered": 0, "activeWidgets": 0},
            {"date": "2026-11-04", "tokensUsed": 50, "tasksExecuted": 0, "alertsTriggered": 3, "activeWidgets": 1},
            {"date": "2026-11-05", "tokensUsed": 0, "tasksExecuted": 0, "alertsTriggered": 0, "activeWidgets": 0},
        ],
    }


def test_default_range_is_the_last_30_days(tenant_client):
    today = timezone.now().date()

    body = tenant_client.get("/billing/usage").json()

    assert (body["from"], body["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    assert len(body["points"]) == 30


def test_single_day_and_a_full_366_day_range(tenant_client):
    assert len(tenant_client.get("/billing/usage?from=2026-11-01&to=2026-11-01").json()["points"]) == 1
    assert len(tenant_client.get("/billing/usage?from=2024-01-01&to=2024-12-31").json()["points"]) == 366


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=2026-11-05&to=2026-11-01", "from", "Must be on or before 'to' (2026-11-01)."),
        ("from=2025-01-01&to=2026-01-02", "from", "at most 366 days"),
        ("from=yesterday", "from", "'yesterday' is not a day; use YYYY-MM-DD."),
        ("to=2026-02-30", "to", "'2026-02-30' is not a day"),
        ("to=2026-11-01T00:00:00Z", "to", "is not a day"),
    ],
)
def test_bad_ranges_are_400_naming_the_parameter(tenant_client, query, field, message):
    response = tenant_client.get(f"/billing/usage?{query}")

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert message in response.json()["detail"][field][0]


def test_another_tenants_usage_is_not_counted(tenant_client, other_tenant):
    add("globex", date(2026, 11, 2), tokens_used=999)

    body = tenant_client.get("/billing/usage?from=2026-11-01&to=2026-11-03").json()

    assert body["totals"]["tokensUsed"] == 0


def test_every_bad_parameter_is_named(tenant_client):
    response = tenant_client.get("/billing/usage?from=&to=later")

    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"from", "to"}
