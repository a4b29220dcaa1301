from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant."

    def add_arguments(self, parser):
        parser.add_argument("--id", required=True, help="The tenant's id, e.g. acme.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", help="Defaults to one derived from the name.")
        parser.add_argument("--stripe-customer-id")

    def handle(self, *args, **options):
        try:
            tenant = tenant_create(
                id=options["id"],
                name=options["name"],
                slug=options["slug"],
                stripe_customer_id=options["stripe_customer_id"],
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(problems) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.id!r} (slug {tenant.slug!r})."))
