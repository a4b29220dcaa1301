"""The alert page's chart (drawn by proactive: only it reads a rule's metric)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TriggerRuleFactory, alert_payload, metric_points, raise_alert

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/alerts/alert/"


def test_alert_page_charts_the_metric_around_the_firing(staff, tenant):
    fired_at = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    rule = TriggerRuleFactory(tenant=tenant, metric="queue.depth", threshold=50.0)
    metric_points(tenant, "queue.depth", *([10.0] * 40 + [80.0]), end=fired_at, every=timedelta(minutes=1))
    payload = {**alert_payload(rule, value=80.0), "observedAt": fired_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    alert = raise_alert(rule, payload, triggered_at=fired_at)

    body = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()

    assert 'class="pi-line" data-series="queue.depth" data-points="41"' in body
    assert 'class="pi-threshold" data-series="threshold" data-value="50.0"' in body
    assert f'class="pi-marker" data-series="fired" data-at="{fired_at:%Y-%m-%dT%H:%M:%SZ}" data-value="80.0"' in body


def test_anomaly_alert_chart_draws_the_band_it_was_compared_with(staff, tenant):
    fired_at = timezone.now().replace(second=0, microsecond=0)
    rule = TriggerRuleFactory(tenant=tenant, type="anomaly", metric="latency", threshold=3.0, window_days=7)
    metric_points(tenant, "latency", *([10.0, 12.0] * 20 + [30.0]), end=fired_at, every=timedelta(minutes=5))
    alert = raise_alert(rule, {**alert_payload(rule, value=30.0), "observedAt": f"{fired_at:%Y-%m-%dT%H:%M:%SZ}"})

    body = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()

    assert 'class="pi-band" data-series="mean ± 3σ at the firing"' in body
    assert 'data-series="latency" data-points="41"' in body


def test_schedule_alert_page_has_no_chart_but_says_why(staff, tenant):
    rule = TriggerRuleFactory(tenant=tenant, type="schedule", schedule="0 9 * * 1", metric="", threshold=None)
    alert = raise_alert(rule)

    body = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()

    assert "pi-line" not in body and "a schedule alert has no series" in body
    alert.refresh_from_db()
    assert alert.status == "pending"  # looking changes nothing


def test_a_long_minutely_series_is_drawn_with_at_most_two_thousand_points(staff, tenant):
    now = timezone.now().replace(second=0, microsecond=0)
    fired_at = now - timedelta(days=3)
    rule = TriggerRuleFactory(tenant=tenant, metric="rps", threshold=500.0)
    # Sparse before the firing (so the chart looks back 3 days), then every minute for the 3 days after it.
    metric_points(tenant, "rps", *([100.0] * 40), end=fired_at - timedelta(hours=7), every=timedelta(hours=1))
    after = [100.0 + i % 50 for i in range(3 * 1440 - 10)]
    metric_points(tenant, "rps", *after, end=now - timedelta(minutes=5), every=timedelta(minutes=1))
    alert = raise_alert(rule, {**alert_payload(rule, value=900.0), "observedAt": f"{fired_at:%Y-%m-%dT%H:%M:%SZ}"})

    body = staff.get(f"{CHANGELIST}{alert.pk}/change/").content.decode()

    drawn = int(re.search(r'class="pi-line" data-series="rps" data-points="(\d+)"', body).group(1))
    assert 1000 <= drawn <= 2000  # of 4,350 points read
