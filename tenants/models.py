import hashlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from core.validators import validate_timezone

TENANT_ID_PATTERN = r"\A[a-z0-9][a-z0-9._-]{0,62}\Z"

tenant_id_validator = RegexValidator(
    TENANT_ID_PATTERN,
    "Use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.",
)


class Tenant(models.Model):
    id = models.CharField(primary_key=True, max_length=63, validators=[tenant_id_validator])
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    stripe_customer_id = models.CharField(
        max_length=255, unique=True, null=True, blank=True, help_text="Stripe's cus_… id, if billed."
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA zone (Europe/Berlin): schedule rules read their cron in it unless they name their own.",
    )
    alert_budget_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Alerts this tenant's rules may raise in an hour; empty: ALERT_BUDGET_PER_HOUR (1,000).",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="tenants", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(id=""), name="tenant_id_not_empty"),
            models.CheckConstraint(condition=~Q(slug=""), name="tenant_slug_not_empty"),
            models.CheckConstraint(condition=~Q(timezone=""), name="tenant_timezone_not_empty"),
            models.CheckConstraint(
                condition=~Q(stripe_customer_id=""), name="tenant_stripe_customer_id_null_not_empty"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_tenant_user")]

    def __str__(self):
        return f"{self.user} in {self.tenant_id}"


API_KEY_PREFIX = "pi_"


def hash_api_key(raw_key: str) -> str:
    """What is stored of a key: its SHA-256 (the key is 256 random bits, so a fast hash is as safe)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """
    A tenant's API key. The raw key is `pi_<prefix>_<secret>`; only its SHA-256 is stored. The key
    is 256 random bits, so a fast hash is as safe as a slow one and keeps authentication cheap.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (pi_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
