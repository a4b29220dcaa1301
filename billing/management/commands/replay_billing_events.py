from django.core.management.base import BaseCommand

from billing.models import BillingEvent, BillingEventOutcome
from billing.services.webhook import billing_event_replay


class Command(BaseCommand):
    help = "Apply unmatched billing events whose tenant exists now (all of them, or the ids given)."

    def add_arguments(self, parser):
        parser.add_argument("event_ids", nargs="*", help="evt_… ids; default: every unmatched event")

    def handle(self, *args, event_ids, **options):
        events = BillingEvent.objects.filter(outcome=BillingEventOutcome.UNMATCHED).order_by("received_at")
        if event_ids:
            events = events.filter(event_id__in=event_ids)
            missing = set(event_ids) - set(events.values_list("event_id", flat=True))
            for event_id in sorted(missing):
                self.stderr.write(f"{event_id}: not an unmatched event, skipped")
        count = 0
        for event in events.iterator():
            replayed = billing_event_replay(event=event)
            self.stdout.write(f"{replayed.event_id}: {replayed.outcome} {replayed.reason}".rstrip())
            count += 1
        self.stdout.write(self.style.SUCCESS(f"Replayed {count} event(s)."))
