import hmac
import re

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from core.exceptions import ApplicationError
from tenants.models import API_KEY_PREFIX, TENANT_ID_PATTERN, ApiKey, Tenant, hash_api_key
from tenants.principals import ApiKeyPrincipal, InternalAdminPrincipal

_KEY_PREFIX = re.compile(r"[0-9a-f]{8}")


class TenantRequired(ApplicationError):
    code = "tenant_required"


class TenantForbidden(ApplicationError):
    status_code = 403
    code = "permission_denied"


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The active key whose raw value is `raw_key`, or None. Compares hashes in constant time."""
    if not raw_key.startswith(API_KEY_PREFIX) or raw_key.count("_") < 2:
        return None
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    if not _KEY_PREFIX.fullmatch(prefix):  # also keeps NUL and other junk away from the database
        return None
    api_key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    presented_hash = hash_api_key(raw_key)
    if api_key is None or not hmac.compare_digest(presented_hash, api_key.key_hash):
        return None
    return api_key if api_key.is_active else None


def tenant_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user).order_by("id")


def tenant_for_caller(*, user, requested_tenant_id: str | None) -> Tenant:
    """
    The tenant a request acts for — the one boundary every tenant endpoint goes through.

    - An API key acts for its own tenant only.
    - A session user acts for their one tenant, or picks one of theirs with X-Tenant-Id.
    - Staff users and the internal admin key may pick any tenant with X-Tenant-Id.
    """
    if isinstance(user, ApiKeyPrincipal):
        if requested_tenant_id and requested_tenant_id != user.tenant.id:
            raise TenantForbidden("This API key belongs to another tenant than X-Tenant-Id names.")
        return user.tenant

    may_pick_any = isinstance(user, InternalAdminPrincipal) or user.is_staff
    if requested_tenant_id and not re.match(TENANT_ID_PATTERN, requested_tenant_id):
        raise TenantRequired(
            "Malformed tenant id.", detail={"X-Tenant-Id": [f"{requested_tenant_id!r} is not a tenant id."]}
        )
    if requested_tenant_id:
        if may_pick_any:
            tenant = Tenant.objects.filter(pk=requested_tenant_id).first()
            if tenant is None:
                raise TenantRequired(
                    "No such tenant.", detail={"X-Tenant-Id": [f"No tenant with id {requested_tenant_id!r}."]}
                )
            return tenant
        tenant = tenant_list_for_user(user=user).filter(pk=requested_tenant_id).first()
        if tenant is None:
            raise TenantForbidden(f"You are not a member of tenant {requested_tenant_id!r}.")
        return tenant

    tenants = [] if isinstance(user, InternalAdminPrincipal) else list(tenant_list_for_user(user=user)[:21])
    if len(tenants) == 1:
        return tenants[0]
    if not tenants and may_pick_any:
        raise TenantRequired(
            "Name the tenant to act for.",
            detail={"X-Tenant-Id": ["Required: staff and the admin key act for the tenant this header names."]},
        )
    if not tenants:
        raise TenantForbidden("You are not a member of any tenant.")
    raise TenantRequired(
        "You belong to several tenants; name one.",
        detail={"X-Tenant-Id": [f"Required: one of {', '.join(t.id for t in tenants[:20])}."]},
    )
