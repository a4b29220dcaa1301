"""
Schemathesis against the published schema, in-process through the WSGI app and the test database:
for every operation it sends requests generated from the schema, valid ones and deliberately
invalid ones, and checks that the server never errors, answers only documented statuses with
documented bodies and content types, and rejects what the schema forbids.
"""

import pytest
import schemathesis
from django.conf import settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from proactive.demo import seed_demo
from tenants.models import Tenant
from tests.contract import published_schema
from tests.factories import issue_api_key

schema = schemathesis.openapi.from_dict(published_schema())
schema.app = get_wsgi_application()
schema.config.generation.update(max_examples=30)
# 413 and 414 are how this server rejects a body or URL that is too large: a rejection like a 400.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413", "414"]

pytestmark = pytest.mark.slow


@pytest.fixture
def credentials(db):
    """A seeded tenant (rules, alerts, a widget, usage) and the headers each kind of operation takes."""
    # As Django's test client does: the test's transaction must outlive each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    seed_demo(tenant_id="acme", tenant_name="Acme Inc")
    try:
        yield {
            "apiKey": {"Authorization": f"Bearer {issue_api_key(Tenant.objects.get(pk='acme'))}"},
            "adminKey": {"X-Admin-Key": settings.INTERNAL_ADMIN_API_KEY},
        }
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
# Derandomized: CI runs the same requests every time, and nothing is written to .hypothesis/.
@hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    derandomize=True,
    database=None,
)
def test_the_server_keeps_the_contract_for_generated_requests(case, credentials):
    schemes = [name for requirement in case.operation.definition.raw.get("security", []) for name in requirement]
    scheme = next((name for name in schemes if name in credentials), None)

    # Schema-valid requests the server still refuses for reasons a schema cannot say (a cursor
    # it never gave out, a cron expression that never occurs, a bad signature) are expected:
    # everything else — no 5xx, only documented statuses and bodies, invalid input rejected — is checked.
    case.call_and_validate(headers=credentials.get(scheme, {}), excluded_checks=[positive_data_acceptance])
