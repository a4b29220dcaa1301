"""Inputs at the edges of what the database can hold: each is a 4xx naming the problem, never a 500."""

import base64
import json
from urllib.parse import urlencode

import pytest
import stripe
from django.utils import timezone

from billing.models import BillingEvent
from marketplace.models import TenantWidget, Widget
from proactive.models import MetricPoint, TriggerRule
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_exception_reraise(tenant_client, admin_key_client, client):
    for c in (tenant_client, admin_key_client, client):
        c.raise_request_exception = False


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/billing/usage?to=0001-01-01", "to"),
        ("/metrics/m/points?to=0001-01-01T00:00:00Z", "to"),
        ("/metrics/m/points?from=0001-01-01T00:00:00%2B05:00", "from"),
    ],
)
def test_dates_at_the_edge_of_the_calendar(tenant_client, path, field):
    response = tenant_client.get(path)

    assert response.status_code == 400
    assert "out of range" in response.json()["detail"][field][0]


def test_snooze_until_the_end_of_time(tenant, tenant_client):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    response = tenant_client.post(f"/alerts/{alert.pk}/snooze", {"until": "9999-12-31T23:59:59-05:00"}, format="json")

    assert response.status_code == 400
    assert "out of range" in response.json()["detail"]["until"][0]


def test_numbers_beyond_what_is_stored(tenant_client):
    point = tenant_client.post(
        "/metrics/m/points", {"points": [{"timestamp": timezone.now().isoformat(), "value": 1e301}]}, format="json"
    )
    rule = tenant_client.post(
        "/triggers", {"name": "x", "type": "metric_threshold", "metric": "m", "threshold": -1e301}, format="json"
    )

    assert point.status_code == 400
    assert point.json()["detail"] == {"points": {"0": {"value": ["Must be between -1e+300 and 1e+300."]}}}
    assert rule.status_code == 400 and rule.json()["detail"] == {"threshold": ["Must be between -1e+300 and 1e+300."]}
    assert not MetricPoint.objects.exists() and not TriggerRule.objects.exists()


def test_nul_characters_in_json(tenant_client, admin_key_client):
    admin_key_client.post("/marketplace/widgets", {"slug": "w", "name": "W", "version": "1.0.0"}, format="json")

    install = tenant_client.post("/marketplace/widgets/w/install", {"config": {"a": "x\u0000y"}}, format="json")
    widget = admin_key_client.post(
        "/marketplace/widgets",
        {"slug": "w", "name": "W", "version": "1.0.0", "metadata": {"k\u0000": 1}},
        format="json",
    )

    assert install.status_code == 400 and list(install.json()["detail"]) == ["config"]
    assert widget.status_code == 400 and list(widget.json()["detail"]) == ["metadata"]
    assert not TenantWidget.objects.exists() and Widget.objects.get().metadata == {}


@pytest.mark.parametrize("position", ["\x00", "garbage"])
def test_forged_cursors(tenant_client, position):
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()

    responses = [
        tenant_client.get(path, {"cursor": cursor}) for path in ("/marketplace/widgets", "/alerts", "/triggers")
    ]

    for response in responses:
        assert response.status_code in (200, 400), response.status_code
        if response.status_code == 400:
            assert response.json()["detail"] == {
                "cursor": ["Invalid cursor: use the `next` or `previous` link of a previous page."]
            }


@pytest.mark.parametrize("limit", ["0", "abc", "-1", "201", "²", "٣"])
def test_a_bad_page_size_is_400(tenant_client, limit):
    response = tenant_client.get("/alerts", {"limit": limit})

    assert response.status_code == 400
    assert response.json()["detail"] == {"limit": ["Must be a whole number from 1 to 200."]}


def test_deeply_nested_json_is_a_parse_error(tenant_client):
    response = tenant_client.post("/triggers", data="[" * 100000, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_a_number_too_large_for_a_float(tenant_client):
    response = tenant_client.post(
        "/triggers",
        data='{"name": "x", "type": "metric_threshold", "metric": "m", "threshold": ' + "9" * 400 + "}",
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["detail"] == {"threshold": ["Must be between -1e+300 and 1e+300."]}


def test_a_post_to_an_unknown_path_is_a_json_404_even_for_a_session(tenant):
    from rest_framework.test import APIClient

    from tests.factories import StaffUserFactory

    session = APIClient(enforce_csrf_checks=True)
    session.force_login(StaffUserFactory())

    response = session.post("/nope", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No endpoint at POST /nope."}


def test_huge_ids_are_not_found(tenant_client):
    missing = tenant_client.get("/triggers/99999999999999999999999")
    filtered = tenant_client.get("/alerts?ruleId=99999999999999999999999")

    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (filtered.status_code, list(filtered.json()["detail"])) == (400, ["ruleId"])


def _signed(client, payload: str):
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_test_secret")
    return client.post("/billing/webhook", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


@pytest.mark.parametrize(
    ("payload", "error", "field"),
    [
        (
            json.dumps({"id": "evt_x", "type": "t", "created": 10**20, "data": {"object": {}}}),
            "validation_error",
            "created",
        ),
        ('{"id": "evt_n", "type": "t", "data": {"object": {"metadata": {"tokensUsed": NaN}}}}', "parse_error", None),
        (
            json.dumps({"id": "evt_z", "type": "t", "data": {"object": {"description": "a\u0000b"}}}),
            "validation_error",
            "nonFieldErrors",
        ),
    ],
)
def test_signed_but_unstorable_events_are_400(client, tenant, payload, error, field):
    response = _signed(client, payload)

    assert response.status_code == 400
    assert response.json()["error"] == error
    if field:
        assert field in response.json()["detail"]
    assert not BillingEvent.objects.exists()


def test_an_event_for_a_future_day_is_rejected_not_applied(client, tenant):
    payload = json.dumps(
        {
            "id": "evt_f",
            "type": "t",
            "created": 1795694400,
            "data": {"object": {"metadata": {"tenantId": "acme", "tokensUsed": "5", "usageDate": "2099-01-01"}}},
        }
    )

    response = _signed(client, payload)

    assert response.status_code == 200
    assert (response.json()["outcome"], response.json()["reason"]) == (
        "rejected",
        "usage day 2099-01-01 is in the future",
    )
