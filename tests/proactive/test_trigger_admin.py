import pytest

from proactive.models import TriggerRule
from tests.factories import StaffUserFactory, TriggerRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


def form(tenant_id="acme", **overrides):
    return {
        "tenant": tenant_id,
        "name": "From admin",
        "type": "metric_threshold",
        "severity": "warning",
        "enabled": "on",
        "schedule": "",
        "metric": "analytics.mql.delta",
        "threshold": "5",
        "window_days": "",
        **overrides,
    }


def test_rule_pages_render_with_filters(staff_client, tenant):
    rule = TriggerRuleFactory(tenant=tenant, name="Visible rule")

    listing = staff_client.get("/admin/proactive/triggerrule/?type__exact=metric_threshold&enabled__exact=1&q=Visible")
    change = staff_client.get(f"/admin/proactive/triggerrule/{rule.pk}/change/")
    add = staff_client.get("/admin/proactive/triggerrule/add/")

    assert "Visible rule" in listing.content.decode()
    assert "By severity" in listing.content.decode()
    assert change.status_code == 200 and "analytics.mql.delta" in change.content.decode()
    assert add.status_code == 200


def test_add_through_admin_sets_engine_bookkeeping(staff_client, tenant):
    response = staff_client.post("/admin/proactive/triggerrule/add/", form())

    assert response.status_code == 302
    rule = TriggerRule.objects.get(name="From admin")
    assert (rule.tenant_id, rule.threshold, rule.next_run_at is not None) == ("acme", 5.0, True)


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        (
            {"type": "schedule", "metric": "", "threshold": "", "schedule": "61 * * * *"},
            "is not a valid cron expression",
        ),
        ({"threshold": ""}, "Required for metric_threshold rules."),
        ({"metric": "usage.nope"}, "not a built-in usage metric"),
    ],
)
def test_admin_form_shows_the_same_validation_errors_as_the_api(staff_client, tenant, overrides, field_error):
    response = staff_client.post("/admin/proactive/triggerrule/add/", form(**overrides))

    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert not TriggerRule.objects.exists()


def test_bulk_disable_and_enable(staff_client, tenant):
    rules = [TriggerRuleFactory(tenant=tenant) for _ in range(3)]
    ids = [rule.pk for rule in rules]

    staff_client.post("/admin/proactive/triggerrule/", {"action": "disable_rules", "_selected_action": ids[:2]})
    assert list(TriggerRule.objects.filter(enabled=False).order_by("pk").values_list("pk", flat=True)) == ids[:2]
    assert not TriggerRule.objects.filter(enabled=False, next_run_at__isnull=False).exists()

    staff_client.post("/admin/proactive/triggerrule/", {"action": "enable_rules", "_selected_action": ids})
    assert TriggerRule.objects.filter(enabled=True, next_run_at__isnull=False).count() == 3
