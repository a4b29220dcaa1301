from django.core.management.base import BaseCommand, CommandError

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "demo (make run)"


class Command(BaseCommand):
    help = "Issue a fresh API key for the demo tenant (revoking the previous demo key) and print curl lines."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo-tenant")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, tenant, base_url, **options):
        found = Tenant.objects.filter(pk=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with id {tenant!r}; run seed_slice6 first.")
        for old in ApiKey.objects.filter(tenant=found, name=DEMO_KEY_NAME, revoked_at__isnull=True):
            api_key_revoke(api_key=old)
        key = api_key_create(tenant=found, name=DEMO_KEY_NAME).raw_key
        base = base_url.rstrip("/")
        auth = f'-H "Authorization: Bearer {key}"'
        lines = [
            "",
            f"Demo tenant {found.id!r} ({found.name}). API key, new on every start:",
            f"  {key}",
            "",
            "Try, once the server is up:",
            f"  curl -s {base}/health",
            f"  curl -s {base}/alerts {auth}",
            f"  curl -s {base}/triggers {auth}",
            f"  curl -s {base}/marketplace/widgets {auth}",
            f'  curl -s "{base}/billing/usage" {auth}',
            f"  curl -s -X POST {base}/triggers/$(curl -s {base}/triggers {auth} "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"results\"][0][\"id\"])')/evaluate "
            f"{auth} -H 'Content-Type: application/json' -d '{{\"dryRun\": true}}'",
            "",
            f"API docs: {base}/api/docs   Admin: {base}/admin/ (DEBUG=1 .venv/bin/python manage.py createsuperuser)",
            "The scheduler evaluates the seeded rules within about a minute; /alerts then lists the",
            "engine's alerts (by 'engine') beside the seeded examples (by 'seed').",
            "",
        ]
        self.stdout.write("\n".join(lines))
