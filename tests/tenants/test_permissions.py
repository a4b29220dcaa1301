import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.factories import StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_TENANT = {"id": "initech", "name": "Initech"}


def test_tenant_key_on_admin_endpoint_is_403(tenant_client):
    response = tenant_client.post("/tenants", NEW_TENANT, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert not Tenant.objects.filter(pk="initech").exists()


def test_admin_key_is_allowed(admin_key_client):
    response = admin_key_client.post("/tenants", NEW_TENANT, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "id": "initech",
        "name": "Initech",
        "slug": "initech",
        "stripeCustomerId": None,
        "timezone": "UTC",
        "createdAt": response.json()["createdAt"],
    }
    assert Tenant.objects.get(pk="initech").slug == "initech"


def test_wrong_admin_key_is_401(api_client, db):
    response = api_client.post("/tenants", NEW_TENANT, format="json", HTTP_X_ADMIN_KEY="guess")

    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": "Invalid admin key."}
    assert not Tenant.objects.exists()


def test_no_credentials_on_admin_endpoint_is_401(api_client, db):
    response = api_client.get("/tenants")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_admin_key_is_refused_when_none_is_configured(api_client, db, settings):
    settings.INTERNAL_ADMIN_API_KEY = ""

    response = api_client.get("/tenants", HTTP_X_ADMIN_KEY="")

    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": "Invalid admin key."}


def test_staff_session_user_is_allowed(tenant):
    client = APIClient()
    client.force_login(StaffUserFactory())

    response = client.get("/tenants")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == ["acme"]


def test_non_staff_session_user_is_403(tenant):
    client = APIClient()
    client.force_login(UserFactory())

    response = client.get("/tenants")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_admin_tenant_list_is_paginated(admin_key_client):
    for n in range(3):
        Tenant.objects.create(id=f"t{n}", name=f"T{n}", slug=f"t{n}")

    first = admin_key_client.get("/tenants?limit=2").json()
    second = admin_key_client.get(first["next"]).json()

    assert [row["id"] for row in first["results"]] == ["t0", "t1"]
    assert [row["id"] for row in second["results"]] == ["t2"]
    assert second["next"] is None


def test_tenant_creation_rejects_unknown_fields(admin_key_client):
    response = admin_key_client.post("/tenants", {**NEW_TENANT, "plan": "gold"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["detail"]) == ["plan"]
    assert not Tenant.objects.exists()
