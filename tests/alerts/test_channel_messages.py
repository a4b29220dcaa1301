"""
What each channel kind receives, checked by the receiver's side: webhook signatures by the
`standardwebhooks` package (a third party's verifier), email through a real SMTP server
(aiosmtpd), Slack and PagerDuty against their documented shapes.
"""

import email
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from django.core.mail import EmailMessage, get_connection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.channel_messages import (
    AlertNotice,
    email_message,
    json_body,
    new_webhook_secret,
    pagerduty_event,
    slack_message,
    webhook_event,
    webhook_signature_headers,
)

AT = datetime(2026, 11, 26, 13, 31, tzinfo=UTC)


def notice(event="fired", **fields):
    return AlertNotice(
        **{
            "tenant_id": "acme",
            "alert_id": 42,
            "event": event,
            "at": AT,
            "rule_name": "Checkout latency",
            "rule_type": "metric_threshold",
            "severity": "critical",
            "status": {"fired": "pending", "acknowledged": "acknowledged", "resolved": "resolved"}.get(
                event, "pending"
            ),
            "reason": "api.latency_ms is 812, above 500.",
            "triggered_at": AT - timedelta(minutes=1),
            "url": "https://insights.example.com/alerts/42",
            "value": 812.0,
            "metric": "api.latency_ms",
            **fields,
        }
    )


class TestWebhookSignature:
    def signed(self, secret, body, *, timestamp=None, message_id="msg_42_fired"):
        timestamp = int(time.time()) if timestamp is None else timestamp
        return webhook_signature_headers(secret=secret, message_id=message_id, timestamp=timestamp, body=body)

    def test_a_standard_webhooks_library_verifies_our_signature(self):
        secret = new_webhook_secret()
        body = json_body(webhook_event(notice()))

        verified = Webhook(secret).verify(body, self.signed(secret, body))

        assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
        assert verified == json.loads(body)
        assert verified["type"] == "alert.fired"
        assert verified["data"]["alertId"] == 42 and verified["data"]["severity"] == "critical"

    def test_a_tampered_body_fails_verification(self):
        secret = new_webhook_secret()
        body = json_body(webhook_event(notice()))
        headers = self.signed(secret, body)

        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace(b"critical", b"info"), headers)

    def test_an_old_timestamp_fails_verification(self):
        secret = new_webhook_secret()
        body = json_body(webhook_event(notice()))

        with pytest.raises(WebhookVerificationError, match="too old"):
            Webhook(secret).verify(body, self.signed(secret, body, timestamp=int(time.time()) - 600))

    def test_another_secret_fails_verification(self):
        body = json_body(webhook_event(notice()))

        with pytest.raises(WebhookVerificationError):
            Webhook(new_webhook_secret()).verify(body, self.signed(new_webhook_secret(), body))

    def test_the_signature_is_the_specifications_hmac(self):
        # The specification's example: secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        # timestamp 1614265330, body {"test": 2432232314} → v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
        headers = webhook_signature_headers(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )

        assert headers == {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        }


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_email_through_a_real_smtp_server(smtp_server):
    controller, inbox = smtp_server
    subject, body = email_message(notice())
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host="127.0.0.1",
        port=controller.server.sockets[0].getsockname()[1],
    )

    sent = EmailMessage(
        subject, body, "alerts@insights.example.com", ["oncall@acme.example"], connection=connection
    ).send()

    assert sent == 1
    (envelope,) = inbox.messages
    assert envelope.mail_from == "alerts@insights.example.com"
    assert envelope.rcpt_tos == ["oncall@acme.example"]
    received = email.message_from_bytes(envelope.content, policy=policy.default)
    assert received["Subject"] == "[critical] Checkout latency fired"
    assert received["To"] == "oncall@acme.example"
    text = received.get_content()
    assert "api.latency_ms is 812, above 500." in text
    assert "Value: api.latency_ms = 812" in text
    assert "Open the alert: https://insights.example.com/alerts/42" in text


class TestSlack:
    def test_the_message_has_a_fallback_text_and_blocks(self):
        message = slack_message(notice())

        assert message["text"] == "[critical] Checkout latency fired: api.latency_ms is 812, above 500."
        assert [block["type"] for block in message["blocks"]] == ["header", "section", "section", "actions"]
        header, reason, facts, actions = message["blocks"]
        assert header["text"] == {"type": "plain_text", "text": "[critical] Checkout latency fired"}
        assert reason["text"] == {"type": "mrkdwn", "text": "api.latency_ms is 812, above 500."}
        assert [field["text"].split("\n")[0] for field in facts["fields"]] == [
            "*Severity*",
            "*Status*",
            "*Value*",
            "*Triggered*",
        ]
        assert actions["elements"][0]["url"] == "https://insights.example.com/alerts/42"
        assert json.loads(json_body(message)) == message  # strict JSON, nothing lost

    def test_markup_in_a_reason_is_escaped(self):
        message = slack_message(notice(reason="m is <@here> & <!channel>"))

        assert message["blocks"][1]["text"]["text"] == "m is &lt;@here&gt; &amp; &lt;!channel&gt;"
        assert message["text"].endswith(": m is &lt;@here&gt; &amp; &lt;!channel&gt;")  # the notification too

    def test_slacks_limits_are_kept(self):
        message = slack_message(notice(rule_name="r" * 400, reason="x" * 5000))

        assert len(message["blocks"][0]["text"]["text"]) == 150  # a header's plain text
        assert len(message["blocks"][1]["text"]["text"]) == 3000  # a section's text


class TestPagerDuty:
    def test_a_firing_triggers_an_incident_keyed_by_the_alert(self):
        event = pagerduty_event(notice(), routing_key="R0UT1NGKEY")

        assert event["routing_key"] == "R0UT1NGKEY"
        assert event["event_action"] == "trigger"
        assert event["dedup_key"] == "42"
        payload = event["payload"]
        assert payload["summary"] == "[critical] Checkout latency fired: api.latency_ms is 812, above 500."
        assert payload["source"] == "proactive-insights/acme"
        assert payload["severity"] == "critical"
        assert payload["timestamp"] == "2026-11-26T13:31:00Z"
        assert event["links"] == [{"href": "https://insights.example.com/alerts/42", "text": "Open the alert"}]

    @pytest.mark.parametrize(("event", "action"), [("acknowledged", "acknowledge"), ("resolved", "resolve")])
    def test_acknowledge_and_resolve_follow_the_same_incident(self, event, action):
        assert pagerduty_event(notice(event), routing_key="K") == {
            "routing_key": "K",
            "event_action": action,
            "dedup_key": "42",
        }

    def test_severities_are_pagerdutys(self):
        assert pagerduty_event(notice(severity="info"), routing_key="K")["payload"]["severity"] == "info"
        assert pagerduty_event(notice(severity="warning"), routing_key="K")["payload"]["severity"] == "warning"
        assert len(pagerduty_event(notice(reason="x" * 2000), routing_key="K")["payload"]["summary"]) == 1024


def test_a_long_digest_lists_fifty_and_counts_the_rest():
    from datetime import UTC, datetime

    from alerts.channel_messages import DIGEST_LINES, DigestNotice, digest_email, digest_slack_message

    at = datetime(2026, 11, 27, 6, tzinfo=UTC)
    notice = AlertNotice(
        tenant_id="acme",
        alert_id=7,
        event="fired",
        at=at,
        rule_name="Errors <b>",
        rule_type="metric_threshold",
        severity="warning",
        status="pending",
        reason="errors = 9 > 5",
        triggered_at=at,
        url="https://x/alerts/7",
    )
    digest = DigestNotice(
        tenant_id="acme",
        kind="quietHours",
        at=at,
        zone="Europe/Berlin",
        notices=(notice,) * DIGEST_LINES,
        more_notices=12,
        url="https://x/alerts",
    )

    subject, body = digest_email(digest)
    slack = digest_slack_message(digest)

    assert subject == "Held during quiet hours: 62 notices"
    assert body.count("2026-11-27 07:00  [warning] Errors <b> fired: errors = 9 > 5") == DIGEST_LINES  # Berlin time
    assert "- and 12 more" in body and "Still open" not in body
    section = slack["blocks"][1]["text"]["text"]
    listed = section.count("<https://x/alerts/7|")
    assert len(section) <= 3000 and "Errors &lt;b&gt;" in section and 0 < listed < DIGEST_LINES
    assert section.endswith(f"… and {DIGEST_LINES - listed + 12} more")
