import json

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_health_reports_database_and_broker(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert client.get("/health/").status_code == 200


def test_health_ignores_bad_credentials(client):
    response = client.get("/health", HTTP_AUTHORIZATION="Bearer wrong")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_health_stays_up_but_says_so_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "unavailable"}


def test_openapi_schema_documents_each_route_once(client):
    response = client.get("/api/schema")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {"/health", "/tenant", "/tenants"} <= set(schema["paths"])
    assert not [path for path in schema["paths"] if path.endswith("/")]
    assert set(schema["components"]["securitySchemes"]) == {"apiKey", "adminKey", "cookieAuth"}


def test_openapi_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.json"

    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target))

    assert "/health" in json.loads(target.read_text())["paths"]


def test_api_docs_page(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"/api/schema" in response.content


def test_health_keeps_one_broker_connection_instead_of_opening_one_per_request(client, settings):
    import redis

    from core.views import _broker_connections

    url = settings.CELERY_BROKER_URL
    assert url.startswith("redis://")
    server = redis.Redis.from_url(url)
    client.get("/health")  # the process's connection, opened once
    before = server.info("stats")["total_connections_received"]

    answers = [client.get("/health").json()["checks"]["broker"] for _ in range(20)]

    assert answers == ["ok"] * 20
    assert server.info("stats")["total_connections_received"] - before == 0
    assert url in _broker_connections


def test_health_notices_a_kept_broker_connection_that_died_and_recovers(client, settings):
    import redis

    from core.views import _broker_connections

    client.get("/health")
    kept = _broker_connections[settings.CELERY_BROKER_URL]
    server = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    killed = server.client_kill_filter(_id=kept.default_channel.client.client_id())  # the broker drops it

    answers = [client.get("/health") for _ in range(2)]

    assert killed == 1
    assert all(answer.status_code == 200 for answer in answers)
    assert answers[-1].json()["checks"]["broker"] == "ok"  # reconnected at once, or after one report
