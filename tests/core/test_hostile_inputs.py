"""
Inputs from a hostile-input run: each one gave a 500 (or was silently accepted) and is now a 4xx
that names the problem, with nothing written.
"""

import base64
import io
import json

import pytest
import stripe

from billing.models import BillingEvent
from core.parsers import PayloadTooLarge, SafeJSONParser
from marketplace.models import TenantWidget, Widget
from proactive.models import MetricPoint, TriggerRule
from tenants.models import Tenant
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_exception_reraise(tenant_client, admin_key_client, client):
    for c in (tenant_client, admin_key_client, client):
        c.raise_request_exception = False


@pytest.fixture
def widget(admin_key_client):
    response = admin_key_client.post(
        "/marketplace/widgets", {"slug": "w", "name": "W", "version": "1.0.0"}, format="json"
    )
    assert response.status_code == 201
    return Widget.objects.get(slug="w")


def nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_a_body_field_named_detail_keeps_the_error_shape(tenant_client):
    response = tenant_client.post(
        "/triggers", {"name": "x", "type": "schedule", "schedule": "0 * * * *", "detail": 1}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert list(body["detail"]) == ["detail"]
    assert body["detail"]["detail"][0].startswith("Unknown field.")
    assert not TriggerRule.objects.exists()


@pytest.mark.parametrize(
    "path", ["/triggers", "/metrics/m/points", "/marketplace/widgets/w/install", "/alerts/{alert}/snooze"]
)
def test_a_json_list_body_is_a_camel_case_validation_error(tenant, tenant_client, widget, path):
    alert = raise_alert(TriggerRuleFactory(tenant=tenant))

    response = tenant_client.post(path.format(alert=alert.pk), [1, 2], format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "validation_error",
        "detail": {"nonFieldErrors": ["Invalid data. Expected a dictionary, but got list."]},
    }


def test_a_list_body_for_an_admin_endpoint(admin_key_client):
    response = admin_key_client.post("/tenants", ["acme"], format="json")

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["nonFieldErrors"]


@pytest.mark.parametrize("depth", [33, 330, 990])
def test_deeply_nested_install_config(tenant_client, widget, depth):
    body = '{"config": ' + nested_text(depth) + "}"

    response = tenant_client.post("/marketplace/widgets/w/install", data=body, content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    if depth < 64:  # within what a request may nest: the field is named
        assert body == {"error": "validation_error", "detail": {"config": ["Is nested more than 32 levels deep."]}}
    else:
        assert body == {
            "error": "parse_error",
            "detail": "JSON parse error - the document is nested more than 64 levels deep.",
        }
    assert not TenantWidget.objects.exists()


def test_nesting_within_the_bound_is_stored(tenant_client, widget):
    response = tenant_client.post(
        "/marketplace/widgets/w/install", {"config": json.loads(nested_text(31))}, format="json"
    )

    assert response.status_code == 201
    assert TenantWidget.objects.get().config == json.loads(nested_text(31))


@pytest.mark.parametrize("depth", [40, 330, 990])
def test_deeply_nested_widget_metadata(admin_key_client, widget, depth):
    body = '{"slug": "w", "metadata": ' + nested_text(depth) + "}"

    response = admin_key_client.post("/marketplace/widgets", data=body, content_type="application/json")

    assert response.status_code == 400
    assert "nested more than" in json.dumps(response.json()["detail"])
    assert Widget.objects.get().metadata == {}


def _signed(client, payload: str):
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_test_secret")
    return client.post("/billing/webhook", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


@pytest.mark.parametrize("depth", [40, 330, 990, 5000])
def test_deeply_nested_webhook_bodies(client, depth):
    payload = '{"id": "evt_deep", "type": "t", "data": {"object": {"metadata": ' + nested_text(depth) + "}}}"

    response = _signed(client, payload)

    assert response.status_code == 400
    assert "nested more than" in json.dumps(response.json()["detail"])
    assert not BillingEvent.objects.exists()


@pytest.mark.parametrize("data", [None, [], "x", {"object": None}, {"object": [1]}])
def test_a_signed_event_whose_data_is_not_an_object(client, data):
    response = _signed(client, json.dumps({"id": "evt_null", "type": "invoice.paid", "data": data}))

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["data"]
    assert not BillingEvent.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/marketplace/widgets/a%00b"),
        ("post", "/marketplace/widgets/a%00b/install"),
        ("delete", "/marketplace/widgets/a%00b/install"),
        ("get", "/marketplace/widgets/Bad_Slug"),
    ],
)
def test_a_malformed_slug_in_the_path_is_a_400_naming_it(tenant_client, widget, method, path):
    response = getattr(tenant_client, method)(path)

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "is not a valid slug" in response.json()["detail"]["slug"][0]


def test_an_unknown_well_formed_slug_is_still_404(tenant_client):
    assert tenant_client.get("/marketplace/widgets/no-such-widget").status_code == 404


def test_a_metric_name_with_a_trailing_newline_is_rejected(tenant_client):
    points = {"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": 1}]}

    written = tenant_client.post("/metrics/m.nl%0A/points", points, format="json")
    read = tenant_client.get("/metrics/m.nl%0A/points")

    for response in (written, read):
        assert response.status_code == 400
        assert "is not a valid metric identifier" in response.json()["detail"]["metric"][0]
    assert not MetricPoint.objects.exists() and not TriggerRule.objects.exists()


@pytest.mark.parametrize("tenant_id", [0, 12, True, ["acme"], {"id": "acme"}])
def test_tenant_ids_are_strings(admin_key_client, tenant_id):
    response = admin_key_client.post("/tenants", {"id": tenant_id, "name": "Zero"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == {"id": ["Must be a string."]}
    assert not Tenant.objects.filter(name="Zero").exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tenants", {"id": "initech\n", "name": "Initech"}, "id"),
        ("/tenants", {"id": "initech", "name": "Initech", "slug": "initech\n"}, "slug"),
        ("/marketplace/widgets", {"slug": "radar\n", "name": "Radar", "version": "1.0.0"}, "slug"),
        ("/marketplace/widgets", {"slug": "radar", "name": "Radar", "version": "1.0.0\n"}, "version"),
    ],
)
def test_an_identifier_with_a_trailing_newline_is_rejected_not_trimmed(admin_key_client, path, body, field):
    response = admin_key_client.post(path, body, format="json")

    assert response.status_code == 400
    assert list(response.json()["detail"]) == [field]
    assert not Tenant.objects.filter(pk="initech").exists() and not Widget.objects.filter(slug="radar").exists()


def test_a_rule_metric_with_a_trailing_newline_is_rejected_not_trimmed(tenant_client):
    response = tenant_client.post(
        "/triggers", {"name": "x", "type": "metric_threshold", "metric": "m\n", "threshold": 1}, format="json"
    )

    assert response.status_code == 400
    assert "is not a valid metric identifier" in response.json()["detail"]["metric"][0]
    assert not TriggerRule.objects.exists()


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("R * * * *", "minute 'R' is not a number"),
        ("H * * * *", "minute 'H' is not a number"),
        (
            "² * * * *",
            "minute '²' is not standard cron",
        ),  # a digit to str.isdigit, not to int() (refused by the shape check)
        ("٣ * * * *", "minute '٣' is not standard cron"),  # a digit int() reads as 3, not cron's
        ("1-0 * * * *", "minute range '1-0' runs backwards"),
        ("*/100 * * * *", "minute step /100 must be from 1 to 59"),
        ("0 */24 * * *", "hour step /24 must be from 1 to 23"),
        ("0 0 * * 1#2", "day of week '1#2' is not standard cron"),
        ("0 0 L * *", "day of month 'L' is not a number"),
        ("0 0 ? * *", "day of month '?' is not standard cron"),
        ("5/15 * * * *", "needs * or a range before the /"),
        ("0 0 * * fri-mon", "runs backwards"),
        ("0 0 * 13 *", "month 13 is out of range (1-12)"),
        ("0 0 0 * *", "day of month 0 is out of range (1-31)"),
        ("0 0 0 0 0 0", "exactly 5 fields"),
        ("@daily", "exactly 5 fields"),
    ],
)
def test_non_standard_cron_is_rejected(tenant_client, schedule, problem):
    response = tenant_client.post("/triggers", {"name": "x", "type": "schedule", "schedule": schedule}, format="json")

    assert response.status_code == 400
    [message] = response.json()["detail"]["schedule"]
    assert problem in message, message
    assert not TriggerRule.objects.exists()


@pytest.mark.parametrize(
    "schedule",
    ["0 13 * * 1", "*/15 9-17 * * mon-fri", "0 0 1 jan,jul *", "0 0 * * 7", "30 2 29 2 *", "0-30/10 * * * *"],
)
def test_standard_cron_is_accepted(tenant_client, schedule):
    response = tenant_client.post("/triggers", {"name": "x", "type": "schedule", "schedule": schedule}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["schedule"] == schedule


@pytest.mark.parametrize("cursor", ["", " ", "\x00", "%00", "abc def", "é"])
@pytest.mark.parametrize(
    "path", ["/alerts", "/triggers", "/notifications", "/marketplace/widgets", "/metrics/m/points"]
)
def test_blank_whitespace_and_nul_cursors_are_400(tenant_client, path, cursor):
    response = tenant_client.get(path, {"cursor": cursor})

    assert response.status_code == 400
    assert response.json()["detail"] == {
        "cursor": ["Invalid cursor: use the `next` or `previous` link of a previous page."]
    }


def test_nul_in_the_tenant_header_and_in_an_api_key(admin_key_client, client, tenant):
    header = admin_key_client.get("/alerts", HTTP_X_TENANT_ID="ac\x00me")
    key = client.get("/alerts", HTTP_AUTHORIZATION="Bearer pi_ab\x00cdefg_secret")

    assert header.status_code == 400 and list(header.json()["detail"]) == ["X-Tenant-Id"]
    assert key.status_code == 401 and key.json()["error"] == "authentication_failed"


def test_a_body_over_the_limit_is_413(tenant_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": 1}] * 100})

    response = tenant_client.post("/metrics/m/points", data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large", "detail": "The request body may be at most 1,000 bytes."}
    assert not MetricPoint.objects.exists()


def test_a_body_without_a_length_is_cut_off_at_the_limit(settings):
    """A chunked body announces no length: the parser stops reading one byte past the limit."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(json.dumps({"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": 1}] * 100}).encode())

    with pytest.raises(PayloadTooLarge):
        SafeJSONParser().parse(stream)

    assert stream.tell() == 1001


def test_a_url_over_the_limit_is_414(tenant_client):
    response = tenant_client.get("/alerts", {"status": "pending," * 300})

    assert response.status_code == 414
    assert response.json()["error"] == "uri_too_long"


def test_a_body_that_is_not_json_is_415(tenant_client):
    response = tenant_client.post("/triggers", data="name=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("query", ["limit=1&limit=2", "ruleId=1&ruleId=2", "status=pending&status=resolved"])
def test_a_query_parameter_given_twice_is_400(tenant_client, query):
    response = tenant_client.get(f"/alerts?{query}")

    assert response.status_code == 400
    [name] = response.json()["detail"]
    assert query.startswith(name + "=")
    assert response.json()["detail"][name] == [
        "Give this parameter once (several values: separate them with commas where a parameter takes a list)."
    ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/triggers?type=", "type"),
        ("/triggers?enabled=", "enabled"),
        ("/alerts?status=", "status"),
        ("/notifications?unread=", "unread"),
        ("/alerts?severity=", "severity"),
    ],
)
def test_a_blank_filter_is_400_not_ignored(tenant_client, path, name):
    response = tenant_client.get(path)

    assert response.status_code == 400
    assert list(response.json()["detail"]) == [name]


def test_the_admin_keeps_its_repeated_parameters(admin_client):
    response = admin_client.get("/admin/proactive/triggerrule/?severity__exact=info&severity__exact=warning")

    assert response.status_code == 200


def test_a_signature_header_with_an_extra_equals_sign_is_read_as_stripe_reads_it(client, tenant):
    payload = json.dumps({"id": "evt_eq", "type": "invoice.paid", "data": {"object": {}}})
    timestamp, signature = stripe.WebhookSignature.generate_signature_header(payload, "whsec_test_secret").split(",")

    response = client.post(
        "/billing/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"{timestamp}=1,{signature}",
    )

    assert response.status_code == 200 and response.json()["outcome"] == "no_usage"


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_number_no_float_can_hold_is_a_parse_error_everywhere(client, tenant_client, tenant, number):
    event = _signed(client, '{"id": "evt_big", "type": "t", "data": {"object": {"amount": ' + number + "}}}")
    rule = tenant_client.post(
        "/triggers",
        data='{"name": "x", "type": "metric_threshold", "metric": "m", "threshold": ' + number + "}",
        content_type="application/json",
    )

    for response in (event, rule):
        assert response.status_code == 400
        assert response.json() == {
            "error": "parse_error",
            "detail": f"JSON parse error - {number} is too large a number",
        }
    assert not BillingEvent.objects.exists() and not TriggerRule.objects.exists()


def test_a_usage_cursor_without_a_time_zone_is_a_bad_cursor(tenant_client, tenant):
    from datetime import date

    from billing.services.usage import UsageDelta, usage_apply

    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=date.today(), tokens_used=5)])
    forged = base64.b64encode(b"p=2026-11-20T00%3A00%3A00").decode()

    response = tenant_client.get("/metrics/usage.tokensUsed/points", {"cursor": forged})

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["cursor"]


@pytest.mark.parametrize("body", ["[]", "false", "0", '""', "null", "[1]"])
def test_a_body_that_is_not_an_object_is_400_even_when_falsy(tenant, tenant_client, widget, body):
    rule = TriggerRuleFactory(tenant=tenant)

    evaluate = tenant_client.post(f"/triggers/{rule.pk}/evaluate", data=body, content_type="application/json")
    install = tenant_client.post("/marketplace/widgets/w/install", data=body, content_type="application/json")

    for response in (evaluate, install):
        assert response.status_code == 400, response.content
        assert list(response.json()["detail"]) == ["nonFieldErrors"]
    assert not TenantWidget.objects.exists()
