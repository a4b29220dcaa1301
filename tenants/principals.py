"""
Who is calling, for callers that are not Django users. DRF puts these on `request.user`.
"""

from dataclasses import dataclass

from tenants.models import ApiKey


class _Principal:
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    pk = None
    id = None


@dataclass(frozen=True, eq=False)
class ApiKeyPrincipal(_Principal):
    """A tenant client authenticated with `Authorization: Bearer <api key>`."""

    api_key: ApiKey
    is_staff = False

    @property
    def tenant(self):
        return self.api_key.tenant

    def __str__(self):
        return f"api-key:{self.api_key.prefix}"


class InternalAdminPrincipal(_Principal):
    """An internal service authenticated with `X-Admin-Key`; it has staff rights on the API."""

    is_staff = True

    def __str__(self):
        return "internal-admin-key"


def actor_label(user) -> str:
    """Who did it, for history entries: user:<username>, api-key:<prefix> or internal-admin-key."""
    if isinstance(user, ApiKeyPrincipal | InternalAdminPrincipal):
        return str(user)
    return f"user:{user.get_username()}"
