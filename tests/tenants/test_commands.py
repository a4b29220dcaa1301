from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_as_the_last_line(tenant):
    out = StringIO()

    call_command("create_api_key", "--tenant", "acme", "--name", "ci", stdout=out)

    raw_key = out.getvalue().strip().splitlines()[-1]
    assert raw_key.startswith("pi_")
    assert ApiKey.objects.get(tenant=tenant).name == "ci"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get("/tenant").json()["id"] == "acme"


def test_create_api_key_for_unknown_tenant_fails_clearly(tenant):
    with pytest.raises(CommandError, match=r"No tenant with id 'nope'\. Known tenants: acme\."):
        call_command("create_api_key", "--tenant", "nope", stdout=StringIO())

    assert not ApiKey.objects.exists()


def test_create_tenant_command(db):
    out = StringIO()

    call_command("create_tenant", "--id", "demo", "--name", "Demo Co", stdout=out)

    assert Tenant.objects.get(pk="demo").slug == "demo-co"
    with pytest.raises(CommandError, match="slug"):
        call_command("create_tenant", "--id", "demo2", "--name", "Demo Co", stdout=StringIO())
