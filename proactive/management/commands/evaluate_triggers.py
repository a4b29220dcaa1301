from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from proactive.engine.runner import CHUNK_SIZE, EngineReport, chunked, due_rule_ids, evaluate_rules
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Evaluate due trigger rules now, in this process (what a tick does, without Celery)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant's rules.")
        parser.add_argument("--dry-run", action="store_true", help="Evaluate and report; write nothing.")
        parser.add_argument("--all", action="store_true", help="Every enabled rule, due or not.")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=CHUNK_SIZE,
            help="About this many rules per transaction (chunks of equal sizes, ¾ to 1½ times it).",
        )

    def handle(self, *args, tenant, dry_run, all, chunk_size, verbosity, **options):
        if tenant and not Tenant.objects.filter(pk=tenant).exists():
            raise CommandError(f"No tenant with id {tenant!r}.")
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        now = timezone.now()
        rule_ids = due_rule_ids(now=now, tenant_id=tenant, only_due=not all)
        chunks = list(chunked(rule_ids, chunk_size))
        mode = " (dry run: nothing is written)" if dry_run else ""
        self.stdout.write(f"{len(rule_ids)} rule(s) to evaluate in {len(chunks)} chunk(s){mode}.")
        total = EngineReport()
        for number, chunk in enumerate(chunks, start=1):
            report = evaluate_rules(rule_ids=chunk, now=now, dry_run=dry_run, only_due=not all)
            total = total.merge(report)
            self.stdout.write(
                f"chunk {number}/{len(chunks)}: {report.evaluated} evaluated, {report.fired} fired, "
                f"{report.alerts_created} alert(s) created, {report.resolved} resolved, "
                f"{report.errors} error(s), {report.skipped} skipped"
            )
            if dry_run or verbosity > 1:
                for result in report.results:
                    if result.fired or result.error:
                        what = f"ERROR {result.error}" if result.error else f"fires: {result.evaluation.reason}"
                        self.stdout.write(f"  rule {result.rule.pk} {result.rule.name!r}: {what}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {total.evaluated} evaluated, {total.fired} fired, {total.alerts_created} alert(s) "
                f"created, {total.resolved} resolved, {total.errors} error(s), {total.skipped} skipped."
            )
        )
