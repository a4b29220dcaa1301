from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.timeutils import iso_utc
from proactive.models import MetricPoint
from tests.factories import MetricPointFactory, metric_points

pytestmark = pytest.mark.django_db


def test_write_then_read_points_newest_first(tenant_client):
    now = timezone.now().replace(microsecond=0)
    points = [{"timestamp": iso_utc(now - timedelta(hours=h)), "value": float(h)} for h in range(3)]

    written = tenant_client.post("/metrics/analytics.mql.delta/points", {"points": points}, format="json")
    read = tenant_client.get("/metrics/analytics.mql.delta/points")

    assert written.status_code == 201
    assert written.json() == {"metric": "analytics.mql.delta", "written": 3}
    assert read.json()["metric"] == "analytics.mql.delta"
    assert [(p["timestamp"], p["value"]) for p in read.json()["results"]] == [
        (iso_utc(now), 0.0),
        (iso_utc(now - timedelta(hours=1)), 1.0),
        (iso_utc(now - timedelta(hours=2)), 2.0),
    ]


def test_a_repeated_timestamp_replaces_the_value(tenant_client, tenant):
    moment = iso_utc(timezone.now().replace(microsecond=0))

    tenant_client.post("/metrics/m/points", {"points": [{"timestamp": moment, "value": 1}]}, format="json")
    tenant_client.post("/metrics/m/points", {"points": [{"timestamp": moment, "value": 2}]}, format="json")

    assert list(MetricPoint.objects.filter(tenant=tenant).values_list("value", flat=True)) == [2.0]


def test_offsets_are_converted_to_utc(tenant_client, tenant):
    tenant_client.post(
        "/metrics/m/points", {"points": [{"timestamp": "2026-11-26T10:00:00+02:00", "value": 1}]}, format="json"
    )

    assert MetricPoint.objects.get(tenant=tenant).timestamp == datetime(2026, 11, 26, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "expected_detail"),
    [
        ({"points": []}, {"points": ["This list may not be empty."]}),
        ({}, {"points": ["This field is required."]}),
        (
            {"points": [{"timestamp": "2026-11-26T10:00:00", "value": 1}]},
            {"points": {"0": {"timestamp": ["Include a time zone offset, e.g. 2026-11-26T14:00:00Z."]}}},
        ),
        (
            {"points": [{"timestamp": "yesterday", "value": 1}]},
            {"points": {"0": {"timestamp": ["Use ISO 8601 with a time zone offset, e.g. 2026-11-26T14:00:00Z."]}}},
        ),
        (
            {"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": "NaN"}]},
            {"points": {"0": {"value": ["Must be a number."]}}},
        ),
        (
            {"points": [{"timestamp": "2026-11-26T10:00:00Z"}]},
            {"points": {"0": {"value": ["This field is required."]}}},
        ),
        (
            {"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": 1, "unit": "ms"}]},
            {"points": {"0": {"unit": ["Unknown field. Allowed: timestamp, value."]}}},
        ),
        (
            {
                "points": [
                    {"timestamp": "2026-11-26T10:00:00Z", "value": 1},
                    {"timestamp": "2099-01-01T00:00:00Z", "value": 1},
                ]
            },
            {"points": {"1": {"timestamp": ["Is more than an hour in the future."]}}},
        ),
    ],
)
def test_bad_points_are_400_and_nothing_is_written(tenant_client, body, expected_detail):
    response = tenant_client.post("/metrics/m/points", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": "validation_error", "detail": expected_detail}
    assert not MetricPoint.objects.exists()


def test_every_bad_point_of_a_batch_is_named(tenant_client):
    good = {"timestamp": "2026-11-26T10:00:00Z", "value": 1}
    points = [good] * 10
    points[3] = {**good, "value": "x"}
    points[7] = {**good, "timestamp": "2099-01-01T00:00:00Z"}
    points[8] = {"timestamp": "2026-11-26T10:00:00Z"}

    response = tenant_client.post("/metrics/m/points", {"points": points}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == {
        "points": {
            "3": {"value": ["Must be a number."]},
            "7": {"timestamp": ["Is more than an hour in the future."]},
            "8": {"value": ["This field is required."]},
        }
    }
    assert not MetricPoint.objects.exists()


def test_a_bad_point_among_good_ones_rejects_the_whole_request(tenant_client):
    good = {"timestamp": "2026-11-26T10:00:00Z", "value": 1}

    response = tenant_client.post("/metrics/m/points", {"points": [good, {**good, "value": None}]}, format="json")

    assert response.status_code == 400
    assert not MetricPoint.objects.exists()


def test_too_many_points_in_one_request(tenant_client):
    points = [{"timestamp": f"2026-11-26T10:00:{s % 60:02d}Z", "value": s} for s in range(1001)]

    response = tenant_client.post("/metrics/m/points", {"points": points}, format="json")

    assert response.status_code == 400
    assert "no more than 1000" in response.json()["detail"]["points"][0]


def test_bad_metric_identifier_is_named(tenant_client):
    response = tenant_client.get("/metrics/bad%20name/points")

    assert response.status_code == 400
    assert "is not a valid metric identifier" in response.json()["detail"]["metric"][0]


def test_builtin_usage_metrics_are_read_only(tenant_client):
    response = tenant_client.post(
        "/metrics/usage.tokensUsed/points",
        {"points": [{"timestamp": "2026-11-26T10:00:00Z", "value": 1}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"] == {
        "metric": ["'usage.tokensUsed' is a built-in usage metric and cannot be written."]
    }


def test_read_window_and_bad_window(tenant_client, tenant):
    metric_points(tenant, "m", *range(10), end=datetime(2026, 11, 10, tzinfo=UTC), every=timedelta(days=1))

    window = tenant_client.get("/metrics/m/points", {"from": "2026-11-03T00:00:00Z", "to": "2026-11-05T00:00:00Z"})
    reversed_window = tenant_client.get(
        "/metrics/m/points", {"from": "2026-11-05T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
    )
    garbage = tenant_client.get("/metrics/m/points", {"from": "soon"})

    assert [p["value"] for p in window.json()["results"]] == [4.0, 3.0, 2.0]
    assert reversed_window.json()["detail"] == {"from": ["Must not be after 'to'."]}
    assert list(garbage.json()["detail"]) == ["from"]


def test_points_are_paginated(tenant_client, tenant):
    metric_points(tenant, "m", 4, 3, 2, 1, 0, end=timezone.now(), every=timedelta(minutes=1))

    first = tenant_client.get("/metrics/m/points?limit=2").json()
    second = tenant_client.get(first["next"]).json()

    assert [p["value"] for p in first["results"]] == [0.0, 1.0]
    assert [p["value"] for p in second["results"]] == [2.0, 3.0]


def test_another_tenants_points_are_invisible(tenant_client, other_tenant):
    MetricPointFactory(tenant=other_tenant, metric="m", timestamp=timezone.now(), value=99)

    assert tenant_client.get("/metrics/m/points").json()["results"] == []
