"""`/channels` and `/deliveries`: a tenant's own, secrets write-only, every bad input a 400 naming its field."""

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

from alerts.channel_messages import json_body, webhook_signature_headers
from alerts.models import Channel, Delivery
from tests.factories import TriggerRuleFactory, raise_alert

pytestmark = pytest.mark.django_db

HOOK = {"name": "On-call hook", "kind": "webhook", "target": "https://hooks.acme.example/alerts"}


def test_a_webhook_is_created_with_a_secret_shown_once(tenant_client):
    created = tenant_client.post("/channels", {**HOOK, "minSeverity": "warning"}, format="json")

    assert created.status_code == 201
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and body["secretHint"] == secret[:10] + "…"
    assert body["events"] == ["fired", "acknowledged", "resolved", "snoozeEnded"]
    assert (body["minSeverity"], body["enabled"], body["target"]) == ("warning", True, HOOK["target"])
    # The secret is a Standard Webhooks secret: a receiver holding it verifies what we sign with it.
    headers = webhook_signature_headers(secret=secret, message_id="msg_1", timestamp=int(time.time()), body=b"{}")
    assert Webhook(secret).verify(b"{}", headers) == {}
    fetched = tenant_client.get(f"/channels/{body['id']}").json()
    assert "secret" not in fetched and fetched["secretHint"] == secret[:10] + "…"
    listed = tenant_client.get("/channels").json()["results"]
    assert [c["id"] for c in listed] == [body["id"]] and secret not in json_body(listed).decode()


def test_a_slack_url_is_a_secret_too(tenant_client):
    url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    created = tenant_client.post("/channels", {"name": "Slack", "kind": "slack", "target": url}, format="json").json()

    assert created["target"] == url[:10] + "…" and created["secret"] is None
    assert Channel.objects.get().target == url


def test_patch_changes_only_what_is_sent_and_keeps_the_secret(tenant_client):
    created = tenant_client.post("/channels", HOOK, format="json").json()

    patched = tenant_client.patch(
        f"/channels/{created['id']}", {"events": ["fired", "resolved"], "secret": ""}, format="json"
    )

    assert patched.status_code == 200
    assert patched.json()["events"] == ["fired", "resolved"] and patched.json()["name"] == HOOK["name"]
    assert Channel.objects.get().secret == created["secret"]


def test_changing_the_kind_drops_the_old_secret_and_shows_a_generated_one(tenant_client):
    created = tenant_client.post("/channels", HOOK, format="json").json()

    to_email = tenant_client.patch(
        f"/channels/{created['id']}", {"kind": "email", "target": "oncall@acme.example"}, format="json"
    )
    back = tenant_client.patch(
        f"/channels/{created['id']}", {"kind": "webhook", "target": HOOK["target"]}, format="json"
    )
    renamed = tenant_client.patch(f"/channels/{created['id']}", {"name": "Hook"}, format="json")

    assert to_email.status_code == 200, to_email.json()
    assert (to_email.json()["secret"], to_email.json()["secretHint"]) == (None, None)
    new_secret = back.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    assert Channel.objects.get().secret == new_secret
    assert renamed.json()["secret"] is None  # shown once, not on every change


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**HOOK, "kind": "sms"}, "kind", "allowed: email, slack, pagerduty, webhook"),
        ({**HOOK, "target": "ftp://x.example"}, "target", "needs an http(s) URL"),
        ({**HOOK, "kind": "email", "target": "a@acme.example, nope"}, "target", "'nope' is not an email address."),
        ({**HOOK, "kind": "pagerduty", "target": ""}, "secret", "routing key"),
        ({**HOOK, "secret": "plain"}, "secret", "whsec_"),
        ({**HOOK, "events": []}, "events", ""),
        ({**HOOK, "events": ["fired", "paged"]}, "events", "allowed"),
        ({**HOOK, "minSeverity": "loud"}, "minSeverity", "allowed: info, warning, critical"),
        ({**HOOK, "colour": "red"}, "colour", ""),
    ],
)
def test_bad_channels_are_400s_naming_the_field(tenant_client, body, field, message):
    response = tenant_client.post("/channels", body, format="json")

    assert response.status_code == 400
    errors = response.json()["detail"]
    assert field in errors, errors
    assert message in json.dumps(errors[field])  # a list item's error is keyed by its index: {"1": [...]}
    assert not Channel.objects.exists()


def test_a_duplicate_name_is_refused(tenant_client):
    tenant_client.post("/channels", HOOK, format="json")

    response = tenant_client.post("/channels", HOOK, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == {"name": ["The tenant already has a channel named 'On-call hook'."]}
    assert Channel.objects.count() == 1


def test_another_tenants_channel_is_a_404_and_unchanged(tenant_client, other_tenant):
    theirs = Channel.objects.create(
        tenant=other_tenant, name="x", kind="email", target="a@globex.example", events=["fired"]
    )

    assert tenant_client.get(f"/channels/{theirs.pk}").status_code == 404
    assert tenant_client.patch(f"/channels/{theirs.pk}", {"name": "y"}, format="json").status_code == 404
    assert tenant_client.delete(f"/channels/{theirs.pk}").status_code == 404
    assert Channel.objects.get().name == "x"
    assert tenant_client.get("/channels").json()["results"] == []


def test_deliveries_are_listed_with_their_attempts_and_filtered(tenant_client, tenant, other_tenant):
    hook = tenant_client.post("/channels", HOOK, format="json").json()
    mail = tenant_client.post(
        "/channels", {"name": "Mail", "kind": "email", "target": "oncall@acme.example"}, format="json"
    ).json()
    Channel.objects.create(
        tenant=other_tenant, name="theirs", kind="email", target="a@globex.example", events=["fired"]
    )
    alert = raise_alert(TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=1))
    raise_alert(TriggerRuleFactory(tenant=other_tenant, type="metric_threshold", metric="m", threshold=1))
    Delivery.objects.filter(channel_id=mail["id"]).update(status="failed", attempts=6, last_error="SMTP down")

    everything = tenant_client.get("/deliveries").json()["results"]
    failed = tenant_client.get("/deliveries", {"status": "failed"}).json()["results"]
    to_hook = tenant_client.get("/deliveries", {"channel": hook["id"]}).json()["results"]
    bad = tenant_client.get("/deliveries", {"status": "lost"})

    assert {(d["channelId"], d["alertId"], d["event"]) for d in everything} == {
        (hook["id"], alert.pk, "fired"),
        (mail["id"], alert.pk, "fired"),
    }
    assert [(d["channelId"], d["status"], d["attempts"], d["lastError"]) for d in failed] == [
        (mail["id"], "failed", 6, "SMTP down")
    ]
    assert [d["channelId"] for d in to_hook] == [hook["id"]] and to_hook[0]["attemptLog"] == []
    assert bad.status_code == 400 and "status" in bad.json()["detail"]


def test_deleting_a_channel_deletes_its_deliveries_not_the_alerts(tenant_client, tenant):
    hook = tenant_client.post("/channels", HOOK, format="json").json()
    alert = raise_alert(TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=1))

    response = tenant_client.delete(f"/channels/{hook['id']}")

    assert response.status_code == 204
    assert not Delivery.objects.exists()
    assert tenant_client.get(f"/alerts/{alert.pk}").status_code == 200
