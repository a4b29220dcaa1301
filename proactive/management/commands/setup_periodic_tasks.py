from django.core.management.base import BaseCommand

from proactive.periodic_tasks import periodic_tasks_sync


class Command(BaseCommand):
    help = "Register the periodic tasks Celery beat runs (idempotent; run on every deploy)."

    def handle(self, *args, **options):
        report = periodic_tasks_sync()
        for outcome in ("created", "updated", "unchanged", "removed"):
            for name in report[outcome]:
                self.stdout.write(f"{outcome}: {name}")
        total = sum(len(names) for outcome, names in report.items() if outcome != "removed")
        self.stdout.write(self.style.SUCCESS(f"{total} periodic task(s) registered."))
