"""
Paging by keyset (core.pagination): nothing skipped or repeated, however many rows share a moment,
in either direction, and the index finds each page's first row.
"""

from base64 import b64encode
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, Notification
from tests.factories import TriggerRuleFactory, alert_payload

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


@pytest.fixture
def one_tick(tenant) -> list[int]:
    """1,250 alerts raised at one moment, as a tick raises them; their ids, newest first."""
    rule = TriggerRuleFactory(tenant=tenant)
    alerts = Alert.objects.bulk_create(
        Alert(
            tenant=tenant,
            rule=rule,
            rule_name=rule.name,
            rule_type=rule.type,
            severity="info",
            status="resolved",
            payload=alert_payload(rule),
            triggered_at=T0,
            resolved_at=T0,
        )
        for _ in range(1_250)
    )
    return sorted((alert.pk for alert in alerts), reverse=True)


def follow(client, url: str, link: str) -> tuple[list[int], list[int]]:
    """The ids of every page from `url` on, following `link`; and the pages' sizes."""
    seen, sizes = [], []
    while url and len(sizes) < 20:
        body = client.get(url).json()
        ids = [item["id"] for item in body["results"]]
        seen += ids if link == "next" else list(reversed(ids))
        sizes.append(len(ids))
        url = body[link]
    return seen, sizes


def test_a_tick_of_alerts_at_one_moment_pages_through_once_each(tenant_client, one_tick):
    seen, sizes = follow(tenant_client, "/alerts?limit=200", "next")

    assert seen == one_tick  # DRF's offset cursors, capped at 1,000, repeated the sixth page forever
    assert sizes == [200] * 6 + [50]


def test_previous_links_walk_back_through_the_same_moment(tenant_client, one_tick):
    url = "/alerts?limit=200"
    while (body := tenant_client.get(url).json())["next"]:
        url = body["next"]
    last_page = [item["id"] for item in body["results"]]

    back, sizes = follow(tenant_client, body["previous"], "previous")

    assert list(reversed(back)) + last_page == one_tick
    assert sizes == [200] * 6


def test_tied_notifications_page_by_their_id_both_ways(tenant_client, tenant, one_tick):
    Notification.objects.bulk_create(
        Notification(
            tenant=tenant, alert_id=pk, title="t", body="b", severity="info", alert_status="resolved", created_at=T0
        )
        for pk in one_tick[:7]
    )
    expected = list(Notification.objects.filter(tenant=tenant).order_by("-id").values_list("id", flat=True))

    forward, sizes = follow(tenant_client, "/notifications?limit=3", "next")
    assert (forward, sizes) == (expected, [3, 3, 1])
    last = tenant_client.get("/notifications?limit=3").json()["next"]
    last = tenant_client.get(last).json()["next"]
    back, _ = follow(tenant_client, tenant_client.get(last).json()["previous"], "previous")
    assert back == expected[:6][::-1]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
def test_a_deep_page_starts_at_its_row_in_the_index(tenant_client, one_tick):
    cursor = tenant_client.get("/alerts?limit=200").json()["next"]
    with CaptureQueriesContext(connection) as queries:
        tenant_client.get(cursor)
    [page] = [q["sql"] for q in queries.captured_queries if 'FROM "alerts_alert"' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a test table is small enough to scan whole
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Cond" in plan and "ROW(triggered_at, id) < ROW(" in plan, plan


def cursor(**fields) -> str:
    return quote(b64encode(urlencode(fields).encode()).decode())


@pytest.mark.parametrize(
    "forged",
    [
        cursor(p="2026-11-26T14:00:00Z"),  # DRF's: a moment without the id that breaks its ties
        cursor(o="200", p="2026-11-26T14:00:00Z|5"),  # an offset
        cursor(o="200"),  # an offset and no position
        cursor(p="not a time|5"),
        cursor(p="2026-11-26T14:00:00Z|5x"),
        cursor(p="2026-11-26T14:00:00Z|99999999999999999999"),  # more digits than any id
        cursor(p="2026-11-26T14:00:00Z|9223372036854775808"),  # past the largest id
        cursor(r="1"),
    ],
)
def test_cursors_this_api_did_not_write_are_400(tenant_client, one_tick, forged):
    answer = tenant_client.get(f"/alerts?cursor={forged}")

    assert answer.status_code == 400
    assert answer.json()["detail"] == {
        "cursor": ["Invalid cursor: use the `next` or `previous` link of a previous page."]
    }


@pytest.mark.parametrize("path", ["/alerts", "/notifications", "/triggers", "/deliveries", "/channels"])
@pytest.mark.parametrize(
    "moment",
    [
        "2026-11-26T14:00:00",  # naive
        "9999-12-31T23:59:59-14:00",  # past the calendar's end in UTC
        "0001-01-01T00:00:00+14:00",  # before its start
    ],
)
def test_cursor_times_the_api_did_not_write_are_400_on_every_list(tenant_client, path, moment):
    answer = tenant_client.get(f"{path}?cursor={cursor(p=f'{moment}|1')}")

    assert (answer.status_code, list(answer.json()["detail"])) == (400, ["cursor"])


@pytest.mark.parametrize("path", ["/notifications", "/triggers", "/deliveries", "/channels"])
@pytest.mark.parametrize("offset", ["+16:00", "+05:30:15.123456"])  # PostgreSQL refuses both as they are
def test_a_cursor_time_with_an_odd_offset_is_a_page_on_every_list(tenant_client, path, offset):
    answer = tenant_client.get(f"{path}?cursor={cursor(p=f'2026-11-26T14:00:00{offset}|1')}")

    assert (answer.status_code, answer.json()["results"]) == (200, [])


@pytest.mark.parametrize(
    "moment",
    [
        "2026-11-27T06:00:00+16:00",  # T0 in a zone PostgreSQL refuses
        "2026-11-26T19:30:15.123456+05:30:15.123456",  # T0 with seconds in the offset
        "2026-11-26T15:00:00+01:00",
    ],
)
def test_a_cursor_time_in_any_offset_reads_as_the_same_instant(tenant_client, one_tick, moment):
    page = tenant_client.get(f"/alerts?cursor={cursor(p=f'{moment}|{one_tick[1]}')}&limit=2").json()

    assert [item["id"] for item in page["results"]] == one_tick[2:4]


@pytest.mark.parametrize("ordering", [("-created_at", "id"), ("-created_at", "-slug")])
def test_an_ordering_one_row_comparison_cannot_serve_is_refused_when_the_class_is_made(ordering):
    from django.core.exceptions import ImproperlyConfigured

    from core.pagination import NewestFirstCursorPagination

    with pytest.raises(ImproperlyConfigured, match="ordering"):
        type("Mixed", (NewestFirstCursorPagination,), {"ordering": ordering})


def test_a_cursor_past_the_largest_id_is_a_page_not_an_error(tenant_client, one_tick):
    body = tenant_client.get(f"/alerts?cursor={cursor(p='2026-11-26T14:00:00Z|9223372036854775807')}&limit=2").json()

    assert [item["id"] for item in body["results"]] == one_tick[:2]


@pytest.mark.parametrize("path, model", [("/alerts", Alert), ("/notifications", Notification)])
def test_a_page_emptied_since_its_cursor_links_back_to_the_whole_page_it_came_from(
    tenant_client, tenant, one_tick, path, model
):
    if model is Notification:
        Notification.objects.bulk_create(
            Notification(
                tenant=tenant, alert_id=pk, title="t", body="b", severity="info", alert_status="resolved", created_at=T0
            )
            for pk in one_tick[:6]
        )
    ids = list(model.objects.filter(tenant=tenant).order_by("-id").values_list("id", flat=True))[:6]
    first = tenant_client.get(f"{path}?limit=3").json()
    second_page = [item["id"] for item in tenant_client.get(first["next"]).json()["results"]]
    # The rows past the first page go away: its `next` now leads to an empty page.
    model.objects.filter(tenant=tenant, id__lt=ids[2]).delete()

    empty = tenant_client.get(first["next"]).json()
    back = tenant_client.get(empty["previous"]).json()

    assert (empty["results"], empty["next"]) == ([], None)
    assert second_page == ids[3:6]
    assert [item["id"] for item in back["results"]] == ids[:3]  # the first page whole, its last row too
    # And forward from an emptied page read backwards: the page it came from, its first row too.
    newest = tenant_client.get(f"{path}?limit=1").json()
    model.objects.filter(tenant=tenant, id=ids[0]).delete()
    emptied_backwards = tenant_client.get(tenant_client.get(newest["next"]).json()["previous"]).json()
    forward = tenant_client.get(emptied_backwards["next"]).json()

    assert emptied_backwards["results"] == []
    assert [item["id"] for item in forward["results"]] == [ids[1]]
