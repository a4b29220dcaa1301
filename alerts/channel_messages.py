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
from zoneinfo import ZoneInfo

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


# --- Digests: notices held during quiet hours, or a channel's daily summary ----------------------

DIGEST_KINDS = {"quietHours": "Held during quiet hours", "daily": "Daily digest"}
DIGEST_LINES = 50  # notices (and open alerts) listed one by one; the rest are counted
WEBHOOK_DIGEST_NOTICES = 1000  # a webhook digest carries each notice, up to this (then moreNotices)


@dataclass(frozen=True)
class OpenAlert:
    alert_id: int
    rule_name: str
    severity: str
    status: str
    triggered_at: datetime
    url: str


@dataclass(frozen=True)
class DigestNotice:
    """What one digest tells a channel: the notices it held, and (daily) the alerts still open."""

    tenant_id: str
    kind: str  # quietHours or daily
    at: datetime
    zone: str  # the tenant's, for the times a person reads
    notices: tuple[AlertNotice, ...]  # oldest first, at most DIGEST_LINES (webhooks: WEBHOOK_DIGEST_NOTICES)
    more_notices: int  # held notices beyond those listed
    still_open: tuple[OpenAlert, ...] = ()
    more_open: int = 0
    url: str = ""  # the alert list

    @property
    def notice_count(self) -> int:
        return len(self.notices) + self.more_notices

    @property
    def open_count(self) -> int:
        return len(self.still_open) + self.more_open

    @property
    def title(self) -> str:
        counts = f"{_plural(self.notice_count, 'notice')}"
        if self.kind == "daily":
            counts += f", {self.open_count} still open"
        return f"{DIGEST_KINDS[self.kind]}: {counts}"

    def local(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d %H:%M")

    def notice_line(self, notice: AlertNotice) -> str:
        return f"{self.local(notice.at)}  {notice.title}: {notice.reason}"

    def open_line(self, alert: OpenAlert) -> str:
        return f"[{alert.severity}] {alert.rule_name} ({alert.status} since {self.local(alert.triggered_at)})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def digest_email(digest: DigestNotice) -> tuple[str, str]:
    lines = [digest.title, f"Times are {digest.zone}.", ""]
    if digest.notices:
        lines += ["What happened:", *(f"- {digest.notice_line(n)}\n  {n.url}" for n in digest.notices)]
        if digest.more_notices:
            lines.append(f"- and {digest.more_notices} more")
        lines.append("")
    if digest.kind == "daily":
        lines.append("Still open:" if digest.still_open else "Nothing is open.")
        lines += [f"- {digest.open_line(alert)}\n  {alert.url}" for alert in digest.still_open]
        if digest.more_open:
            lines.append(f"- and {digest.more_open} more")
        lines.append("")
    lines.append(f"All alerts: {digest.url}")
    return digest.title, "\n".join(lines) + "\n"


def digest_slack_message(digest: DigestNotice) -> dict:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": digest.title[:150]}}]

    def listed(heading: str, lines: list[str], more: int) -> None:
        # A section holds 3,000 characters: whole lines only (a cut link is broken markup), the rest counted.
        text = f"*{heading}*"
        for number, line in enumerate(lines):
            if len(text) + len(line) + 40 > 3000:
                more += len(lines) - number
                break
            text += "\n" + line
        if more:
            text += f"\n… and {more} more"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})

    if digest.notices:
        listed(
            "What happened",
            [f"• <{n.url}|{_slack_escape(digest.notice_line(n))}>" for n in digest.notices],
            digest.more_notices,
        )
    if digest.kind == "daily":
        if digest.still_open:
            listed(
                "Still open",
                [f"• <{a.url}|{_slack_escape(digest.open_line(a))}>" for a in digest.still_open],
                digest.more_open,
            )
        else:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "Nothing is open."}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Times are {digest.zone}."}]})
    return {"text": _slack_escape(digest.title), "blocks": blocks}


def digest_webhook_event(digest: DigestNotice) -> dict:
    """`alerts.digest`: each held notice as its own event's `data` would carry it, and what is open."""
    return {
        "type": "alerts.digest",
        "timestamp": iso_utc(digest.at),
        "data": {
            "tenantId": digest.tenant_id,
            "kind": digest.kind,
            "notices": [
                {"type": f"alert.{n.event}", "at": iso_utc(n.at), **webhook_event(n)["data"]} for n in digest.notices
            ],
            "moreNotices": digest.more_notices,
            "stillOpen": None
            if digest.kind != "daily"
            else [
                {
                    "alertId": a.alert_id,
                    "ruleName": a.rule_name,
                    "severity": a.severity,
                    "status": a.status,
                    "triggeredAt": iso_utc(a.triggered_at),
                    "url": a.url,
                }
                for a in digest.still_open
            ],
            "moreOpen": digest.more_open,
            "url": digest.url,
        },
    }
