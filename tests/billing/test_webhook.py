import json
import logging
import time
from datetime import UTC, date, datetime
from io import StringIO

import pytest
import stripe
from django.core.management import call_command
from django.db import connection
from django.test import Client

from billing.models import BillingEvent, BillingUsage, UsageSnapshot
from billing.services.usage import UsageDelta, usage_apply
from tests.concurrency import run_concurrently
from tests.factories import StaffUserFactory, TenantFactory

SECRET = "whsec_test_secret"
CREATED = int(datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp())


def usage_event(event_id="evt_1", tenant_id="acme", type="invoice.created", created=CREATED, **metadata):
    metadata = {"tenantId": tenant_id, **metadata} if tenant_id else metadata
    return {"id": event_id, "type": type, "created": created, "data": {"object": {"metadata": metadata}}}


def deliver(client, event, *, secret=SECRET, timestamp=None, body=None, header=True):
    payload = body if body is not None else json.dumps(event)
    headers = {}
    if header:
        headers["HTTP_STRIPE_SIGNATURE"] = stripe.WebhookSignature.generate_signature_header(
            payload, secret, timestamp=timestamp
        )
    return client.post("/billing/webhook", data=payload, content_type="application/json", **headers)


def totals(model=BillingUsage, tenant_id="acme"):
    return list(
        model.objects.filter(tenant_id=tenant_id)
        .order_by("day")
        .values_list("day", "tokens_used", "tasks_executed", "alerts_triggered", "active_widgets")
    )


pytestmark = pytest.mark.django_db


def test_signed_event_is_recorded_and_applied_to_both_tables(client, tenant):
    event = usage_event(tokensUsed="120", tasksExecuted="3", activeWidgets="1")

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "id": "evt_1", "outcome": "applied", "duplicate": False, "reason": ""}
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 120, 3, 0, 1)]
    stored = BillingEvent.objects.get()
    assert (stored.type, stored.tenant_id, stored.usage_day, stored.payload) == (
        "invoice.created",
        "acme",
        date(2026, 11, 26),
        event,
    )
    assert stored.deltas == {"tokensUsed": 120, "tasksExecuted": 3, "activeWidgets": 1}


def test_usage_date_in_metadata_wins_over_created(client, tenant):
    deliver(client, usage_event(tokensUsed="5", usageDate="2026-11-20"))

    assert totals() == [(date(2026, 11, 20), 5, 0, 0, 0)]


def test_the_tenant_can_be_found_by_stripe_customer_id(client, db):
    TenantFactory(id="acme", stripe_customer_id="cus_123")
    event = {
        "id": "evt_c",
        "type": "invoice.paid",
        "created": CREATED,
        "data": {"object": {"customer": "cus_123", "metadata": {"tokensUsed": "7"}}},
    }

    assert deliver(client, event).json()["outcome"] == "applied"
    assert totals() == [(date(2026, 11, 26), 7, 0, 0, 0)]


def test_redelivery_is_200_and_changes_nothing(client, tenant):
    event = usage_event(tokensUsed="10")
    deliver(client, event)

    again = deliver(client, event)

    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["outcome"] == "applied"
    assert totals() == [(date(2026, 11, 26), 10, 0, 0, 0)]
    assert BillingEvent.objects.count() == 1


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "stale timestamp", "tampered body", "missing header", "garbage header"],
)
def test_bad_signature_is_400_and_nothing_is_stored(client, tenant, how):
    event = usage_event(tokensUsed="10")
    payload = json.dumps(event)
    if how == "wrong secret":
        response = deliver(client, event, secret="whsec_wrong")
    elif how == "stale timestamp":
        response = deliver(client, event, timestamp=int(time.time()) - 301)
    elif how == "tampered body":
        header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
        tampered = payload.replace('"10"', '"10000"')
        response = client.post(
            "/billing/webhook", data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
    elif how == "missing header":
        response = deliver(client, event, header=False)
    else:
        response = client.post(
            "/billing/webhook", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=abc,v1=nope"
        )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature"
    assert list(response.json()["detail"]) == ["Stripe-Signature"]
    assert not BillingEvent.objects.exists()
    assert totals() == []


def test_a_timestamp_inside_the_tolerance_is_accepted(client, tenant):
    response = deliver(client, usage_event(tokensUsed="1"), timestamp=int(time.time()) - 290)

    assert response.json()["outcome"] == "applied"


def test_unknown_tenant_is_kept_unmatched_and_applied_later_by_the_command(client, db):
    response = deliver(client, usage_event(tenant_id="later-co", tokensUsed="40"))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unmatched"

    TenantFactory(id="later-co")
    out = StringIO()
    call_command("replay_billing_events", stdout=out)

    assert "evt_1: applied" in out.getvalue()
    assert totals(tenant_id="later-co") == [(date(2026, 11, 26), 40, 0, 0, 0)]
    call_command("replay_billing_events", stdout=StringIO())
    assert totals(tenant_id="later-co") == [(date(2026, 11, 26), 40, 0, 0, 0)]


def test_replay_from_the_admin(client, db):
    deliver(client, usage_event(tenant_id="later-co", tokensUsed="40"))
    TenantFactory(id="later-co")
    staff = Client()
    staff.force_login(StaffUserFactory())

    listing = staff.get("/admin/billing/billingevent/?outcome__exact=unmatched")
    staff.post(
        "/admin/billing/billingevent/", {"action": "replay_events", "_selected_action": [BillingEvent.objects.get().pk]}
    )

    assert "evt_1" in listing.content.decode()
    assert BillingEvent.objects.get().outcome == "applied"
    assert "later-co" in staff.get("/admin/billing/billingusage/").content.decode()
    assert "later-co" in staff.get("/admin/billing/usagesnapshot/").content.decode()


def test_a_delta_below_zero_is_rejected_with_the_reason(client, tenant):
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=date(2026, 11, 26), tokens_used=5)])

    response = deliver(client, usage_event(tokensUsed="-6", tasksExecuted="2"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    assert response.json()["reason"] == "Would take usage below zero on 2026-11-26: tokensUsed 5 -6."
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 5, 0, 0, 0)]
    assert BillingEvent.objects.get().outcome == "rejected"


def test_a_non_numeric_delta_is_rejected(client, tenant):
    response = deliver(client, usage_event(tokensUsed="12abc", tasksExecuted="1.5"))

    assert response.json()["outcome"] == "rejected"
    assert response.json()["reason"] == (
        "tokensUsed must be a whole number, got '12abc'; tasksExecuted must be a whole number, got '1.5'"
    )
    assert totals() == []


@pytest.mark.parametrize("event_type", ["invoice.paid", "customer.subscription.updated"])
def test_non_usage_events_are_recorded(client, tenant, event_type):
    event = {"id": "evt_n", "type": event_type, "created": CREATED, "data": {"object": {"customer": "cus_x"}}}

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "no_usage"
    assert BillingEvent.objects.get().type == event_type
    assert totals() == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "x"}, "id"),
        ({"id": "evt_1"}, "type"),
        ({"id": "evt_1", "type": "x", "created": "noon"}, "created"),
        ({"id": "evt_1", "type": "x", "data": []}, "data"),
    ],
)
def test_malformed_event_is_400_and_not_stored(client, tenant, event, field):
    response = deliver(client, event)

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not BillingEvent.objects.exists()


def test_signed_garbage_is_a_parse_error(client, tenant):
    response = deliver(client, None, body="{not json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


@pytest.mark.parametrize("debug", [True, False])
def test_without_a_secret_no_event_is_accepted_also_in_debug(client, tenant, settings, debug):
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.DEBUG = debug

    unsigned = deliver(client, usage_event(tokensUsed="3"), header=False)
    signed = deliver(client, usage_event("evt_2", tokensUsed="3"), secret="whsec_anything")

    for response in (unsigned, signed):
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature"
        assert "no STRIPE_WEBHOOK_SECRET" in response.json()["detail"]["Stripe-Signature"][0]
    assert not BillingEvent.objects.exists()


def test_unsigned_events_only_with_the_insecure_setting_in_debug(client, tenant, settings, caplog):
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED = True
    settings.DEBUG = True

    with caplog.at_level(logging.WARNING, logger="billing.apis"):
        response = deliver(client, usage_event(tokensUsed="3"), header=False)

    assert response.json()["outcome"] == "applied"
    assert "INSECURE: accepting a billing event WITHOUT verifying it" in caplog.text


def test_the_insecure_setting_does_nothing_without_debug(client, tenant, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED = True
    settings.DEBUG = False

    response = deliver(client, usage_event(tokensUsed="3"), header=False)

    assert response.status_code == 400
    assert not BillingEvent.objects.exists()


def test_the_insecure_setting_never_skips_a_configured_secret(client, tenant, settings):
    settings.STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED = True
    settings.DEBUG = True

    response = deliver(client, usage_event(tokensUsed="3"), header=False)

    assert response.status_code == 400
    assert not BillingEvent.objects.exists()


@pytest.mark.parametrize(
    ("offset", "accepted"), [(290, True), (310, False), (3600, False), (-290, True), (-310, False)]
)
def test_a_signature_is_fresh_in_both_directions(client, tenant, offset, accepted):
    response = deliver(client, usage_event(tokensUsed="1"), timestamp=int(time.time()) + offset)

    if accepted:
        assert response.status_code == 200 and response.json()["outcome"] == "applied"
    else:
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature"
        assert "Timestamp outside the tolerance zone" in response.json()["detail"]["Stripe-Signature"][0]
        assert not BillingEvent.objects.exists()


def _deliver_concurrently(events):
    return run_concurrently([lambda event=event: deliver(Client(), event).status_code for event in events])


def _today():
    return datetime.now(UTC).date()


# A past day's change is announced to the usage hooks in the statement's transaction; today's is
# the statement alone, in autocommit.
DAYS = pytest.mark.parametrize("day", [lambda: date(2026, 11, 26), _today], ids=["past day", "today"])


@DAYS
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_give_exact_totals(day):
    assert connection.vendor == "postgresql"
    TenantFactory(id="acme")
    usage_date = day().isoformat()
    events = [
        usage_event(event_id=f"evt_{n}", tokensUsed=str(n + 1), tasksExecuted="1", usageDate=usage_date)
        for n in range(20)
    ]

    statuses, errors = _deliver_concurrently(events)

    assert errors == [] and statuses == [200] * 20
    expected = [(day(), sum(range(1, 21)), 20, 0, 0)]
    assert totals() == totals(UsageSnapshot) == expected
    assert BillingEvent.objects.filter(outcome="applied").count() == 20


@DAYS
@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_is_applied_once(day):
    TenantFactory(id="acme")
    event = usage_event(event_id="evt_same", tokensUsed="10", usageDate=day().isoformat())

    statuses, errors = _deliver_concurrently([event] * 10)

    assert errors == [] and statuses == [200] * 10
    assert totals() == totals(UsageSnapshot) == [(day(), 10, 0, 0, 0)]
    assert BillingEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_todays_usage_is_one_statement_in_autocommit_and_a_refused_one_falls_back():
    from django.test.utils import CaptureQueriesContext

    from proactive.models import MetricWake

    TenantFactory(id="acme")
    today = _today()
    with CaptureQueriesContext(connection) as queries:
        response = deliver(Client(), usage_event(event_id="evt_t", tokensUsed="5", usageDate=today.isoformat()))

    assert response.json()["outcome"] == "applied"
    assert [q["sql"].split()[0] for q in queries.captured_queries if not q["sql"].startswith("PREPARE")] == ["EXECUTE"]
    assert totals() == totals(UsageSnapshot) == [(today, 5, 0, 0, 0)]
    assert not MetricWake.objects.exists()  # today's running count wakes no one

    top = 2**63 - 10
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=today, tokens_used=top)])
    big = deliver(Client(), usage_event(event_id="evt_big", tokensUsed="100", usageDate=today.isoformat()))

    assert (big.json()["outcome"], big.json()["reason"]) == ("rejected", f"Would take usage out of range on {today}.")
    assert totals() == totals(UsageSnapshot) == [(today, top + 5, 0, 0, 0)]
    assert BillingEvent.objects.get(event_id="evt_big").outcome == "rejected"


def test_an_event_is_stored_once_as_what_became_of_it_in_one_statement(client, tenant):
    from django.test.utils import CaptureQueriesContext

    event = usage_event(event_id="evt_q", tokensUsed="7")
    with CaptureQueriesContext(connection) as queries:
        assert deliver(client, event).json()["outcome"] == "applied"
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]

    # The tenant's lookup, the event's insert and both usage upserts are one statement, prepared
    # once per database session (the test's own transaction makes the service's a savepoint);
    # then, the day being past, the usage hook's wake-ups for the rules reading usage metrics.
    if statements[0].startswith("PREPARE"):
        assert "billing_billingevent" in statements.pop(0)
    assert statements[0].startswith("EXECUTE billing_event_receive_")
    assert all(sql.startswith('INSERT INTO "proactive_metricwake"') for sql in statements[1:]), statements[1:]
    stored = BillingEvent.objects.get()
    assert (stored.outcome, stored.tenant_id, stored.applied_at is not None, stored.deltas, stored.payload) == (
        "applied",
        "acme",
        True,
        {"tokensUsed": 7},
        event,
    )
    assert (stored.usage_day, stored.created, stored.received_at is not None) == (
        date(2026, 11, 26),
        datetime.fromtimestamp(CREATED, tz=UTC),
        True,
    )
    with CaptureQueriesContext(connection) as again:
        assert deliver(client, event).json() == {
            "received": True,
            "id": "evt_q",
            "outcome": "applied",
            "duplicate": True,
            "reason": "",
        }
    assert not any(q["sql"].startswith(("UPDATE", "DELETE")) for q in again.captured_queries)
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 7, 0, 0, 0)]


def test_the_tenant_id_wins_and_an_unknown_one_falls_back_to_the_customer(client, db):
    TenantFactory(id="acme", stripe_customer_id="cus_acme")
    TenantFactory(id="other", stripe_customer_id="cus_other")

    def event(event_id, tenant_id):
        metadata = {"tokensUsed": "3", **({"tenantId": tenant_id} if tenant_id else {})}
        return {
            "id": event_id,
            "type": "invoice.paid",
            "created": CREATED,
            "data": {"object": {"customer": {"id": "cus_other"}, "metadata": metadata}},
        }

    assert deliver(client, event("evt_id", "acme")).json()["outcome"] == "applied"
    assert deliver(client, event("evt_unknown", "nobody")).json()["outcome"] == "applied"
    assert deliver(client, event("evt_blank", "")).json()["outcome"] == "applied"

    assert dict(BillingEvent.objects.values_list("event_id", "tenant_id")) == {
        "evt_id": "acme",
        "evt_unknown": "other",
        "evt_blank": "other",
    }
    assert totals(tenant_id="acme") == [(date(2026, 11, 26), 3, 0, 0, 0)]
    assert totals(tenant_id="other") == [(date(2026, 11, 26), 6, 0, 0, 0)]


@pytest.mark.parametrize(
    ("usage", "outcome", "reason"),
    [
        ({"tokensUsed": "4"}, "unmatched", "No tenant with this metadata.tenantId or Stripe customer id (yet)."),
        ({}, "no_usage", ""),
        ({"tokensUsed": "lots"}, "rejected", "tokensUsed must be a whole number, got 'lots'"),
    ],
)
def test_without_a_tenant_the_event_is_stored_as_its_usage_says(client, db, usage, outcome, reason):
    response = deliver(client, usage_event(event_id="evt_nobody", tenant_id="nobody", **usage))

    assert response.json() == {
        "received": True,
        "id": "evt_nobody",
        "outcome": outcome,
        "duplicate": False,
        "reason": reason,
    }
    stored = BillingEvent.objects.get()
    assert (stored.outcome, stored.reason, stored.tenant_id, stored.applied_at) == (outcome, reason, None, None)
    assert not BillingUsage.objects.exists() and not UsageSnapshot.objects.exists()


def test_a_counter_that_would_leave_its_range_is_rejected_and_nothing_changes(client, tenant):
    top = 2**63 - 10
    usage_apply(deltas=[UsageDelta(tenant_id="acme", day=date(2026, 11, 26), tokens_used=top)])

    response = deliver(client, usage_event(event_id="evt_big", tokensUsed="100", tasksExecuted="1"))

    assert (response.status_code, response.json()["outcome"]) == (200, "rejected")
    assert response.json()["reason"] == "Would take usage out of range on 2026-11-26."
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), top, 0, 0, 0)]
    stored = BillingEvent.objects.get()
    assert (stored.event_id, stored.outcome, stored.applied_at) == ("evt_big", "rejected", None)


def test_a_past_day_of_usage_wakes_the_usage_metrics_rules_in_the_same_transaction(client, tenant):
    from proactive.models import MetricWake

    deliver(client, usage_event(event_id="evt_past", tokensUsed="5", usageDate="2026-11-20"))

    assert MetricWake.objects.filter(tenant_id="acme", metric__startswith="usage.").exists()


def test_a_rejected_delta_leaves_the_event_rejected_and_usage_unchanged(client, tenant):
    deliver(client, usage_event(event_id="evt_a", tokensUsed="5"))

    rejected = deliver(client, usage_event(event_id="evt_b", tokensUsed="-6", tasksExecuted="1"))

    assert rejected.json()["outcome"] == "rejected"
    assert "tokensUsed 5 -6" in rejected.json()["reason"]
    stored = BillingEvent.objects.get(event_id="evt_b")
    assert (stored.outcome, stored.applied_at, stored.deltas) == (
        "rejected",
        None,
        {"tokensUsed": -6, "tasksExecuted": 1},
    )
    assert totals() == [(date(2026, 11, 26), 5, 0, 0, 0)]
    again = deliver(client, usage_event(event_id="evt_b", tokensUsed="-6", tasksExecuted="1"))
    assert (again.json()["duplicate"], again.json()["outcome"]) == (True, "rejected")


def test_a_negative_correction_that_stays_above_zero_is_applied(client, tenant):
    deliver(client, usage_event(event_id="evt_up", tokensUsed="100", tasksExecuted="4"))

    corrected = deliver(client, usage_event(event_id="evt_fix", tokensUsed="-5"))

    assert (corrected.json()["outcome"], corrected.json()["reason"]) == ("applied", "")
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 95, 4, 0, 0)]


@pytest.mark.parametrize("tokens", ["5", "-1", None])
def test_the_answer_has_the_schema_serializer_shape(client, tenant, tokens):
    from billing.apis import BillingWebhookReceivedOutputSerializer

    event = usage_event(event_id="evt_shape", **({"tokensUsed": tokens} if tokens else {}))
    for _ in range(2):  # stored, then a duplicate
        answer = deliver(client, event).json()
        serializer = BillingWebhookReceivedOutputSerializer(data=answer)
        assert serializer.is_valid(), serializer.errors
        assert answer == BillingWebhookReceivedOutputSerializer(serializer.validated_data).data


def test_a_session_that_lost_the_prepared_statement_falls_back_then_prepares_it_again(client, tenant):
    from django.test.utils import CaptureQueriesContext

    deliver(client, usage_event(event_id="evt_1", tokensUsed="1"))  # prepared in this session
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would

    with CaptureQueriesContext(connection) as lost:
        assert deliver(client, usage_event(event_id="evt_2", tokensUsed="2")).json()["outcome"] == "applied"
    with CaptureQueriesContext(connection) as again:
        assert deliver(client, usage_event(event_id="evt_3", tokensUsed="3")).json()["outcome"] == "applied"

    assert any(q["sql"].startswith("INSERT INTO") for q in lost.captured_queries)  # the general path
    assert _prepares_and_executes(again) == ["PREPARE", "EXECUTE"]
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 6, 0, 0, 0)]
    assert BillingEvent.objects.filter(outcome="applied").count() == 3


def _prepares_and_executes(queries) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries if q["sql"].startswith(("PREPARE", "EXECUTE"))]


def test_a_session_that_has_the_statement_the_process_forgot_uses_it(client, tenant):
    from django.test.utils import CaptureQueriesContext

    from billing.services import webhook

    deliver(client, usage_event(event_id="evt_1", tokensUsed="1"))  # prepared in this session
    webhook._prepared.pop(connection.connection)  # as after a pooler handed this session to a new process

    with CaptureQueriesContext(connection) as exists:
        assert deliver(client, usage_event(event_id="evt_2", tokensUsed="2")).json()["outcome"] == "applied"
    with CaptureQueriesContext(connection) as after:
        assert deliver(client, usage_event(event_id="evt_3", tokensUsed="3")).json()["outcome"] == "applied"

    assert _prepares_and_executes(exists) == ["PREPARE"]  # refused: it exists; the general path took it
    assert _prepares_and_executes(after) == ["EXECUTE"]
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 6, 0, 0, 0)]


def test_a_statement_planned_before_a_migration_changed_its_columns_is_prepared_again(client, tenant):
    from django.test.utils import CaptureQueriesContext

    deliver(client, usage_event(event_id="evt_1", tokensUsed="1"))  # prepared in this session
    with connection.cursor() as cursor:  # a migration: a column the statement returns changes type
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction holds deferred checks
        cursor.execute("ALTER TABLE billing_billingevent ALTER COLUMN outcome TYPE text")

    with CaptureQueriesContext(connection) as changed:
        assert deliver(client, usage_event(event_id="evt_2", tokensUsed="2")).json()["outcome"] == "applied"
    with CaptureQueriesContext(connection) as again:
        assert deliver(client, usage_event(event_id="evt_3", tokensUsed="3")).json()["outcome"] == "applied"

    assert _prepares_and_executes(changed) == ["EXECUTE"]  # "cached plan must not change result type"
    assert [
        q["sql"].split()[0] for q in again.captured_queries if q["sql"].startswith(("DEALLOCATE", "PREPARE", "EXECUTE"))
    ] == [
        "DEALLOCATE",
        "PREPARE",
        "EXECUTE",
    ]
    assert totals() == totals(UsageSnapshot) == [(date(2026, 11, 26), 6, 0, 0, 0)]


@pytest.mark.parametrize(
    ("clock_at_the_hooks", "wakes"),
    [
        (datetime(2026, 11, 26, 23, 59, 59, 900000, tzinfo=UTC), False),  # still today: not announced
        (datetime(2026, 11, 27, 0, 0, 0, 100000, tzinfo=UTC), True),  # committed after midnight
    ],
)
def test_todays_usage_written_in_the_days_last_minute_is_announced_if_the_day_ended_meanwhile(
    tenant, monkeypatch, clock_at_the_hooks, wakes
):
    from django.utils import timezone

    from billing.services.webhook import billing_event_receive
    from proactive.models import MetricWake

    late = datetime(2026, 11, 26, 23, 59, 59, 500000, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: clock_at_the_hooks)  # the clock when the hooks run

    received = billing_event_receive(event=usage_event(tokensUsed="5", created=int(late.timestamp())), now=late)

    assert received.event.outcome == "applied"
    assert MetricWake.objects.filter(tenant_id="acme", metric__startswith="usage.").exists() is wakes
