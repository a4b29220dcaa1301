import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.contract import enforce_contract
from tests.factories import StaffUserFactory, TenantFactory, issue_api_key


@pytest.fixture(autouse=True)
def api_contract(monkeypatch):
    """Every answer a test receives from a documented operation must match the OpenAPI document."""
    enforce_contract(monkeypatch)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def tenant(db):
    return TenantFactory(id="acme", name="Acme Inc", slug="acme-inc")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(id="globex", name="Globex", slug="globex")


@pytest.fixture
def client_for():
    """A client authenticated with a fresh API key of the given tenant."""

    def make(tenant) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_api_key(tenant)}")
        return client

    return make


@pytest.fixture
def tenant_client(tenant, client_for) -> APIClient:
    return client_for(tenant)


@pytest.fixture
def admin_key_client(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_ADMIN_KEY=settings.INTERNAL_ADMIN_API_KEY)
    return client


@pytest.fixture
def celery_eager():
    """Run tasks in-process (for tests of what a task does, not of the broker)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def staff(client):
    """The Django test client, logged in as a superuser (username "dana")."""
    client.force_login(StaffUserFactory(username="dana"))
    return client
