from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError

PRODUCTION_SECRETS_TAG = "production_secrets"

_REQUIRED_SECRETS = {
    "INTERNAL_ADMIN_API_KEY": (
        "core.E001",
        "Admin-only endpoints (widget registration) would accept no key.",
    ),
    "STRIPE_WEBHOOK_SECRET": (
        "core.E002",
        "The billing webhook could not verify that events come from Stripe.",
    ),
}


@checks.register(PRODUCTION_SECRETS_TAG)
def check_production_secrets(app_configs=None, **kwargs):
    if settings.DEBUG:
        return []
    errors = [
        checks.Error(
            f"{name} is not set and DEBUG is off.",
            hint=f"{why} Set {name} in the environment.",
            id=check_id,
        )
        for name, (check_id, why) in _REQUIRED_SECRETS.items()
        if not getattr(settings, name, "")
    ]
    if settings.STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED:
        errors.append(
            checks.Error(
                "STRIPE_WEBHOOK_INSECURE_ACCEPT_UNSIGNED is on and DEBUG is off.",
                hint="It lets anyone post billing events. Unset it; sign events with STRIPE_WEBHOOK_SECRET.",
                id="core.E003",
            )
        )
    return errors


@checks.register(checks.Tags.security, deploy=True)
def check_outbound_addresses(app_configs=None, **kwargs):
    """Part of `check --deploy`: the suite and a laptop send to 127.0.0.1, production must not."""
    if settings.DEBUG or not settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES:
        return []
    return [
        checks.Error(
            "OUTBOUND_ALLOW_PRIVATE_ADDRESSES is on and DEBUG is off.",
            hint=(
                "Tenants' webhook and Slack URLs could then reach loopback, private and link-local "
                "addresses (the database, cloud metadata). Unset it in production."
            ),
            id="core.E004",
        )
    ]


def enforce_production_secrets() -> None:
    """
    Management commands run system checks by themselves; gunicorn and Celery do not.
    Their entry points call this so that every process refuses to start without the secrets.
    """
    errors = checks.run_checks(tags=[PRODUCTION_SECRETS_TAG])
    if errors:
        raise SystemCheckError("\n".join(f"{error.id}: {error.msg} {error.hint}" for error in errors))
