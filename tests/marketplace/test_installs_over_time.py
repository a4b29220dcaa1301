import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from marketplace.models import TenantWidget, Widget
from marketplace.selectors import widget_first_install_at, widget_installs_over_time
from marketplace.services import widget_install, widget_register, widget_uninstall
from tests.factories import StaffUserFactory, TenantFactory

pytestmark = pytest.mark.django_db


def at(day, hour=0, minute=0, second=0):
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def register(slug):
    return widget_register(slug=slug, name=slug.title(), version="1.0.0").widget


@pytest.fixture
def radar():
    return register("revenue-radar")


def test_counts_per_day_at_the_end_of_each_day(radar, django_assert_num_queries):
    other = register("churn-watch")
    a, b, c, d, e, f, g = (TenantFactory(id=name) for name in "abcdefg")
    widget_install(tenant=a, widget=radar, now=at(1) - timedelta(days=9))  # Feb 20, before the window
    widget_install(tenant=b, widget=radar, now=at(2, 23, 59, 59))
    widget_install(tenant=b, widget=other, now=at(1))  # another widget: not counted
    widget_install(tenant=c, widget=radar, now=at(3))  # exactly at midnight: counts from Mar 3
    widget_install(tenant=d, widget=radar, now=at(5, 10))
    widget_uninstall(tenant=d, widget=radar, now=at(5, 15))  # same day: never counted
    widget_install(tenant=e, widget=radar, now=at(8, 9))  # after the window
    widget_install(tenant=f, widget=radar, now=at(1) - timedelta(days=60))
    widget_uninstall(tenant=f, widget=radar, now=at(1) - timedelta(days=30))  # gone before the window
    widget_install(tenant=g, widget=radar, now=at(1) - timedelta(days=5))
    widget_uninstall(tenant=g, widget=radar, now=at(2, 8))  # counted on Mar 1 only
    widget_uninstall(tenant=a, widget=radar, now=at(4, 12))
    widget_uninstall(tenant=c, widget=radar, now=at(5))  # at Mar 5 00:00: still installed at the end of Mar 4
    # a re-install overwrites installed_at: a's Feb 20 → Mar 4 period is lost, it counts from Mar 6 only
    widget_install(tenant=a, widget=radar, now=at(6, 9))

    with django_assert_num_queries(1):
        points = widget_installs_over_time(widget=radar, since=at(1, 15), until=at(7, 3))

    assert points == [
        (at(1), 1),  # g
        (at(2), 1),  # b
        (at(3), 2),  # b, c
        (at(4), 2),  # b, c
        (at(5), 1),  # b
        (at(6), 2),  # b, a again
        (at(7), 2),  # b, a
    ]
    assert widget_first_install_at(widget=radar) == at(1) - timedelta(days=60)  # f's row


def test_days_are_utc_days(radar):
    widget_install(tenant=TenantFactory(id="a"), widget=radar, now=at(2, 3))
    new_york = ZoneInfo("America/New_York")

    # Mar 1 23:30 in New York is Mar 2 04:30 UTC: the window is Mar 2 and Mar 3 (UTC).
    points = widget_installs_over_time(
        widget=radar, since=datetime(2026, 3, 1, 23, 30, tzinfo=new_york), until=at(3, 12)
    )

    assert points == [(at(2), 1), (at(3), 1)]


def test_a_widget_never_installed_has_zeros_and_no_first_install(radar):
    widget_install(tenant=TenantFactory(id="a"), widget=register("churn-watch"), now=at(2))

    assert widget_installs_over_time(widget=radar, since=at(1), until=at(3)) == [(at(1), 0), (at(2), 0), (at(3), 0)]
    assert widget_first_install_at(widget=radar) is None


def test_a_disabled_row_without_an_uninstall_time_is_left_out(radar):
    # The services never write one (the check constraint allows it): when it stopped is unknown.
    TenantWidget.objects.create(
        tenant=TenantFactory(id="a"), widget=radar, enabled=False, installed_at=at(1), installed_version="1.0.0"
    )

    assert widget_installs_over_time(widget=radar, since=at(1), until=at(2)) == [(at(1), 0), (at(2), 0)]
    assert widget_first_install_at(widget=radar) is None


def test_an_empty_window_has_no_points(radar):
    assert widget_installs_over_time(widget=radar, since=at(3), until=at(2)) == []


# The admin page


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


def chart_points(body: str) -> int:
    match = re.search(r'<path class="pi-line" data-series="Installed" data-points="(\d+)"', body)
    assert match, "no installs line in the page"
    return int(match.group(1))


def days_ago(days: int) -> datetime:
    """Noon UTC `days` days before today, so a test near midnight still falls on the intended day."""
    today = timezone.now().astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days), time(12), tzinfo=UTC)


def test_change_page_draws_one_point_per_day_since_the_first_install(staff_client, radar):
    tenants = [TenantFactory(id=name) for name in ("a", "b")]
    widget_install(tenant=tenants[0], widget=radar, now=days_ago(10))
    widget_install(tenant=tenants[1], widget=radar, now=days_ago(3))
    widget_uninstall(tenant=tenants[1], widget=radar, now=days_ago(1))

    response = staff_client.get(f"/admin/marketplace/widget/{radar.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert '<svg class="pi-chart"' in body
    assert "Installs over time" in body
    assert chart_points(body) == 11  # 10 days ago through today
    assert "counts from the re-install only" in body  # the help text names the limitation


def test_change_page_shows_at_most_a_year(staff_client, radar):
    widget_install(tenant=TenantFactory(id="a"), widget=radar, now=days_ago(500))

    body = staff_client.get(f"/admin/marketplace/widget/{radar.pk}/change/").content.decode()

    assert chart_points(body) == 365


def test_change_page_of_a_widget_installed_today_starts_the_day_before(staff_client, radar):
    widget_install(tenant=TenantFactory(id="a"), widget=radar, now=days_ago(0))

    body = staff_client.get(f"/admin/marketplace/widget/{radar.pk}/change/").content.decode()

    assert chart_points(body) == 2


def test_change_page_of_a_widget_never_installed_says_so(staff_client, radar):
    response = staff_client.get(f"/admin/marketplace/widget/{radar.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "No tenant has installed this widget yet." in body
    assert 'class="pi-line"' not in body


def test_add_page_has_no_chart_and_still_adds(staff_client):
    page = staff_client.get("/admin/marketplace/widget/add/")
    created = staff_client.post(
        "/admin/marketplace/widget/add/",
        {
            "slug": "from-admin",
            "name": "From admin",
            "description": "",
            "version": "1.0.0",
            "dashboard": "{}",
            "metadata": "{}",
            "active": "on",
            "installs-TOTAL_FORMS": "0",
            "installs-INITIAL_FORMS": "0",
        },
    )

    assert page.status_code == 200
    assert "pi-chart" not in page.content.decode()
    assert "Installs over time" not in page.content.decode()
    assert created.status_code == 302
    assert Widget.objects.get(slug="from-admin").name == "From admin"
