"""
The one list of what Celery beat runs, for every app (this top app may name any app's task).
`manage.py setup_periodic_tasks` writes it to django-celery-beat's tables; `make run` and every
deploy call it, and it is idempotent. How long a queued run stays worth running (`expires`) is
the task's own setting, read from its definition.
"""

from dataclasses import dataclass

from celery import current_app
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

MANAGED_DESCRIPTION = "Managed by setup_periodic_tasks; edits are overwritten on the next deploy."


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str
    task: str  # a registered Celery task
    cron: str  # five fields, UTC


PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(name="proactive: engine tick", task="proactive.tasks.engine_tick", cron="* * * * *"),
    PeriodicTaskSpec(name="alerts: wake snoozed alerts", task="alerts.tasks.wake_snoozed_alerts", cron="* * * * *"),
    PeriodicTaskSpec(name="alerts: sweep overdue deliveries", task="alerts.tasks.sweep_deliveries", cron="* * * * *"),
    # Hourly: a missed run is repaired within the hour.
    PeriodicTaskSpec(name="billing: daily usage rollup", task="billing.tasks.rollup_daily_usage", cron="5 * * * *"),
]


class UnknownTask(LookupError):
    pass


def task_expiry_seconds(task_name: str) -> int | None:
    """The registered task's own `expires` (seconds); a name Celery does not know is an error."""
    current_app.loader.import_default_modules()  # autodiscovery: every app's tasks module, once
    if task_name not in current_app.tasks:
        raise UnknownTask(f"{task_name!r} is not a registered Celery task.")
    expires = current_app.tasks[task_name].expires
    return None if expires is None else int(expires)


def _crontab(cron: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return schedule


@transaction.atomic
def periodic_tasks_sync(*, specs: list[PeriodicTaskSpec] | None = None) -> dict[str, list[str]]:
    specs = PERIODIC_TASKS if specs is None else specs
    report = {"created": [], "updated": [], "unchanged": [], "removed": []}
    for spec in specs:
        values = {
            "task": spec.task,
            "crontab": _crontab(spec.cron),
            "interval": None,
            "enabled": True,
            "expire_seconds": task_expiry_seconds(spec.task),
            "description": MANAGED_DESCRIPTION,
        }
        existing = PeriodicTask.objects.filter(name=spec.name).first()
        if existing is None:
            PeriodicTask.objects.create(name=spec.name, **values)
            report["created"].append(spec.name)
        elif any(getattr(existing, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(existing, field, value)
            existing.save()
            report["updated"].append(spec.name)
        else:
            report["unchanged"].append(spec.name)

    stale = PeriodicTask.objects.filter(description=MANAGED_DESCRIPTION).exclude(name__in=[spec.name for spec in specs])
    report["removed"] = list(stale.values_list("name", flat=True))
    stale.delete()
    return report
