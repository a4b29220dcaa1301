"""tenant_update tells the apps above it what changed, through settings.TENANT_SETTINGS_CHANGED_HOOKS."""

from datetime import UTC, datetime

import pytest

from tenants.services import tenant_update

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
heard = []


def recording_hook(*, tenant, changed, now):
    heard.append((tenant.pk, tenant.timezone, changed, now))


@pytest.fixture
def recorded(settings):
    settings.TENANT_SETTINGS_CHANGED_HOOKS = ["tests.tenants.test_settings_changed_hooks.recording_hook"]
    heard.clear()
    return heard


def test_hooks_hear_the_settings_whose_value_changed_after_the_save(tenant, recorded):
    tenant_update(tenant=tenant, name=tenant.name, timezone="Asia/Kolkata", now=NOW)

    assert recorded == [("acme", "Asia/Kolkata", frozenset({"timezone"}), NOW)]


def test_nothing_changed_calls_no_hook(tenant, recorded):
    tenant_update(tenant=tenant, name=tenant.name, timezone=tenant.timezone, now=NOW)

    assert recorded == []
