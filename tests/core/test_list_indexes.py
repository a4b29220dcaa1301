"""
Every list page is read in its order from an index: the page query of each list and filter, as the
API sends it, has a plan without a Sort when PostgreSQL may not scan the table or sort (on a
small table the planner would rightly do either; docs/performance.md shows the plans on a million
alerts). A list whose order or filter no index serves fails here.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Channel, Delivery
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def explain_page(client, url: str, table: str) -> str:
    """The plan of `url`'s page query: the one that reads `table` with a LIMIT (logged with its values)."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    sql = next(q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"] and "LIMIT" in q["sql"])
    return plan(sql, None)


@pytest.fixture
def data(tenant):
    rule = TriggerRuleFactory(tenant=tenant)
    alert = raise_alert(rule)
    channel = Channel.objects.create(tenant=tenant, name="Ops", kind="email", target="ops@example.com")
    return {"rule": rule, "alert": alert, "channel": channel}


@pytest.mark.parametrize(
    ("url", "table", "index"),
    [
        ("/alerts", "alerts_alert", "alert_tenant_recent"),
        # One status: its own index or, on a table this small, the open alerts' (pending) or the
        # tenant's with a filter (resolved): each in the page's order.
        ("/alerts?status=pending", "alerts_alert", "alert_tenant_status_recent alert_tenant_open_recent"),
        ("/alerts?status=resolved", "alerts_alert", "alert_tenant_status_recent alert_tenant_recent"),
        # Open statuses: the open alerts' partial index, or (as the table's statistics fall, e.g.
        # after a test that wrote and rolled back a thousand alerts) the tenant's with a filter.
        ("/alerts?status=pending,acknowledged,snoozed", "alerts_alert", "alert_tenant_open_recent alert_tenant_recent"),
        ("/alerts?severity=critical", "alerts_alert", "alert_tenant_severity_recent"),
        ("/alerts?ruleId={rule}", "alerts_alert", "alert_rule_recent"),
        ("/notifications", "alerts_notification", "notification_tenant_recent"),
        ("/notifications?unread=true", "alerts_notification", "notification_tenant_unread"),
        ("/channels", "alerts_channel", "channel_tenant_recent"),
        ("/deliveries", "alerts_delivery", "delivery_tenant_recent"),
        ("/deliveries?status=failed", "alerts_delivery", "delivery_tenant_status_recent"),
        ("/deliveries?channel={channel}", "alerts_delivery", "delivery_channel_recent"),
        ("/deliveries?digest={digest}", "alerts_delivery", "delivery_digest_recent"),
        ("/triggers", "proactive_triggerrule", "trigger_rule_tenant_recent"),
    ],
)
def test_each_list_and_filter_reads_an_index_in_its_order(tenant_client, data, url, table, index):
    digest = Delivery.objects.create(
        tenant=data["channel"].tenant, channel=data["channel"], event="digest", created_at=data["alert"].triggered_at
    )
    url = url.format(rule=data["rule"].pk, channel=data["channel"].pk, digest=digest.pk)

    text = explain_page(tenant_client, url, table)

    assert any(f" {name} " in f"{text} ".replace("\n", " ") for name in index.split()), text
    page = text.split("SubPlan")[0]  # a nested list (an alert's history) has its own index
    assert "Sort" not in page, text


def test_an_alerts_history_is_read_in_order_from_its_index(tenant_client, data):
    text = explain_page(tenant_client, "/alerts", "alerts_alert")

    assert "alert_event_alert_at" in text.split("SubPlan")[1], text
    assert "Sort" not in text, text
