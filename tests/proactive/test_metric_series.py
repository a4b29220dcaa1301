from datetime import UTC, datetime, timedelta

import pytest

from core.exceptions import ApplicationError
from proactive.metric_providers import metric_providers
from proactive.metrics import Point, SeriesRequest, metric_series, metric_series_columns, metric_series_many
from tests.factories import MetricPointFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_series_is_the_window_oldest_first(tenant, other_tenant):
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=40), value=1.0)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=20), value=2.0)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=10), value=3.0)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=0), value=4.0)
    MetricPointFactory(tenant=other_tenant, metric="m", timestamp=NOW - timedelta(days=5), value=100.0)

    series = metric_series(tenant_id=tenant.id, metric="m", since=NOW - timedelta(days=30), until=NOW)

    assert series == [Point(NOW - timedelta(days=20), 2.0), Point(NOW - timedelta(days=10), 3.0), Point(NOW, 4.0)]


def test_points_after_until_are_not_seen(tenant):
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=1), value=1.0)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=-1), value=99.0)

    assert [p.value for p in metric_series(tenant_id=tenant.id, metric="m", since=None, until=NOW)] == [1.0]


def test_many_requests_cost_one_query(tenant, other_tenant, django_assert_num_queries):
    MetricPointFactory(tenant=tenant, metric="a", timestamp=NOW - timedelta(days=3), value=1.0)
    MetricPointFactory(tenant=tenant, metric="a", timestamp=NOW - timedelta(days=1), value=2.0)
    MetricPointFactory(tenant=tenant, metric="b", timestamp=NOW - timedelta(days=2), value=5.0)
    MetricPointFactory(tenant=other_tenant, metric="a", timestamp=NOW - timedelta(days=1), value=7.0)
    requests = [
        SeriesRequest(tenant_id=tenant.id, metric="a", since=None, until=NOW),
        SeriesRequest(tenant_id=tenant.id, metric="a", since=None, until=NOW, latest_only=True),
        SeriesRequest(tenant_id=tenant.id, metric="b", since=NOW - timedelta(days=1), until=NOW),
        SeriesRequest(tenant_id=other_tenant.id, metric="a", since=None, until=NOW),
        SeriesRequest(tenant_id=other_tenant.id, metric="missing", since=None, until=NOW),
        # A baseline: the latest point before another end is a batch of its own.
        SeriesRequest(tenant_id=tenant.id, metric="a", since=None, until=NOW - timedelta(days=2), latest_only=True),
    ]

    with django_assert_num_queries(1):  # ranges and latest points of every end, in one statement
        result = metric_series_many(requests=requests)

    assert [[p.value for p in result[r]] for r in requests] == [[1.0, 2.0], [2.0], [], [7.0], [], [1.0]]


def test_usage_metrics_come_from_the_configured_provider(tenant, settings):
    settings.METRIC_PROVIDERS = ["tests.proactive.providers.FakeUsageProvider"]
    [provider] = metric_providers()

    series = metric_series(tenant_id=tenant.id, metric="usage.tokensUsed", since=None, until=NOW)

    assert series == [Point(NOW, 12.0)]
    assert [r.metric for r in provider.seen] == ["usage.tokensUsed"]


def test_a_usage_metric_whose_provider_fails_is_unavailable(tenant, settings):
    settings.METRIC_PROVIDERS = ["tests.proactive.providers.UnreachableUsageProvider"]

    with pytest.raises(ApplicationError, match="Reading 'usage.tokensUsed' failed: warehouse unreachable"):
        metric_series(tenant_id=tenant.id, metric="usage.tokensUsed", since=None, until=NOW)


def test_the_provider_owns_its_names(settings):
    from django.core.exceptions import ValidationError

    from proactive.validators import validate_metric_identifier

    with pytest.raises(ValidationError, match="'usage.nope' is not a built-in usage metric; allowed: usage.tokensUsed"):
        validate_metric_identifier("usage.nope")
    settings.METRIC_PROVIDERS = []
    validate_metric_identifier("usage.nope")  # without the provider, "usage." is nobody's namespace


def test_series_columns_read_as_numbers_are_the_same_series_to_the_microsecond(tenant, other_tenant):
    moments = [NOW - timedelta(days=9, microseconds=1), NOW - timedelta(hours=3, microseconds=999_999), NOW]
    for i, moment in enumerate(moments):
        MetricPointFactory(tenant=tenant, metric="m", timestamp=moment, value=i + 0.5)
    MetricPointFactory(tenant=other_tenant, metric="m", timestamp=NOW, value=100.0)
    MetricPointFactory(tenant=tenant, metric="m", timestamp=NOW - timedelta(days=11), value=7.0)  # before since
    request = SeriesRequest(tenant_id=tenant.id, metric="m", since=NOW - timedelta(days=10), until=NOW)

    columns = metric_series_columns(request=request)

    assert [columns.moment(i) for i in range(len(columns))] == moments
    assert columns.values.tolist() == [0.5, 1.5, 2.5]
    assert [Point(columns.moment(i), float(v)) for i, v in enumerate(columns.values)] == metric_series_many(
        requests=[request]
    )[request]
