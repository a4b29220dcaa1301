import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.hooks import setting_hooks
from tenants.models import API_KEY_PREFIX, ApiKey, Membership, Tenant, hash_api_key

# last_used_at is for humans ("is this key still in use?"): writing it on every request would turn
# every read into a write, so it is refreshed at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def tenant_create(
    *, id: str, name: str, slug: str | None = None, stripe_customer_id: str | None = None, timezone: str = "UTC"
) -> Tenant:
    tenant = Tenant(
        id=id,
        name=name,
        slug=slug or slugify(name),
        stripe_customer_id=stripe_customer_id or None,
        timezone=timezone,
    )
    if not tenant.slug:
        raise ValidationError({"slug": ["Could not derive a slug from the name; give one."]})
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save(force_insert=True)
    except IntegrityError as exc:  # lost a race with a concurrent insert of the same id or slug
        raise ValidationError({"id": [f"A tenant with id {id!r} or slug {tenant.slug!r} exists."]}) from exc
    return tenant


TENANT_SETTINGS = ("name", "timezone")


def tenant_settings_changed_hooks() -> tuple[Callable, ...]:
    """What settings.TENANT_SETTINGS_CHANGED_HOOKS names: called as hook(tenant=, changed=, now=)."""
    return setting_hooks("TENANT_SETTINGS_CHANGED_HOOKS")


@transaction.atomic
def tenant_update(*, tenant: Tenant, now: datetime | None = None, **fields) -> Tenant:
    """
    A tenant changes its own settings: its name and its time zone (schedule rules read their cron in
    it). The apps above that depend on a setting hear of its change in the same transaction, through
    settings.TENANT_SETTINGS_CHANGED_HOOKS (this app cannot import them).
    """
    unknown = set(fields) - set(TENANT_SETTINGS)
    if unknown:
        raise ValidationError({name: ["Not a tenant setting; allowed: name, timezone."] for name in sorted(unknown)})
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    changed = frozenset(name for name, value in fields.items() if getattr(tenant, name) != value)
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean(validate_unique=False)
    tenant.save(update_fields=list(fields))
    if changed:
        now = now or timezone.now()
        for hook in tenant_settings_changed_hooks():
            hook(tenant=tenant, changed=changed, now=now)
    return tenant


def membership_add(*, tenant: Tenant, user) -> Membership:
    membership, _ = Membership.objects.get_or_create(tenant=tenant, user=user)
    return membership


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def api_key_create(*, tenant: Tenant, name: str = "default") -> IssuedApiKey:
    for _attempt in range(5):
        prefix = secrets.token_hex(4)
        raw_key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=hash_api_key(raw_key))
        except IntegrityError:  # a prefix collision: 1 in 4 billion, draw again
            continue
        return IssuedApiKey(api_key=api_key, raw_key=raw_key)
    raise RuntimeError("Could not draw a unique API key prefix.")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
