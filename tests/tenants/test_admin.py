import re

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.services import api_key_create
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/admin/", "Tenants and API keys"),
        ("/admin/tenants/tenant/", "Acme Inc"),
        ("/admin/tenants/tenant/acme/change/", "pi_"),
        ("/admin/tenants/apikey/", "pi_"),
        ("/admin/tenants/apikey/add/", "Add API key"),
    ],
)
def test_admin_pages_render(staff_client, tenant, url, expected):
    api_key_create(tenant=tenant, name="listed")

    response = staff_client.get(url)

    assert response.status_code == 200
    assert expected in response.content.decode()


def test_key_made_in_admin_is_shown_once_and_works(staff_client, tenant):
    response = staff_client.post("/admin/tenants/apikey/add/", {"tenant": "acme", "name": "from admin"})

    assert response.status_code == 200
    raw_key = re.search(rb'<pre id="raw-api-key"[^>]*>(pi_[^<]+)</pre>', response.content).group(1).decode()
    api_key = ApiKey.objects.get(name="from admin")
    assert raw_key.startswith(f"pi_{api_key.prefix}_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get("/tenant").json()["id"] == "acme"

    change_page = staff_client.get(f"/admin/tenants/apikey/{api_key.pk}/change/")
    assert raw_key.encode() not in change_page.content


def test_revoke_action(staff_client, tenant):
    issued = api_key_create(tenant=tenant)

    staff_client.post(
        "/admin/tenants/apikey/",
        {"action": "revoke_api_keys", "_selected_action": [issued.api_key.pk]},
    )

    assert ApiKey.objects.get(pk=issued.api_key.pk).revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    assert client.get("/tenant").status_code == 401
