from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_valid_key_authenticates_as_its_tenant(tenant, tenant_client):
    response = tenant_client.get("/tenant")

    assert response.status_code == 200
    assert response.json() == {
        "id": "acme",
        "name": "Acme Inc",
        "slug": "acme-inc",
        "timezone": "UTC",
        "createdAt": tenant.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_only_a_hash_of_the_key_is_stored(tenant):
    issued = api_key_create(tenant=tenant, name="ci")

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.raw_key.startswith(f"pi_{stored.prefix}_")
    assert issued.raw_key not in {stored.key_hash, stored.prefix, stored.name}
    assert len(stored.key_hash) == 64


@pytest.mark.parametrize(
    "header",
    [
        "Bearer pi_00000000_not-a-real-key",
        "Bearer not-even-our-format",
        "Bearer",
        "Bearer two parts",
    ],
)
def test_wrong_or_malformed_key_is_401(api_client, tenant, header):
    response = api_client.get("/tenant", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_key_with_right_prefix_but_wrong_secret_is_401(api_client, tenant):
    issued = api_key_create(tenant=tenant)
    forged = f"pi_{issued.api_key.prefix}_{'x' * 43}"

    response = api_client.get("/tenant", HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert response.status_code == 401


def test_revoked_key_is_401(api_client, tenant):
    issued = api_key_create(tenant=tenant)
    api_key_revoke(api_key=issued.api_key)

    response = api_client.get("/tenant", HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")

    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": "Invalid or revoked API key."}


def test_missing_credentials_are_401(api_client, tenant):
    response = api_client.get("/tenant")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_use_records_last_used_at_at_most_once_a_minute(api_client, tenant):
    issued = api_key_create(tenant=tenant)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")

    api_client.get("/tenant")
    first_use = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at
    api_client.get("/tenant")
    second_use = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at

    assert first_use is not None
    assert second_use == first_use

    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    api_client.get("/tenant")
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at > first_use
