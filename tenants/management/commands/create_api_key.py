from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant. The raw key is the last line of the output."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's id.")
        parser.add_argument("--name", default="default", help="A label for the key.")

    def handle(self, *args, tenant, name, **options):
        found = Tenant.objects.filter(pk=tenant).first()
        if found is None:
            known = ", ".join(Tenant.objects.values_list("id", flat=True)[:10]) or "none yet"
            raise CommandError(f"No tenant with id {tenant!r}. Known tenants: {known}.")
        issued = api_key_create(tenant=found, name=name)
        self.stdout.write(f"Created API key {name!r} for tenant {found.id!r}. It is shown once; store it now:")
        self.stdout.write(issued.raw_key)
