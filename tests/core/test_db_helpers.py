"""core.db: the `__any` lookup and update_rows keeping what the caller did not read."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.db import update_rows
from proactive.models import TriggerRule
from tests.factories import TriggerRuleFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_any_sends_the_ids_as_one_array_and_matches_what_in_matches(tenant):
    rules = [TriggerRuleFactory(tenant=tenant, name=f"r{n}") for n in range(5)]
    wanted = [rules[1].pk, rules[3].pk, 10**12]

    with CaptureQueriesContext(connection) as queries:
        found = sorted(TriggerRule.objects.filter(pk__any=wanted).values_list("pk", flat=True))

    assert found == sorted(TriggerRule.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    assert found == [rules[1].pk, rules[3].pk]
    assert "= ANY(" in queries.captured_queries[0]["sql"]
    assert list(TriggerRule.objects.filter(pk__any=[])) == []


def test_update_rows_keeps_a_column_where_the_row_says_none(tenant):
    fired, quiet = TriggerRuleFactory(tenant=tenant, name="fired"), TriggerRuleFactory(tenant=tenant, name="quiet")
    TriggerRule.objects.filter(pk=quiet.pk).update(last_fired_at=AT)

    update_rows(
        model=TriggerRule,
        columns=("last_fired_at", "breaching_streak"),
        rows=[(fired.pk, AT.replace(hour=13), 1), (quiet.pk, None, 0)],
        keep_if_none=("last_fired_at",),
    )

    assert dict(TriggerRule.objects.values_list("name", "last_fired_at")) == {
        "fired": AT.replace(hour=13),
        "quiet": AT,
    }
    assert dict(TriggerRule.objects.values_list("name", "breaching_streak")) == {"fired": 1, "quiet": 0}
