from datetime import date

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import BillingUsage, UsageSnapshot
from billing.services.usage import usage_rollup
from marketplace.models import TenantWidget, Widget
from marketplace.services import widget_install, widget_register
from tests.concurrency import run_concurrently
from tests.factories import StaffUserFactory, TenantFactory, UserFactory, issue_api_key

REVENUE_RADAR = {
    "slug": "revenue-radar",
    "name": "Revenue Radar",
    "description": "Pipeline and revenue movements at a glance.",
    "version": "1.0.0",
    "dashboard": {"tile": {"title": "Revenue radar", "size": "md"}},
    "metadata": {"category": "revenue", "author": "Proactive Insights"},
}


def active_widgets(tenant_id="acme"):
    today = timezone.now().date()
    return [
        model.objects.filter(tenant_id=tenant_id, day=today).values_list("active_widgets", flat=True).first()
        for model in (BillingUsage, UsageSnapshot)
    ]


@pytest.fixture
def radar(db):
    return widget_register(**REVENUE_RADAR).widget


@pytest.mark.django_db
class TestRegistration:
    def test_admin_key_registers_then_updates_by_slug(self, admin_key_client):
        created = admin_key_client.post("/marketplace/widgets", REVENUE_RADAR, format="json")
        updated = admin_key_client.post(
            "/marketplace/widgets",
            {"slug": "revenue-radar", "name": "Revenue Radar 2", "version": "1.1.0"},
            format="json",
        )

        assert created.status_code == 201
        assert {k: created.json()[k] for k in REVENUE_RADAR} == REVENUE_RADAR
        assert created.json()["active"] is True
        assert updated.status_code == 200
        assert (updated.json()["name"], updated.json()["version"]) == ("Revenue Radar 2", "1.1.0")
        assert updated.json()["dashboard"] == REVENUE_RADAR["dashboard"]  # not sent: kept
        assert Widget.objects.count() == 1

    def test_staff_user_may_register(self, db):
        client = APIClient()
        client.force_login(StaffUserFactory())

        response = client.post("/marketplace/widgets", REVENUE_RADAR, format="json")

        assert response.status_code == 201
        assert Widget.objects.get().name == "Revenue Radar"

    def test_tenant_key_is_403_and_no_key_is_401(self, tenant_client, api_client):
        non_staff = APIClient()
        non_staff.force_login(UserFactory())

        tenant_key = tenant_client.post("/marketplace/widgets", REVENUE_RADAR, format="json")
        no_key = api_client.post("/marketplace/widgets", REVENUE_RADAR, format="json")
        not_staff = non_staff.post("/marketplace/widgets", REVENUE_RADAR, format="json")

        assert (tenant_key.status_code, tenant_key.json()["error"]) == (403, "permission_denied")
        assert (no_key.status_code, no_key.json()["error"]) == (401, "not_authenticated")
        assert (not_staff.status_code, not_staff.json()["error"]) == (403, "permission_denied")
        assert not Widget.objects.exists()

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"slug": "Revenue Radar"}, "slug", "is not a valid slug"),
            ({"slug": "radar--x"}, "slug", "is not a valid slug"),
            ({"version": "1.0"}, "version", "is not a semantic version"),
            ({"version": "v1.0.0"}, "version", "is not a semantic version"),
            ({"dashboard": {"tile": {"size": "md"}}}, "dashboard", "dashboard.tile.title is required"),
            (
                {"dashboard": {"tile": {"title": "T", "size": "huge"}}},
                "dashboard",
                "dashboard.tile.size must be one of sm, md, lg, xl",
            ),
            ({"dashboard": {"tile": "big"}}, "dashboard", "dashboard.tile must be an object"),
            ({"dashboard": ["tile"]}, "dashboard", "must be a JSON object"),
            ({"metadata": "free text"}, "metadata", "Metadata must be a JSON object."),
            ({"metadata": {"blob": "x" * 20000}}, "metadata", "at most 16384 are allowed"),
            ({"name": ""}, "name", "may not be blank"),
            ({"price": 10}, "price", "Unknown field."),
        ],
    )
    def test_bad_widgets_are_400_naming_the_field_and_nothing_is_written(
        self, admin_key_client, change, field, message
    ):
        response = admin_key_client.post("/marketplace/widgets", {**REVENUE_RADAR, **change}, format="json")

        assert response.status_code == 400
        assert any(message in text for text in response.json()["detail"][field]), response.json()
        assert not Widget.objects.exists()

    def test_an_update_may_send_any_subset_but_a_new_widget_needs_name_and_version(self, admin_key_client, radar):
        update = admin_key_client.post(
            "/marketplace/widgets", {"slug": "revenue-radar", "version": "1.0.1"}, format="json"
        )
        bad_update = admin_key_client.post(
            "/marketplace/widgets",
            {"slug": "revenue-radar", "dashboard": {"tile": {"title": "T", "size": "huge"}}},
            format="json",
        )
        new = admin_key_client.post("/marketplace/widgets", {"slug": "fresh"}, format="json")

        assert update.status_code == 200 and (update.json()["name"], update.json()["version"]) == (
            "Revenue Radar",
            "1.0.1",
        )
        assert list(bad_update.json()["detail"]) == ["dashboard"]
        assert new.status_code == 400
        assert new.json()["detail"] == {
            "name": ["Required to register a new widget."],
            "version": ["Required to register a new widget."],
        }
        assert not Widget.objects.filter(slug="fresh").exists()

    def test_a_prerelease_version_is_semantic(self, admin_key_client):
        response = admin_key_client.post(
            "/marketplace/widgets", {**REVENUE_RADAR, "version": "2.0.0-beta.1+build.5"}, format="json"
        )

        assert response.status_code == 201


@pytest.mark.django_db
def test_install_list_uninstall_round_trip_with_billing(tenant, tenant_client, radar):
    before = tenant_client.get("/marketplace/widgets").json()["results"]
    installed = tenant_client.post("/marketplace/widgets/revenue-radar/install")
    listed = tenant_client.get("/marketplace/widgets").json()["results"]
    counted = active_widgets()
    removed = tenant_client.delete("/marketplace/widgets/revenue-radar/install")
    after = tenant_client.get("/marketplace/widgets").json()["results"]

    assert [(w["slug"], w["installed"], w["enabled"], w["installedAt"]) for w in before] == [
        ("revenue-radar", False, False, None)
    ]
    assert installed.status_code == 201
    assert (installed.json()["installed"], installed.json()["enabled"], installed.json()["installedVersion"]) == (
        True,
        True,
        "1.0.0",
    )
    assert listed[0]["installed"] is True and listed[0]["installedAt"] is not None
    assert listed[0]["dashboard"] == {"tile": {"title": "Revenue radar", "size": "md"}}
    assert counted == [1, 1]
    assert removed.status_code == 204
    assert (after[0]["installed"], after[0]["enabled"], after[0]["installedAt"]) == (False, False, None)
    assert active_widgets() == [0, 0]
    install = TenantWidget.objects.get()
    assert (install.enabled, install.uninstalled_at is not None) == (False, True)


@pytest.mark.django_db
def test_install_and_uninstall_are_idempotent(tenant, tenant_client, radar):
    first = tenant_client.post("/marketplace/widgets/revenue-radar/install")
    second = tenant_client.post("/marketplace/widgets/revenue-radar/install/")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["installedAt"] == first.json()["installedAt"]
    assert TenantWidget.objects.count() == 1 and active_widgets() == [1, 1]

    assert tenant_client.delete("/marketplace/widgets/revenue-radar/install").status_code == 204
    assert tenant_client.delete("/marketplace/widgets/revenue-radar/install").status_code == 204
    assert active_widgets() == [0, 0]

    again = tenant_client.post("/marketplace/widgets/revenue-radar/install")
    assert again.status_code == 201 and again.json()["enabled"] is True
    assert TenantWidget.objects.count() == 1 and active_widgets() == [1, 1]


@pytest.mark.django_db
def test_install_with_config_and_a_new_version_on_reinstall(tenant, tenant_client, radar):
    body = tenant_client.post(
        "/marketplace/widgets/revenue-radar/install", {"config": {"currency": "EUR"}}, format="json"
    ).json()
    assert body["config"] == {"currency": "EUR"}

    bad = tenant_client.post("/marketplace/widgets/revenue-radar/install", {"config": [1, 2]}, format="json")
    assert bad.status_code == 400 and "config" in bad.json()["detail"]

    tenant_client.delete("/marketplace/widgets/revenue-radar/install")
    widget_register(slug="revenue-radar", version="1.2.0")
    reinstalled = tenant_client.post("/marketplace/widgets/revenue-radar/install").json()
    assert (reinstalled["installedVersion"], reinstalled["config"]) == ("1.2.0", {"currency": "EUR"})


@pytest.mark.django_db
def test_unknown_or_inactive_widgets_are_404(tenant, tenant_client, radar):
    widget_register(slug="retired", name="Retired", version="1.0.0", active=False)

    responses = [
        tenant_client.post("/marketplace/widgets/nope/install"),
        tenant_client.delete("/marketplace/widgets/nope/install"),
        tenant_client.post("/marketplace/widgets/retired/install"),
        tenant_client.get("/marketplace/widgets/retired"),
    ]

    for response in responses:
        assert (response.status_code, response.json()) == (404, {"error": "not_found", "detail": "Not found."})
    assert [w["slug"] for w in tenant_client.get("/marketplace/widgets").json()["results"]] == ["revenue-radar"]
    assert not TenantWidget.objects.exists()


@pytest.mark.django_db
def test_installs_are_per_tenant(tenant, other_tenant, client_for, radar):
    ours, theirs = client_for(tenant), client_for(other_tenant)
    ours.post("/marketplace/widgets/revenue-radar/install")

    assert theirs.get("/marketplace/widgets").json()["results"][0]["installed"] is False
    assert theirs.delete("/marketplace/widgets/revenue-radar/install").status_code == 204
    assert ours.get("/marketplace/widgets/revenue-radar").json()["installed"] is True
    assert active_widgets("acme") == [1, 1] and active_widgets("globex") == [None, None]


@pytest.mark.django_db
def test_the_rollup_carries_the_widget_count_forward(tenant, tenant_client, radar):
    tenant_client.post("/marketplace/widgets/revenue-radar/install")
    today = timezone.now().date()

    usage_rollup(today=date.fromordinal(today.toordinal() + 1))

    tomorrow = BillingUsage.objects.get(tenant=tenant, day=date.fromordinal(today.toordinal() + 1))
    assert tomorrow.active_widgets == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_installs_of_one_widget_make_one_row():
    tenant = TenantFactory(id="acme")
    widget_register(**REVENUE_RADAR)
    key = issue_api_key(tenant)

    def install():
        return (
            Client()
            .post(
                "/marketplace/widgets/revenue-radar/install",
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            .status_code
        )

    statuses, errors = run_concurrently([install] * 8)

    assert errors == []
    assert sorted(statuses) == [200] * 7 + [201]
    assert TenantWidget.objects.count() == 1
    assert active_widgets() == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_concurrent_installs_of_different_widgets_are_all_counted():
    tenant = TenantFactory(id="acme")
    slugs = [f"widget-{n}" for n in range(6)]
    for slug in slugs:
        widget_register(slug=slug, name=slug, version="1.0.0")
    key = issue_api_key(tenant)

    def installer(slug):
        return lambda: (
            Client()
            .post(
                f"/marketplace/widgets/{slug}/install",
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            .status_code
        )

    statuses, errors = run_concurrently([installer(slug) for slug in slugs])

    assert errors == [] and statuses == [201] * 6
    assert active_widgets() == [6, 6]


@pytest.mark.django_db
def test_admin_pages_show_widgets_and_installs(client, tenant, tenant_client, radar):
    tenant_client.post("/marketplace/widgets/revenue-radar/install")
    client.force_login(StaffUserFactory())

    widgets = client.get("/admin/marketplace/widget/").content.decode()
    installs = client.get(f"/admin/marketplace/tenantwidget/?widget__id__exact={radar.pk}").content.decode()
    bad = client.post(
        "/admin/marketplace/widget/add/",
        {
            "slug": "x",
            "name": "X",
            "version": "one",
            "dashboard": '{"tile": {"title": "X", "size": "md"}}',
            "metadata": "{}",
            "description": "",
            "active": "on",
            "installs-TOTAL_FORMS": "0",
            "installs-INITIAL_FORMS": "0",
        },
    )

    assert "revenue-radar" in widgets and "Installed by" in widgets
    assert '<td class="field-installs">1</td>' in widgets
    assert "Acme Inc" in installs
    assert bad.status_code == 200 and "is not a semantic version" in bad.content.decode()
    assert not Widget.objects.filter(slug="x").exists()


@pytest.mark.django_db
def test_a_deactivated_widget_stops_being_billed_and_can_be_uninstalled(tenant, tenant_client):
    widget = widget_register(slug="radar", name="Radar", version="1.0.0").widget
    widget_install(tenant=tenant, widget=widget)
    today = timezone.now().date()
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 1

    widget_register(slug="radar", active=False)
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 0

    assert tenant_client.delete("/marketplace/widgets/radar/install").status_code == 204
    widget_register(slug="radar", active=True)
    assert BillingUsage.objects.get(tenant=tenant, day=today).active_widgets == 0
