import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_unknown_route_is_404_in_the_error_shape(tenant_client):
    response = tenant_client.get("/no/such/thing")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No endpoint at GET /no/such/thing."}


def test_wrong_method_is_405_in_the_error_shape(tenant_client):
    response = tenant_client.delete("/tenant")

    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "detail": 'Method "DELETE" not allowed.'}


def test_malformed_json_is_400_and_says_so(admin_key_client):
    response = admin_key_client.post("/tenants", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "JSON parse error" in response.json()["detail"]


def test_validation_error_names_every_bad_field(admin_key_client):
    response = admin_key_client.post("/tenants", {"id": "Bad Id", "slug": "no spaces"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert set(body["detail"]) == {"name", "slug"}
    assert not Tenant.objects.exists()


def test_service_validation_errors_name_the_api_field_in_camel_case(admin_key_client):
    admin_key_client.post("/tenants", {"id": "a", "name": "A", "stripeCustomerId": "cus_1"}, format="json")

    response = admin_key_client.post("/tenants", {"id": "b", "name": "B", "stripeCustomerId": "cus_1"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "validation_error",
        "detail": {"stripeCustomerId": ["Tenant with this Stripe customer id already exists."]},
    }
    assert list(Tenant.objects.values_list("id", flat=True)) == ["a"]


def test_unsupported_media_type_is_415(admin_key_client):
    response = admin_key_client.post("/tenants", data="id=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/tenant", "/tenant/"])
def test_every_route_answers_with_and_without_trailing_slash(tenant_client, path):
    response = tenant_client.get(path)

    assert response.status_code == 200
    assert response.json()["id"] == "acme"


@pytest.mark.parametrize("path", ["/tenants", "/tenants/"])
def test_writes_work_with_and_without_trailing_slash(admin_key_client, path):
    response = admin_key_client.post(path, {"id": "slashy", "name": "Slashy"}, format="json")

    assert response.status_code == 201
    assert Tenant.objects.filter(pk="slashy").exists()


def test_a_4xx_is_not_logged_by_the_app_and_nothing_is_logged_twice(client, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        response = client.get("/alerts")

    assert response.status_code == 401
    assert [record for record in caplog.records if record.name == "django.request"] == []
    # One handler (the root's) writes every line: Django's own console handler is gone.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django.request").getEffectiveLevel() == logging.ERROR
