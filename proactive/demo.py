"""
The demo tenant (`python manage.py seed_slice6`): the guide's four seeding steps, plus enough metric
history that the engine's next tick fires every rule type for real.

It only ever adds what is missing: whatever exists — a rule someone edited, a widget the tenant
uninstalled, a day's usage that a webhook has added to — is left exactly as it is, so running it
again (every `make run` does) never overwrites live data.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from alerts.models import Alert
from alerts.services import alert_acknowledge, alert_raise, alert_resolve
from billing.services.usage import usage_insert_if_missing, usage_rows_ensure
from core.exceptions import ApplicationError
from core.timeutils import iso_utc
from marketplace.models import TenantWidget, Widget
from marketplace.selectors import active_widget_count
from marketplace.services import widget_install, widget_register
from proactive.engine.conditions import DEFAULT_Z_THRESHOLD
from proactive.models import MetricPoint, TriggerRule
from proactive.services import metric_points_write, trigger_rule_create
from tenants.models import Tenant
from tenants.services import tenant_create

DEFAULT_TENANT_ID = "tenant-slice6-demo"
DEFAULT_TENANT_NAME = "Slice 6 Demo"
SEED_ACTOR = "seed"

REVENUE_RADAR = {
    "slug": "revenue-radar",
    "name": "Revenue Radar",
    "description": "Pipeline and revenue movements at a glance, with the alerts that explain them.",
    "version": "1.0.0",
    "dashboard": {"tile": {"title": "Revenue radar", "size": "md", "metric": "analytics.mql.delta"}},
    "metadata": {"category": "revenue", "author": "Proactive Insights", "refresh": "hourly"},
}

# name → (fields, days ago the rule was created). The weekly briefing is "a week old", so its last
# Monday 13:00 has passed unrun and the next tick fires it once.
RULES = {
    "Weekly pipeline briefing": (
        {"type": "schedule", "schedule": "0 13 * * 1", "severity": "info"},
        8,
    ),
    "MQL delta spike": (
        {
            "type": "metric_threshold",
            "metric": "analytics.mql.delta",
            "threshold": 25,
            "severity": "warning",
            "auto_resolve": True,
        },
        0,
    ),
    "Token usage anomaly": (
        {"type": "anomaly", "metric": "usage.tokensUsed", "window_days": 14, "severity": "critical"},
        0,
    ),
    "Churn risk above 0.7": (
        {"type": "metric_threshold", "metric": "analytics.churn.risk", "threshold": 0.7, "severity": "critical"},
        0,
    ),
}

# The last seven complete days: steady usage, and a token spike yesterday for the anomaly rule.
USAGE_DAYS = [
    # days ago, tokens, tasks, alerts
    (7, 1180, 14, 1),
    (6, 1320, 16, 0),
    (5, 1250, 15, 2),
    (4, 1210, 13, 0),
    (3, 1290, 17, 1),
    (2, 1240, 15, 0),
    (1, 9600, 41, 1),
]


# As the engine would have written it: 4,100 tokens against 14 days averaging 1,250 (z = 3.4).
SEEDED_ANOMALY_EVIDENCE = {
    "metric": "usage.tokensUsed",
    "value": 4100.0,
    "mean": 1250.0,
    "std": 838.2352941176471,
    "zScore": 3.4,
    "threshold": DEFAULT_Z_THRESHOLD,
    "windowDays": 14,
    "points": 14,
}


@dataclass
class SeedReport:
    lines: list[str] = field(default_factory=list)
    created: int = 0
    kept: int = 0

    def note(self, line: str, *, created: bool) -> None:
        self.lines.append(line)
        self.created += created
        self.kept += not created


class SlugTaken(ApplicationError):
    code = "slug_taken"


def _ensure_tenant(report: SeedReport, *, tenant_id: str, name: str, slug: str | None) -> Tenant:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        report.note(
            f"tenant {tenant.id!r}: exists, left as it is (name {tenant.name!r}, slug {tenant.slug!r})", created=False
        )
        return tenant
    slug = slug or slugify(name)
    owner = Tenant.objects.filter(slug=slug).first()
    if owner is not None:
        raise SlugTaken(
            f"The slug {slug!r} (from the name {name!r}) belongs to tenant {owner.id!r}; "
            "choose another with --tenant-slug."
        )
    try:
        tenant = tenant_create(id=tenant_id, name=name, slug=slug)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise ApplicationError(f"Cannot create tenant {tenant_id!r}: {problems}") from None
    report.note(f"tenant {tenant.id!r}: created (name {tenant.name!r}, slug {tenant.slug!r})", created=True)
    return tenant


def _ensure_widget(report: SeedReport, tenant: Tenant, now: datetime) -> None:
    widget = Widget.objects.filter(slug=REVENUE_RADAR["slug"]).first()
    if widget is None:
        widget = widget_register(**REVENUE_RADAR).widget
        report.note("widget 'revenue-radar': registered", created=True)
    else:  # staff may have edited it
        report.note(f"widget 'revenue-radar': exists, left as it is (version {widget.version})", created=False)
    install = TenantWidget.objects.filter(tenant=tenant, widget=widget).first()
    if install is not None:  # installed, or uninstalled by the tenant: their choice stands
        state = "installed" if install.enabled else "uninstalled"
        report.note(f"widget 'revenue-radar' for {tenant.id!r}: {state}, left as it is", created=False)
        return
    widget_install(tenant=tenant, widget=widget, now=now)
    report.note(f"widget 'revenue-radar' for {tenant.id!r}: installed", created=True)


def _ensure_rules(report: SeedReport, tenant: Tenant, now: datetime) -> dict[str, TriggerRule]:
    rules = {}
    for name, (fields, days_old) in RULES.items():
        rule = TriggerRule.objects.filter(tenant=tenant, name=name).first()
        if rule is None:
            rule = trigger_rule_create(tenant=tenant, name=name, now=now - timedelta(days=days_old), **fields)
            report.note(f"rule {name!r} ({rule.type}): created", created=True)
        else:
            report.note(f"rule {name!r} ({rule.type}): exists, left as it is", created=False)
        rules[name] = rule
    return rules


def _ensure_example_alerts(report: SeedReport, rules: dict[str, TriggerRule], now: datetime) -> None:
    """Past alerts in each state of the workflow. They are resolved or acknowledged, so the
    engine's own alerts appear beside them (a rule has at most one open alert)."""
    examples = [
        ("MQL delta spike", 3, "resolved", {"metric": "analytics.mql.delta", "value": 42.0, "threshold": 25.0}),
        ("Token usage anomaly", 5, "resolved", SEEDED_ANOMALY_EVIDENCE),
        (
            "Churn risk above 0.7",
            1,
            "acknowledged",
            {"metric": "analytics.churn.risk", "value": 0.81, "threshold": 0.7},
        ),
    ]
    for rule_name, days_ago, status, evidence in examples:
        rule = rules[rule_name]
        if Alert.objects.filter(rule=rule, payload__seeded=True).exists():
            report.note(f"example alert for {rule_name!r}: exists, left as it is", created=False)
            continue
        at = now - timedelta(days=days_ago)
        payload = {**evidence, "observedAt": iso_utc(at), "reason": "Seeded example.", "seeded": True}
        raised = alert_raise(rule=rule, payload=payload, triggered_at=at, actor=SEED_ACTOR)
        if not raised.created:  # the rule has a live open alert: an example must not touch it
            report.note(f"example alert for {rule_name!r}: not added (the rule has an open alert)", created=False)
            continue
        alert = alert_acknowledge(alert=raised.alert, actor=SEED_ACTOR, now=at + timedelta(minutes=20))
        if status == "resolved":
            alert_resolve(alert=alert, actor=SEED_ACTOR, now=at + timedelta(hours=3), reason="Seeded example.")
        report.note(f"example alert for {rule_name!r}: created ({status})", created=True)


def _ensure_usage(report: SeedReport, tenant: Tenant, now: datetime) -> None:
    today = now.date()
    widgets = active_widget_count(tenant_id=tenant.id)
    for days_ago, tokens, tasks, alerts in USAGE_DAYS:
        day = today - timedelta(days=days_ago)
        created = usage_insert_if_missing(
            tenant_id=tenant.id,
            day=day,
            values={
                "tokens_used": tokens,
                "tasks_executed": tasks,
                "alerts_triggered": alerts,
                "active_widgets": widgets,
            },
        )
        report.note(f"usage {day}: {'written' if created else 'exists, left as it is'}", created=created)
    usage_rows_ensure(keys=[(tenant.id, today)])  # today's row only if missing: its counts are live


def _ensure_metric_history(report: SeedReport, tenant: Tenant, now: datetime) -> None:
    hour = now.replace(minute=0, second=0, microsecond=0)
    series = {
        # 24 hourly values; the latest MQL delta (31) is above the rule's threshold of 25.
        "analytics.mql.delta": [
            8,
            11,
            9,
            12,
            10,
            7,
            9,
            13,
            11,
            10,
            12,
            9,
            8,
            10,
            11,
            12,
            9,
            10,
            13,
            12,
            11,
            14,
            18,
            31,
        ],
        "analytics.churn.risk": [
            0.52,
            0.55,
            0.58,
            0.6,
            0.63,
            0.66,
            0.69,
            0.71,
            0.74,
            0.76,
            0.78,
            0.79,
            0.8,
            0.8,
            0.81,
            0.81,
            0.82,
            0.82,
            0.82,
            0.83,
            0.83,
            0.83,
            0.84,
            0.84,
        ],
    }
    for metric, values in series.items():
        if MetricPoint.objects.filter(tenant=tenant, metric=metric).exists():
            report.note(f"metric {metric!r}: has datapoints, left as they are", created=False)
            continue
        points = [(hour - timedelta(hours=len(values) - 1 - i), float(v)) for i, v in enumerate(values)]
        metric_points_write(tenant=tenant, metric=metric, points=points)
        report.note(f"metric {metric!r}: {len(points)} hourly points written", created=True)


def seed_demo(
    *, tenant_id: str, tenant_name: str, tenant_slug: str | None = None, now: datetime | None = None
) -> SeedReport:
    now = now or timezone.now()
    report = SeedReport()
    with transaction.atomic():
        tenant = _ensure_tenant(report, tenant_id=tenant_id, name=tenant_name, slug=tenant_slug)
        _ensure_widget(report, tenant, now)
        rules = _ensure_rules(report, tenant, now)
        _ensure_example_alerts(report, rules, now)
        _ensure_usage(report, tenant, now)
        _ensure_metric_history(report, tenant, now)
    return report
