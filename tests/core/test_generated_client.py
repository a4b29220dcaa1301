"""
A client generated from the live /api/schema by openapi-python-client, used against a running
server: if the document and the server disagree, the generated client fails to parse, or meets a
status it was not told about (raise_on_unexpected_status).
"""

import importlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import stripe
from django.conf import settings

from tests.factories import TenantFactory, TriggerRuleFactory, issue_api_key, raise_alert

PACKAGE = "proactive_insights_api_client"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def generated(live_server, tmp_path_factory):
    """The client package, generated from the schema the running server serves."""
    schema = httpx.get(f"{live_server.url}/api/schema", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200
    workdir = tmp_path_factory.mktemp("generated-client")
    (workdir / "schema.json").write_bytes(schema.content)
    (workdir / "config.yaml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            "schema.json",
            "--meta",
            "none",
            "--config",
            "config.yaml",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


def submodule(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


def endpoint(tag: str, operation_id: str):
    """The generated module of one operation, e.g. endpoint("alerts", "alerts_list").sync(...)."""
    return submodule(f"api.{tag}.{operation_id}")


@pytest.fixture
def tenant_api(generated, live_server):
    tenant = TenantFactory(id="acme", name="Acme Inc", slug="acme-inc")
    return generated.AuthenticatedClient(
        base_url=live_server.url, token=issue_api_key(tenant), raise_on_unexpected_status=True
    )


@pytest.fixture
def admin_api(generated, live_server):
    return generated.Client(
        base_url=live_server.url,
        headers={"X-Admin-Key": settings.INTERNAL_ADMIN_API_KEY},
        raise_on_unexpected_status=True,
    )


def cursor_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["cursor"][0]


def test_rules_from_create_to_delete(generated, tenant_api):
    models = submodule("models")

    created = endpoint("triggers", "triggers_create").sync_detailed(
        client=tenant_api,
        body=models.TriggerRuleInput(
            name="MQL spike", type_=models.RuleTypeEnum.METRIC_THRESHOLD, metric="analytics.mql.delta", threshold=25
        ),
    )
    rule = created.parsed
    listed = endpoint("triggers", "triggers_list").sync(
        client=tenant_api, type_=models.TriggersListType.METRIC_THRESHOLD
    )
    fetched = endpoint("triggers", "triggers_retrieve").sync(client=tenant_api, rule_id=rule.id)
    patched = endpoint("triggers", "triggers_partial_update").sync(
        client=tenant_api, rule_id=rule.id, body=models.PatchedTriggerRuleInput(threshold=30.5, enabled=False)
    )
    deleted = endpoint("triggers", "triggers_destroy").sync_detailed(client=tenant_api, rule_id=rule.id)
    gone = endpoint("triggers", "triggers_retrieve").sync_detailed(client=tenant_api, rule_id=rule.id)

    assert created.status_code == 201 and isinstance(rule, models.TriggerRule)
    assert (rule.name, rule.type_, rule.threshold, rule.window_days) == (
        "MQL spike",
        models.RuleTypeEnum.METRIC_THRESHOLD,
        25.0,
        30,
    )
    assert [item.id for item in listed.results] == [rule.id] and listed.next_ is None
    assert fetched.created_at == rule.created_at
    assert (patched.threshold, patched.enabled, patched.next_run_at) == (30.5, False, None)
    assert (rule.schedule_description, rule.next_occurrences) == (None, None)
    assert deleted.status_code == 204
    assert gone.status_code == 404 and gone.parsed.error == "not_found"


def test_a_bad_rule_is_a_400_whose_detail_names_each_field(generated, tenant_api):
    models = submodule("models")

    response = endpoint("triggers", "triggers_create").sync_detailed(
        client=tenant_api,
        body=models.TriggerRuleInput(name="x", type_=models.RuleTypeEnum.SCHEDULE, schedule="61 * * * *", metric="m"),
    )

    assert response.status_code == 400
    assert isinstance(response.parsed, models.Error) and response.parsed.error == "validation_error"
    detail = response.parsed.detail.to_dict()
    assert set(detail) == {"schedule", "metric"}
    assert "minute 61 is out of range (0-59)" in detail["schedule"][0]


def test_metric_points_and_a_dry_run(generated, tenant_api):
    models = submodule("models")
    now = datetime.now(UTC).replace(microsecond=0)
    points = [models.MetricPointInput(timestamp=now - timedelta(minutes=n), value=float(10 + n)) for n in range(3)]

    written = endpoint("metrics", "metric_points_create").sync_detailed(
        client=tenant_api, metric="analytics.mql.delta", body=models.MetricPointsInput(points=points)
    )
    page = endpoint("metrics", "metric_points_list").sync(client=tenant_api, metric="analytics.mql.delta", limit=2)
    rule = endpoint("triggers", "triggers_create").sync(
        client=tenant_api,
        body=models.TriggerRuleInput(
            name="Low bar", type_=models.RuleTypeEnum.METRIC_THRESHOLD, metric="analytics.mql.delta", threshold=5
        ),
    )
    evaluation = endpoint("triggers", "triggers_evaluate").sync(
        client=tenant_api, rule_id=rule.id, body=models.EvaluateInput(dry_run=True)
    )

    assert written.status_code == 201 and written.parsed.written == 3
    assert page.metric == "analytics.mql.delta"
    assert [point.value for point in page.results] == [10.0, 11.0] and page.next_ is not None
    assert (evaluation.dry_run, evaluation.fired, evaluation.alert_id) == (True, True, None)
    assert isinstance(evaluation.evidence, models.ThresholdEvidence)
    assert (evaluation.evidence.value, evaluation.evidence.threshold) == (10.0, 5.0)


def test_alerts_across_pages_then_acknowledge_and_a_409(generated, tenant_api):
    models = submodule("models")
    tenant = TenantFactory(id="acme")
    base = datetime(2026, 11, 20, tzinfo=UTC)
    raised = [raise_alert(TriggerRuleFactory(tenant=tenant), triggered_at=base + timedelta(hours=n)) for n in range(5)]

    first = endpoint("alerts", "alerts_list").sync(client=tenant_api, limit=2)
    second = endpoint("alerts", "alerts_list").sync(client=tenant_api, limit=2, cursor=cursor_of(first.next_))
    third = endpoint("alerts", "alerts_list").sync(client=tenant_api, limit=2, cursor=cursor_of(second.next_))
    acknowledged = endpoint("alerts", "alerts_acknowledge").sync(client=tenant_api, alert_id=raised[0].pk)
    endpoint("alerts", "alerts_resolve").sync(client=tenant_api, alert_id=raised[1].pk)
    conflict = endpoint("alerts", "alerts_acknowledge").sync_detailed(client=tenant_api, alert_id=raised[1].pk)

    pages = [first, second, third]
    assert [[a.id for a in page.results] for page in pages] == [
        [raised[4].pk, raised[3].pk],
        [raised[2].pk, raised[1].pk],
        [raised[0].pk],
    ]
    assert third.next_ is None and third.previous is not None
    assert isinstance(first.results[0].payload, models.ThresholdAlertPayload)
    assert acknowledged.status == models.AlertStatusEnum.ACKNOWLEDGED
    assert [event.to for event in acknowledged.history] == [
        models.AlertStatusEnum.PENDING,
        models.AlertStatusEnum.ACKNOWLEDGED,
    ]
    assert conflict.status_code == 409
    assert (conflict.parsed.error, conflict.parsed.detail) == ("conflict", "A resolved alert cannot be acknowledged.")


def test_marketplace_and_billing(generated, tenant_api, admin_api):
    models = submodule("models")
    dashboard = models.WidgetRegisterInputDashboard.from_dict({"tile": {"title": "Revenue radar", "size": "md"}})

    registered = endpoint("marketplace", "marketplace_widgets_register").sync_detailed(
        client=admin_api,
        body=models.WidgetRegisterInput(
            slug="revenue-radar", name="Revenue Radar", version="1.0.0", dashboard=dashboard
        ),
    )
    installed = endpoint("marketplace", "marketplace_widgets_install").sync_detailed(
        client=tenant_api, slug="revenue-radar", body=models.InstallInput()
    )
    listed = endpoint("marketplace", "marketplace_widgets_list").sync(client=tenant_api)
    usage = endpoint("billing", "billing_usage").sync(client=tenant_api)
    forbidden = endpoint("marketplace", "marketplace_widgets_register").sync_detailed(
        client=tenant_api, body=models.WidgetRegisterInput(slug="other", name="Other", version="1.0.0")
    )

    assert registered.status_code == 201 and registered.parsed.active is True
    assert installed.status_code == 201 and installed.parsed.installed is True
    [widget] = listed.results
    assert (widget.slug, widget.installed, widget.enabled, widget.installed_version) == (
        "revenue-radar",
        True,
        True,
        "1.0.0",
    )
    assert usage.tenant_id == "acme" and usage.totals.active_widgets == 1
    assert len(usage.points) == 30 and usage.points[-1].active_widgets == 1
    assert forbidden.status_code == 403 and forbidden.parsed.error == "permission_denied"


def test_no_credentials_is_a_parsed_401(generated, live_server):
    response = endpoint("tenant", "tenant_current").sync_detailed(
        client=generated.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    )

    assert response.status_code == 401
    assert response.parsed.error == "not_authenticated"


def test_every_other_operation(generated, tenant_api, admin_api, live_server):
    models = submodule("models")
    tenant = TenantFactory(id="acme")
    alert = raise_alert(TriggerRuleFactory(tenant=tenant, name="Spike"))
    endpoint("marketplace", "marketplace_widgets_register").sync(
        client=admin_api, body=models.WidgetRegisterInput(slug="radar", name="Radar", version="2.1.0")
    )
    endpoint("marketplace", "marketplace_widgets_install").sync(
        client=tenant_api, slug="radar", body=models.InstallInput()
    )
    event = models.StripeEvent(
        id="evt_generated",
        type_="invoice.created",
        data=models.StripeEventData(
            object_=models.StripeEventDataObject.from_dict({"metadata": {"tenantId": "acme", "tokensUsed": "120"}})
        ),
    )
    # httpx sends the body as compact JSON: the signature is over exactly those bytes.
    sent = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    signature = stripe.WebhookSignature.generate_signature_header(sent, settings.STRIPE_WEBHOOK_SECRET)

    fetched = endpoint("alerts", "alerts_retrieve").sync(client=tenant_api, alert_id=alert.pk)
    snoozed = endpoint("alerts", "alerts_snooze").sync(
        client=tenant_api, alert_id=alert.pk, body=models.SnoozeInput(minutes=30)
    )
    notifications = endpoint("notifications", "notifications_list").sync(client=tenant_api, unread=True)
    read = endpoint("notifications", "notifications_read").sync(
        client=tenant_api, notification_id=notifications.results[0].id
    )
    widget = endpoint("marketplace", "marketplace_widgets_retrieve").sync(client=tenant_api, slug="radar")
    uninstalled = endpoint("marketplace", "marketplace_widgets_uninstall").sync_detailed(
        client=tenant_api, slug="radar"
    )
    created = endpoint("tenants", "tenants_create").sync_detailed(
        client=admin_api, body=models.TenantCreateInput(id="globex", name="Globex")
    )
    tenants = endpoint("tenants", "tenants_list").sync(client=admin_api, limit=1)
    received = endpoint("billing", "billing_webhook").sync(
        client=generated.Client(base_url=live_server.url), body=event, stripe_signature=signature
    )
    again = endpoint("billing", "billing_webhook").sync(
        client=generated.Client(base_url=live_server.url), body=event, stripe_signature=signature
    )
    health = endpoint("health", "health").sync(client=generated.Client(base_url=live_server.url))
    moved = endpoint("tenant", "tenant_update").sync(
        client=tenant_api, body=models.PatchedTenantUpdateInput(timezone="Europe/Berlin")
    )
    channel = endpoint("channels", "channels_create").sync(
        client=tenant_api,
        body=models.ChannelInput(name="Hook", kind=models.ChannelKindEnum.WEBHOOK, target="https://hooks.example/x"),
    )
    channels = endpoint("channels", "channels_list").sync(client=tenant_api)
    channel_fetched = endpoint("channels", "channels_retrieve").sync(client=tenant_api, channel_id=channel.id)
    channel_patched = endpoint("channels", "channels_partial_update").sync(
        client=tenant_api,
        channel_id=channel.id,
        body=models.PatchedChannelInput(events=[models.ChannelEventEnum.FIRED]),
    )
    raise_alert(TriggerRuleFactory(tenant=tenant, name="Routed"))
    deliveries = endpoint("deliveries", "deliveries_list").sync(client=tenant_api, channel=channel.id)
    mail = endpoint("channels", "channels_create").sync(
        client=tenant_api,
        body=models.ChannelInput(name="Mail", kind=models.ChannelKindEnum.EMAIL, target="oncall@acme.example"),
    )
    tested = endpoint("channels", "channels_test").sync(client=tenant_api, channel_id=mail.id)
    channel_deleted = endpoint("channels", "channels_destroy").sync_detailed(client=tenant_api, channel_id=channel.id)

    assert isinstance(fetched.payload, models.ThresholdAlertPayload) and fetched.payload.reason == "Spike fired."
    assert snoozed.status == models.AlertStatusEnum.SNOOZED and snoozed.snoozed_until is not None
    assert [n.alert_id for n in notifications.results] == [alert.pk]
    assert read.read is True and read.read_at is not None
    assert (widget.slug, widget.installed_version, widget.installed) == ("radar", "2.1.0", True)
    assert uninstalled.status_code == 204
    assert created.status_code == 201 and created.parsed.slug == "globex"
    assert [t.id for t in tenants.results] == ["acme"] and tenants.next_ is not None
    assert (received.outcome, received.duplicate, again.duplicate) == (models.OutcomeEnum.APPLIED, False, True)
    assert (health.status, health.checks.database) == (models.HealthStatusEnum.OK, models.HealthStatusEnum.OK)
    assert (moved.id, moved.timezone) == ("acme", "Europe/Berlin")
    assert channel.secret.startswith("whsec_") and channel.secret_hint == channel.secret[:10] + "…"
    assert [c.id for c in channels.results] == [channel.id] and channel_fetched.name == "Hook"
    assert channel_patched.events == [models.ChannelEventEnum.FIRED]
    assert [(d.channel_id, d.event, d.status) for d in deliveries.results] == [
        (channel.id, models.ChannelEventEnum.FIRED, models.DeliveryStatusEnum.PENDING)
    ]
    assert (tested.ok, tested.status_code, tested.error) == (True, 250, "")  # the test suite's email outbox
    assert mail.secret is None
    assert channel_deleted.status_code == 204


def test_backtests(generated, tenant_api):
    models = submodule("models")
    rule = endpoint("triggers", "triggers_create").sync(
        client=tenant_api,
        body=models.TriggerRuleInput(name="Weekly", type_=models.RuleTypeEnum.SCHEDULE, schedule="0 13 * * 1"),
    )

    saved = endpoint("triggers", "triggers_backtest").sync(
        client=tenant_api, rule_id=rule.id, body=models.BacktestDaysInput(days=28)
    )
    draft = endpoint("triggers", "triggers_backtest_draft").sync_detailed(
        client=tenant_api,
        body=models.TriggerRuleBacktestInput(
            name="Quiet", type_=models.RuleTypeEnum.METRIC_THRESHOLD, metric="nothing.here", threshold=1, days=7
        ),
    )

    zoned = endpoint("triggers", "triggers_create").sync(
        client=tenant_api,
        body=models.TriggerRuleInput(
            name="Berlin mornings", type_=models.RuleTypeEnum.SCHEDULE, schedule="0 9 * * 1-5", timezone="Europe/Berlin"
        ),
    )

    assert rule.schedule_description == "At 13:00, only on Monday (UTC)"
    assert len(rule.next_occurrences) == 5
    assert (rule.schedule_timezone, rule.next_occurrences_local) == ("UTC", rule.next_occurrences)
    assert (zoned.schedule_timezone, zoned.schedule_description) == (
        "Europe/Berlin",
        "At 09:00, Monday through Friday (Europe/Berlin)",
    )
    assert zoned.next_occurrences_local == zoned.next_occurrences  # the same instants, with Berlin's offset
    assert {(moment.hour, moment.utcoffset() - timedelta(hours=1)) for moment in zoned.next_occurrences_local} <= {
        (9, timedelta(0)),
        (9, timedelta(hours=1)),
    }
    assert all(
        (moment.weekday(), moment.hour, moment.utcoffset()) == (0, 13, timedelta(0)) for moment in rule.next_occurrences
    )
    assert saved.firing_count == 4 and len(saved.alerts) == 1 and saved.alerts[0].resolved_at is None
    assert isinstance(saved.alerts[0].evidence, models.ScheduleEvidence)
    assert draft.status_code == 200 and draft.parsed.firing_count == 0 and draft.parsed.points_read == 0
