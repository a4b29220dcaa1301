"""A rule that names its own channels: its alerts go there, and only there."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.channel_messages import new_webhook_secret
from alerts.models import Alert, Channel, Delivery
from alerts.services import alert_acknowledge, alert_resolve
from proactive.engine.runner import evaluate_rules
from proactive.models import TriggerRule
from tests.factories import MetricPointFactory, TriggerRuleFactory

ALL_EVENTS = ["fired", "acknowledged", "resolved", "snoozeEnded"]


def channel(tenant, name, **fields):
    values = {
        "kind": "webhook",
        "target": "https://hooks.example.com/" + name,
        "secret": new_webhook_secret(),
        "events": ALL_EVENTS,
        **fields,
    }
    return Channel.objects.create(tenant=tenant, name=name, **values)


def breaching_rule(tenant, name, severity="warning", channels=()):
    rule = TriggerRuleFactory(
        tenant=tenant, name=name, type="metric_threshold", metric=name, threshold=5, severity=severity
    )
    rule.channels.set(channels)
    MetricPointFactory(tenant=tenant, metric=name, timestamp=timezone.now() - timedelta(minutes=1), value=9)
    return rule


def routed(alert):
    return sorted(Delivery.objects.filter(alert=alert).values_list("channel__name", "event"))


@pytest.mark.django_db
class TestTheEngineRoutesToTheRulesChannels:
    def test_a_rule_with_channels_reaches_only_those_and_a_rule_without_reaches_all(self, tenant):
        ops = channel(tenant, "ops")
        pager = channel(tenant, "pager", min_severity="critical")
        channel(tenant, "everything")
        named = breaching_rule(tenant, "named", channels=[ops, pager])
        unnamed = breaching_rule(tenant, "unnamed")

        report = evaluate_rules(rule_ids=[named.pk, unnamed.pk])

        assert report.alerts_created == 2
        named_alert, unnamed_alert = Alert.objects.get(rule=named), Alert.objects.get(rule=unnamed)
        assert named_alert.channel_ids == sorted([ops.pk, pager.pk])
        # The pager's own minimum severity still applies to a warning rule that names it.
        assert routed(named_alert) == [("ops", "fired")]
        assert routed(unnamed_alert) == [("everything", "fired"), ("ops", "fired")]

    def test_later_events_follow_the_rules_channels(self, tenant):
        ops = channel(tenant, "ops")
        channel(tenant, "everything")
        rule = breaching_rule(tenant, "named", channels=[ops])
        evaluate_rules(rule_ids=[rule.pk])
        alert = Alert.objects.get(rule=rule)

        alert_acknowledge(alert=alert, actor="user:ann")
        alert_resolve(alert=alert, actor="user:ann")

        assert routed(alert) == [("ops", "acknowledged"), ("ops", "fired"), ("ops", "resolved")]

    def test_the_alert_keeps_where_it_was_sent_when_the_rule_changes(self, tenant):
        """Like its name and severity, the alert's channels are those of the rule when it fired."""
        ops, other = channel(tenant, "ops"), channel(tenant, "other")
        rule = breaching_rule(tenant, "named", channels=[ops])
        evaluate_rules(rule_ids=[rule.pk])
        rule.channels.set([other])

        alert_acknowledge(alert=Alert.objects.get(rule=rule), actor="user:ann")

        assert routed(Alert.objects.get(rule=rule)) == [("ops", "acknowledged"), ("ops", "fired")]

    def test_the_channels_of_a_chunk_are_read_in_one_query(self, tenant):
        channels = [channel(tenant, f"c{number}") for number in range(3)]
        rules = [breaching_rule(tenant, f"r{number}", channels=channels[: number % 3 + 1]) for number in range(12)]

        with CaptureQueriesContext(connection) as queries:
            evaluate_rules(rule_ids=[rule.pk for rule in rules])

        links = [q["sql"] for q in queries.captured_queries if "proactive_rulechannel" in q["sql"]]
        assert len(links) == 1
        assert Delivery.objects.count() == sum(number % 3 + 1 for number in range(12))


@pytest.mark.django_db
class TestTheApi:
    def test_create_read_and_replace_a_rules_channels(self, tenant, tenant_client):
        ops, pager = channel(tenant, "ops"), channel(tenant, "pager")

        created = tenant_client.post(
            "/triggers",
            {
                "name": "Errors",
                "type": "metric_threshold",
                "metric": "errors",
                "threshold": 5,
                "channels": [pager.pk, ops.pk, pager.pk],
            },
            format="json",
        )

        assert created.status_code == 201, created.data
        assert created.data["channels"] == sorted([ops.pk, pager.pk])
        rule_id = created.data["id"]
        assert tenant_client.get(f"/triggers/{rule_id}").data["channels"] == sorted([ops.pk, pager.pk])
        assert tenant_client.patch(f"/triggers/{rule_id}", {"name": "Renamed"}, format="json").data["channels"] == (
            sorted([ops.pk, pager.pk])
        )  # not sent: unchanged
        emptied = tenant_client.patch(f"/triggers/{rule_id}", {"channels": []}, format="json")
        assert emptied.status_code == 200 and emptied.data["channels"] == []
        assert TriggerRule.objects.get(pk=rule_id).channels.count() == 0

    @pytest.mark.parametrize("whose", ["other tenant's", "missing"])
    def test_a_channel_not_of_the_tenant_is_a_400_naming_it_and_changes_nothing(
        self, tenant, other_tenant, tenant_client, whose
    ):
        ops = channel(tenant, "ops")
        foreign_id = channel(other_tenant, "theirs").pk if whose == "other tenant's" else 999_999
        rule = TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=1)
        rule.channels.set([ops])

        created = tenant_client.post(
            "/triggers",
            {"name": "X", "type": "metric_threshold", "metric": "m", "threshold": 1, "channels": [foreign_id]},
            format="json",
        )
        patched = tenant_client.patch(
            f"/triggers/{rule.pk}", {"name": "Renamed", "channels": [ops.pk, foreign_id]}, format="json"
        )

        for response in (created, patched):
            assert response.status_code == 400
            assert response.json()["detail"]["channels"] == [
                f"No channel with id {foreign_id} in this tenant (see GET /channels)."
            ]
        assert TriggerRule.objects.filter(tenant=tenant).count() == 1
        rule.refresh_from_db()
        assert rule.name != "Renamed" and list(rule.channels.all()) == [ops]

    def test_channels_must_be_a_list_of_ids(self, tenant, tenant_client):
        response = tenant_client.post(
            "/triggers",
            {"name": "X", "type": "metric_threshold", "metric": "m", "threshold": 1, "channels": ["ops"]},
            format="json",
        )

        assert response.status_code == 400 and "channels" in response.json()["detail"]

    def test_the_list_reads_every_rules_channels_in_one_query(self, tenant, tenant_client):
        ops, pager = channel(tenant, "ops"), channel(tenant, "pager")
        for number in range(5):
            named = [pager, ops] if number % 2 else [ops] if number else []
            TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=number).channels.set(named)

        with CaptureQueriesContext(connection) as queries:
            response = tenant_client.get("/triggers")

        assert [rule["channels"] for rule in response.json()["results"]] == [  # newest first, ids ascending
            [ops.pk],
            [ops.pk, pager.pk],
            [ops.pk],
            [ops.pk, pager.pk],
            [],
        ]
        reading = [q["sql"] for q in queries.captured_queries if "proactive_rulechannel" in q["sql"]]
        assert len(reading) == 1
        if connection.vendor == "postgresql":  # in the rules' own query, not a prefetch of its own
            assert 'FROM "proactive_triggerrule"' in reading[0]

    def test_a_draft_backtest_accepts_channels_and_they_change_nothing(self, tenant, tenant_client):
        ops = channel(tenant, "ops")
        MetricPointFactory(tenant=tenant, metric="m", timestamp=timezone.now() - timedelta(hours=2), value=9)
        draft = {"name": "X", "type": "metric_threshold", "metric": "m", "threshold": 5, "days": 1}

        named = tenant_client.post("/triggers/backtest", {**draft, "channels": [ops.pk]}, format="json")
        unnamed = tenant_client.post("/triggers/backtest", draft, format="json")

        assert named.status_code == 200, named.json()
        assert named.json()["alertCount"] == 1

        def decided(body):  # what does not move with the minute the request came in
            return (
                body["alertCount"],
                [(alert["openedAt"], alert["evidence"]) for alert in body["alerts"]],
                body["flaps"],
            )

        assert decided(named.json()) == decided(unnamed.json())


@pytest.mark.django_db
class TestTheAdmin:
    def form(self, staff, path):
        return staff.get(path).context["adminform"].form

    def test_a_saved_rules_form_offers_only_its_tenants_channels(self, tenant, other_tenant, staff):
        ops = channel(tenant, "ops")
        channel(other_tenant, "theirs")
        rule = TriggerRuleFactory(tenant=tenant, type="metric_threshold", metric="m", threshold=1)

        form = self.form(staff, f"/admin/proactive/triggerrule/{rule.pk}/change/")

        assert list(form.fields["notify_channels"].queryset) == [ops]
        assert form.fields["notify_channels"].initial == []

    def test_the_admin_saves_channels_through_the_service_and_refuses_another_tenants(
        self, tenant, other_tenant, staff
    ):
        ops, theirs = channel(tenant, "ops"), channel(other_tenant, "theirs")
        base = {
            "tenant": tenant.pk,
            "name": "Errors",
            "type": "metric_threshold",
            "severity": "warning",
            "enabled": "on",
            "metric": "errors",
            "threshold": "5",
            "window_days": "1",
            "comparison": "above",
            "aggregate": "last",
            "for_evaluations": "1",
            "clear_evaluations": "1",
            "no_data": "ok",
        }

        refused = staff.post("/admin/proactive/triggerrule/add/", {**base, "notify_channels": [theirs.pk]})
        saved = staff.post("/admin/proactive/triggerrule/add/", {**base, "notify_channels": [ops.pk]})

        assert refused.status_code == 200
        assert (
            f"theirs (webhook) belongs to tenant {other_tenant.pk}, not {tenant.pk}."
            in (refused.context["adminform"].form.errors["notify_channels"][0])
        )
        assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else ""
        assert list(TriggerRule.objects.get().channels.all()) == [ops]


@pytest.mark.django_db
class TestANamedChannelStays:
    def test_a_channel_a_rule_names_is_not_deleted_until_the_rule_lets_go(self, tenant, tenant_client):
        ops = channel(tenant, "ops")
        rule = breaching_rule(tenant, "checkout", channels=[ops])

        refused = tenant_client.delete(f"/channels/{ops.pk}")

        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            "The channel 'ops' is named by 1 rule(s): checkout. Remove it from them first "
            "(PATCH /triggers/{id} channels)."
        )
        assert Channel.objects.filter(pk=ops.pk).exists() and list(rule.channels.all()) == [ops]
        assert tenant_client.patch(f"/triggers/{rule.pk}", {"channels": []}, format="json").status_code == 200
        assert tenant_client.delete(f"/channels/{ops.pk}").status_code == 204

    def test_the_admin_shows_the_rule_that_keeps_a_channel(self, tenant, staff):
        ops = channel(tenant, "ops")
        rule = breaching_rule(tenant, "checkout", channels=[ops])

        page = staff.post(f"/admin/alerts/channel/{ops.pk}/delete/", {"post": "yes"}).content.decode()

        assert Channel.objects.filter(pk=ops.pk).exists()
        assert "would require deleting the following protected related objects" in page
        assert f"rule {rule.pk} → channel {ops.pk}" in page

    def test_the_engine_ignores_a_link_to_another_tenants_channel(self, tenant, other_tenant):
        """Only the services write links, and they check the tenant; the engine checks again."""
        from proactive.models import RuleChannel

        theirs = channel(other_tenant, "theirs")
        rule = breaching_rule(tenant, "named")
        RuleChannel.objects.create(rule=rule, channel=theirs)

        evaluate_rules(rule_ids=[rule.pk])

        assert Alert.objects.get(rule=rule).channel_ids == [] and not Delivery.objects.exists()

    def test_the_api_never_shows_a_link_to_another_tenants_channel(self, tenant, other_tenant, tenant_client):
        from proactive.models import RuleChannel

        ops, theirs = channel(tenant, "ops"), channel(other_tenant, "theirs")
        rule = breaching_rule(tenant, "named", channels=[ops])
        RuleChannel.objects.create(rule=rule, channel=theirs)  # only a hand in the database could write it

        assert tenant_client.get(f"/triggers/{rule.pk}").json()["channels"] == [ops.pk]
        assert tenant_client.get("/triggers").json()["results"][0]["channels"] == [ops.pk]
