"""
What each kind of channel receives about an alert (pure: no I/O). Each builder takes an
`AlertNotice` — one event of one alert, as a channel is told of it — and returns the message in the
receiver's documented shape:

- email: a subject and a plain-text body (sent by Django's email backend);
- Slack: an incoming-webhook message, `text` (the notification fallback) and Block Kit `blocks`;
- PagerDuty: an Events API v2 event; `dedup_key` is the alert's id, so the incident follows it
  (trigger → acknowledge → resolve);
- webhook: a JSON event, signed per the Standard Webhooks specification (`webhook-id`,
  `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` with a `whsec_` secret).
"""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from core.timeutils import iso_utc

WEBHOOK_SECRET_PREFIX = "whsec_"
PAGERDUTY_ACTION = {"fired": "trigger", "acknowledged": "acknowledge", "resolved": "resolve", "snoozeEnded": "trigger"}
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
EVENT_VERB = {
    "fired": "fired",
    "acknowledged": "was acknowledged",
    "resolved": "resolved",
    "snoozeEnded": "is back after a snooze",
}


@dataclass(frozen=True)
class AlertNotice:
    """One event of one alert, as every channel is told of it."""

    tenant_id: str
    alert_id: int
    event: str  # fired, acknowledged, resolved or snoozeEnded
    at: datetime  # when the event happened
    rule_name: str
    rule_type: str
    severity: str
    status: str
    reason: str
    triggered_at: datetime
    url: str  # where a person sees the alert
    value: float | None = None
    metric: str | None = None
    actor: str = ""

    @property
    def title(self) -> str:
        return f"[{self.severity}] {self.rule_name} {EVENT_VERB[self.event]}"

    @property
    def value_text(self) -> str | None:
        if self.value is None:
            return None
        return f"{self.metric} = {self.value:g}" if self.metric else f"{self.value:g}"


def email_message(notice: AlertNotice) -> tuple[str, str]:
    """The subject and plain-text body of the email."""
    lines = [notice.title, "", notice.reason, ""]
    if notice.value_text:
        lines.append(f"Value: {notice.value_text}")
    lines += [
        f"Severity: {notice.severity}",
        f"Status: {notice.status}",
        f"Triggered at: {iso_utc(notice.triggered_at)}",
        f"Event at: {iso_utc(notice.at)}" + (f" by {notice.actor}" if notice.actor else ""),
        "",
        f"Open the alert: {notice.url}",
    ]
    return notice.title, "\n".join(lines) + "\n"


def slack_message(notice: AlertNotice) -> dict:
    """An incoming-webhook message: `text` for notifications, blocks for the channel."""
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{SEVERITY_EMOJI.get(notice.severity, '')} {notice.severity}"},
        {"type": "mrkdwn", "text": f"*Status*\n{notice.status}"},
    ]
    if notice.value_text:
        fields.append({"type": "mrkdwn", "text": f"*Value*\n{_slack_escape(notice.value_text)}"})
    fields.append({"type": "mrkdwn", "text": f"*Triggered*\n{iso_utc(notice.triggered_at)}"})
    return {
        "text": _slack_escape(f"{notice.title}: {notice.reason}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},  # plain: no markup
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(notice.reason)[:3000]}},
            {"type": "section", "fields": fields},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the alert"}, "url": notice.url}
                ],
            },
        ],
    }


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pagerduty_event(notice: AlertNotice, *, routing_key: str, dedup_key: str | None = None) -> dict:
    """An Events API v2 event (keyed by the alert's id unless told otherwise); only a trigger carries the payload."""
    event = {
        "routing_key": routing_key,
        "event_action": PAGERDUTY_ACTION[notice.event],
        "dedup_key": dedup_key or str(notice.alert_id),
    }
    if event["event_action"] == "trigger":
        event["payload"] = {
            "summary": f"{notice.title}: {notice.reason}"[:1024],
            "source": f"proactive-insights/{notice.tenant_id}",
            "severity": notice.severity,  # ours (critical, warning, info) are PagerDuty's too
            "timestamp": iso_utc(notice.at),
            "component": notice.rule_name,
            "class": notice.rule_type,
            "custom_details": {"reason": notice.reason, "value": notice.value, "metric": notice.metric},
        }
        event["links"] = [{"href": notice.url, "text": "Open the alert"}]
    return event


def webhook_event(notice: AlertNotice) -> dict:
    """The JSON body a webhook receives: the event type, its time, and the alert."""
    return {
        "type": f"alert.{notice.event}",
        "timestamp": iso_utc(notice.at),
        "data": {
            "alertId": notice.alert_id,
            "tenantId": notice.tenant_id,
            "ruleName": notice.rule_name,
            "ruleType": notice.rule_type,
            "severity": notice.severity,
            "status": notice.status,
            "reason": notice.reason,
            "value": notice.value,
            "metric": notice.metric,
            "triggeredAt": iso_utc(notice.triggered_at),
            "url": notice.url,
            "actor": notice.actor or None,
        },
    }


def json_body(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_signature_headers(*, secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """
    The Standard Webhooks headers: the signed content is `{id}.{timestamp}.{body}`, the key the
    secret's base64 part; receivers verify with any Standard Webhooks library.
    """
    key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
