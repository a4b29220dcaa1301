from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db import IntegrityError, transaction

from billing.models import BillingUsage, UsageSnapshot
from billing.selectors import DayUsage, billing_usage_summary
from billing.services.usage import UsageDelta, record_alert_impacts, usage_apply, usage_day, usage_rollup
from proactive.metrics import Point, metric_series
from tests.factories import TenantFactory

DAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 11, 26), DAY),
        (datetime(2026, 11, 26, 23, 59, tzinfo=UTC), DAY),
        (datetime(2026, 11, 26, 23, 30, tzinfo=timezone(timedelta(hours=-2))), date(2026, 11, 27)),
        (datetime(2026, 11, 26, 8, 0), DAY),
        ("2026-11-26", DAY),
        ("2026-11-26T01:00:00+03:00", date(2026, 11, 25)),
        ("2026-11-26T12:00:00Z", DAY),
        (1_795_694_400, DAY),  # 2026-11-26T12:00:00Z
    ],
)
def test_usage_day_normalizes_to_the_utc_day(value, expected):
    assert usage_day(value) == expected


@pytest.mark.parametrize("value", ["26/11/2026", "", "soon", True, None, "2026-13-01"])
def test_usage_day_refuses_what_is_not_a_date(value):
    with pytest.raises(ValueError):
        usage_day(value)


def rows(model, tenant):
    return list(
        model.objects.filter(tenant=tenant)
        .order_by("day")
        .values_list("day", "tokens_used", "tasks_executed", "alerts_triggered", "active_widgets")
    )


@pytest.mark.django_db
def test_apply_adds_to_both_tables(tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, tokens_used=100, tasks_executed=2)])
    usage_apply(
        deltas=[
            UsageDelta(tenant_id="acme", day=DAY, tokens_used=20),
            UsageDelta(tenant_id="acme", day=DAY, tokens_used=-5, active_widgets=1),
        ]
    )

    assert rows(BillingUsage, tenant) == rows(UsageSnapshot, tenant) == [(DAY, 115, 2, 0, 1)]


@pytest.mark.django_db
def test_a_new_day_carries_the_widget_gauge_forward(tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY - timedelta(days=3), active_widgets=2)])

    record_alert_impacts(impacts=[(tenant.id, datetime(2026, 11, 26, 10, tzinfo=UTC))])

    assert rows(BillingUsage, tenant) == [(DAY - timedelta(days=3), 0, 0, 0, 2), (DAY, 0, 0, 1, 2)]
    assert rows(UsageSnapshot, tenant) == rows(BillingUsage, tenant)


@pytest.mark.django_db
def test_below_zero_is_refused_by_the_database_and_changes_nothing(tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, tokens_used=10)])

    with pytest.raises(IntegrityError), transaction.atomic():
        usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, tokens_used=-11, tasks_executed=3)])

    assert rows(BillingUsage, tenant) == rows(UsageSnapshot, tenant) == [(DAY, 10, 0, 0, 0)]


@pytest.mark.django_db
def test_record_alert_impact_counts_one_alert_on_the_firing_day(tenant):
    record_alert_impacts(impacts=[(tenant.id, datetime(2026, 11, 26, 23, 59, tzinfo=UTC))])
    record_alert_impacts(impacts=[(tenant.id, datetime(2026, 11, 27, 0, 1, tzinfo=UTC))])
    record_alert_impacts(impacts=[(tenant.id, datetime(2026, 11, 27, 5, 0, tzinfo=UTC))])

    assert (
        rows(BillingUsage, tenant)
        == rows(UsageSnapshot, tenant)
        == [(DAY, 0, 0, 1, 0), (DAY + timedelta(days=1), 0, 0, 2, 0)]
    )


@pytest.mark.django_db
def test_rollup_gives_every_tenant_today_and_fills_gaps_idempotently(tenant, other_tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY - timedelta(days=2), tokens_used=5, active_widgets=3)])

    usage_rollup(today=DAY)
    usage_rollup(today=DAY)

    assert rows(BillingUsage, tenant) == [
        (DAY - timedelta(days=2), 5, 0, 0, 3),
        (DAY - timedelta(days=1), 0, 0, 0, 3),
        (DAY, 0, 0, 0, 3),
    ]
    assert rows(UsageSnapshot, tenant) == rows(BillingUsage, tenant)
    assert rows(BillingUsage, other_tenant) == [(DAY, 0, 0, 0, 0)]


@pytest.mark.django_db
def test_rollup_never_overwrites_todays_counts(tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, alerts_triggered=4, active_widgets=1)])

    usage_rollup(today=DAY)

    assert rows(BillingUsage, tenant) == [(DAY, 0, 0, 4, 1)]


@pytest.mark.django_db
def test_usage_metrics_read_the_snapshots(tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY - timedelta(days=1), tokens_used=7)])
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, tokens_used=9)])
    usage_apply(deltas=[UsageDelta(tenant_id=TenantFactory().id, day=DAY, tokens_used=1000)])

    series = metric_series(
        tenant_id="acme",
        metric="usage.tokensUsed",
        since=datetime(2026, 11, 1, tzinfo=UTC),
        until=datetime(2026, 11, 26, 12, tzinfo=UTC),
    )

    assert series == [Point(datetime(2026, 11, 25, tzinfo=UTC), 7.0), Point(datetime(2026, 11, 26, tzinfo=UTC), 9.0)]


@pytest.mark.django_db
def test_the_usage_summary_is_domain_data_and_the_api_renders_it(tenant, tenant_client):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=DAY, tokens_used=3, active_widgets=2)])

    summary = billing_usage_summary(tenant=tenant, since=DAY - timedelta(days=1), until=DAY)
    body = tenant_client.get("/billing/usage", {"from": "2026-11-25", "to": "2026-11-26"}).json()

    assert summary.points == [
        DayUsage(day=DAY - timedelta(days=1)),
        DayUsage(day=DAY, tokens_used=3, active_widgets=2),
    ]
    assert body["points"][1] == {
        "tokensUsed": 3,
        "tasksExecuted": 0,
        "alertsTriggered": 0,
        "activeWidgets": 2,
        "date": "2026-11-26",
    }
    assert body["points"][0]["tokensUsed"] == 0


def test_usage_values_are_the_usage_fields():
    from dataclasses import fields

    from billing.models import USAGE_FIELDS
    from billing.selectors import UsageValues

    assert tuple(field.name for field in fields(UsageValues)) == USAGE_FIELDS


@pytest.mark.django_db
def test_a_usage_row_dated_in_the_future_does_not_stop_the_rollup(tenant):
    today = date.today()
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=today - timedelta(days=2), active_widgets=2)])
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=date(2099, 1, 1), tokens_used=1)])

    usage_rollup(today=today)

    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 2


HEARD = []


def hearing_hook(*, keys):
    HEARD.append(keys)


def test_the_usage_hooks_hear_of_completed_days_only(tenant, settings):
    from billing.services.usage import usage_change_announced, usage_changed

    settings.USAGE_CHANGED_HOOKS = [f"{__name__}.hearing_hook"]
    HEARD.clear()
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

    usage_changed(keys=[("acme", today), ("acme", tomorrow)])
    usage_changed(keys=[("acme", today), ("acme", yesterday), ("acme", yesterday)])

    assert HEARD == [[("acme", yesterday)]]
    assert [usage_change_announced(day=day) for day in (yesterday, today, tomorrow)] == [True, False, False]
