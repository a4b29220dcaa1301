import pytest
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_api_key_acts_for_its_own_tenant_only(tenant, other_tenant, tenant_client):
    assert tenant_client.get("/tenant").json()["id"] == "acme"

    response = tenant_client.get("/tenant", HTTP_X_TENANT_ID="globex")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_session_user_with_one_tenant_acts_for_it(tenant):
    membership = MembershipFactory(tenant=tenant)

    response = session_client(membership.user).get("/tenant")

    assert response.json()["id"] == "acme"


def test_session_user_in_several_tenants_must_pick_one(tenant, other_tenant):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user)
    MembershipFactory(tenant=other_tenant, user=user)
    client = session_client(user)

    unpicked = client.get("/tenant")
    picked = client.get("/tenant", HTTP_X_TENANT_ID="globex")

    assert unpicked.status_code == 400
    assert unpicked.json() == {
        "error": "tenant_required",
        "detail": {"X-Tenant-Id": ["Required: one of acme, globex."]},
    }
    assert picked.json()["id"] == "globex"


def test_session_user_cannot_pick_a_tenant_they_are_not_in(tenant, other_tenant):
    membership = MembershipFactory(tenant=tenant)

    response = session_client(membership.user).get("/tenant", HTTP_X_TENANT_ID="globex")

    assert response.status_code == 403
    assert response.json()["detail"] == "You are not a member of tenant 'globex'."


def test_user_without_tenant_is_403(db):
    response = session_client(UserFactory()).get("/tenant")

    assert response.status_code == 403


def test_staff_may_act_for_any_tenant(tenant, other_tenant):
    response = session_client(StaffUserFactory()).get("/tenant", HTTP_X_TENANT_ID="globex")

    assert response.json()["id"] == "globex"


def test_admin_key_must_name_the_tenant(admin_key_client, tenant):
    unnamed = admin_key_client.get("/tenant")
    named = admin_key_client.get("/tenant", HTTP_X_TENANT_ID="acme")

    assert unnamed.status_code == 400
    assert unnamed.json() == {
        "error": "tenant_required",
        "detail": {"X-Tenant-Id": ["Required: staff and the admin key act for the tenant this header names."]},
    }
    assert named.json()["id"] == "acme"


def test_staff_without_memberships_must_name_the_tenant(tenant):
    response = session_client(StaffUserFactory()).get("/tenant")

    assert response.status_code == 400
    assert response.json()["error"] == "tenant_required"


def test_staff_naming_a_tenant_that_does_not_exist(admin_key_client, db):
    response = admin_key_client.get("/tenant", HTTP_X_TENANT_ID="nope")

    assert response.status_code == 400
    assert response.json()["detail"] == {"X-Tenant-Id": ["No tenant with id 'nope'."]}


def test_session_writes_need_csrf(tenant):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(StaffUserFactory())

    response = client.post("/tenants", {"id": "x", "name": "X"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
