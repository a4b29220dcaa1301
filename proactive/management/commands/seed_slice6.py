from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApplicationError
from proactive.demo import DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME, seed_demo


class Command(BaseCommand):
    help = (
        "Seed a demo tenant: the revenue-radar widget installed, trigger rules of every type with "
        "example alerts, the last seven days of usage, and metric history. Adds only what is missing: "
        "existing data is never changed, so it is safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=DEFAULT_TENANT_ID, help=f"Tenant id (default {DEFAULT_TENANT_ID}).")
        parser.add_argument("--tenant-name", default=DEFAULT_TENANT_NAME, help="Name, when the tenant is created.")
        parser.add_argument("--tenant-slug", help="Slug, when the one derived from the name is taken.")

    def handle(self, *args, tenant, tenant_name, tenant_slug, **options):
        try:
            report = seed_demo(tenant_id=tenant, tenant_name=tenant_name, tenant_slug=tenant_slug)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for line in report.lines:
            self.stdout.write(line)
        if report.created:
            summary = f"{report.created} thing(s) created, {report.kept} left as they were"
        else:
            summary = f"nothing new: already seeded ({report.kept} thing(s) left as they were)"
        self.stdout.write(self.style.SUCCESS(f"Seeded {tenant!r}: {summary}."))
