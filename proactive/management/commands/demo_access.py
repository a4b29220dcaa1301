import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.envfile import read_env_file
from tenants.models import ApiKey, Tenant
from tenants.selectors import api_key_get_active
from tenants.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "demo (make run)"


class Command(BaseCommand):
    help = (
        "How to reach the demo: its API key (kept across restarts), the admin key and the webhook "
        "secret (generated once when not set), all written to var/demo.env; and curl lines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo-tenant")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, tenant, base_url, **options):
        if not settings.DEBUG:  # it writes and prints the secrets in use: never for a production process
            raise CommandError("demo_access is for the local demo (make run): run it with DEBUG=1.")
        found = Tenant.objects.filter(pk=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with id {tenant!r}; run seed_slice6 first.")
        path = Path(settings.DEMO_ENV_FILE)
        stored = read_env_file(path)
        key, key_note = self._demo_key(found, stored.get("KEY", ""))
        values = {
            "KEY": key,
            # What the server uses: the environment's value, else the one generated earlier (the
            # settings read this file), else a new one.
            "INTERNAL_ADMIN_API_KEY": settings.INTERNAL_ADMIN_API_KEY or secrets.token_urlsafe(32),
            "STRIPE_WEBHOOK_SECRET": settings.STRIPE_WEBHOOK_SECRET or f"whsec_{secrets.token_urlsafe(32)}",
        }
        origins = {
            name: "generated for this demo"
            if not getattr(settings, name)
            else "kept from the last start"
            if name in settings.DEMO_SECRETS_FROM_FILE
            else "from your settings"
            for name in ("INTERNAL_ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET")
        }
        self._write(path, values)
        self.stdout.write(self._banner(found, values, key_note, origins, path, base_url.rstrip("/")))

    def _demo_key(self, tenant: Tenant, stored_key: str) -> tuple[str, str]:
        """The demo key of the last start if it still works; else a new one (saying what became of the old)."""
        current = api_key_get_active(raw_key=stored_key) if stored_key else None
        if current is not None and current.tenant_id == tenant.id:
            return stored_key, "the same as at the last start"
        revoked = 0
        for old in ApiKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME, revoked_at__isnull=True):
            api_key_revoke(api_key=old)
            revoked += 1
        note = "new" + (f"; the previous demo key ({revoked}) was revoked" if revoked else "")
        return api_key_create(tenant=tenant, name=DEMO_KEY_NAME).raw_key, note

    @staticmethod
    def _write(path: Path, values: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by `manage.py demo_access` (make run). Load into a shell: set -a; . var/demo.env; set +a"]
        lines += [f"{name}={value}" for name, value in values.items()]
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("\n".join(lines) + "\n")

    @staticmethod
    def _banner(tenant, values, key_note, origin, path, base) -> str:
        auth = f'-H "Authorization: Bearer {values["KEY"]}"'
        return "\n".join(
            [
                "",
                f"Demo tenant {tenant.id!r} ({tenant.name}).",
                f"  API key ({key_note}):",
                f"    {values['KEY']}",
                f"  Admin key, X-Admin-Key ({origin['INTERNAL_ADMIN_API_KEY']}): {values['INTERNAL_ADMIN_API_KEY']}",
                f"  Webhook secret, STRIPE_WEBHOOK_SECRET ({origin['STRIPE_WEBHOOK_SECRET']}): "
                f"{values['STRIPE_WEBHOOK_SECRET']}",
                f"All three are in {path}. The docs' examples use them as $KEY, $INTERNAL_ADMIN_API_KEY and",
                "$STRIPE_WEBHOOK_SECRET; load them into your shell with:",
                f"  set -a; . {path}; set +a",
                "",
                "Try, once the server is up:",
                f"  curl -s {base}/health",
                f"  curl -s {base}/alerts {auth}",
                f"  curl -s {base}/triggers {auth}",
                f"  curl -s {base}/marketplace/widgets {auth}",
                f'  curl -s "{base}/billing/usage" {auth}',
                f'  curl -s {base}/tenants -H "X-Admin-Key: {values["INTERNAL_ADMIN_API_KEY"]}"',
                f"  curl -s -X POST {base}/triggers/$(curl -s {base}/triggers {auth} "
                '| python3 -c \'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])\')/evaluate '
                f"{auth} -H 'Content-Type: application/json' -d '{{\"dryRun\": true}}'",
                "",
                f"API docs: {base}/api/docs   Admin: {base}/admin/ "
                "(DEBUG=1 .venv/bin/python manage.py createsuperuser)",
                "The scheduler evaluates the seeded rules within about a minute; /alerts then lists the",
                "engine's alerts (by 'engine') beside the seeded examples (by 'seed').",
                "",
            ]
        )
