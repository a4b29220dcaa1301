import pytest
from celery import current_app
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from proactive.periodic_tasks import PERIODIC_TASKS, PeriodicTaskSpec, UnknownTask, periodic_tasks_sync

pytestmark = pytest.mark.django_db

SPEC = PeriodicTaskSpec(name="test.tick", task="alerts.tasks.wake_snoozed_alerts", cron="* * * * *")


def test_sync_creates_then_is_idempotent():
    first = periodic_tasks_sync(specs=[SPEC])
    second = periodic_tasks_sync(specs=[SPEC])

    assert first["created"] == ["test.tick"]
    assert second == {"created": [], "updated": [], "unchanged": ["test.tick"], "removed": []}
    task = PeriodicTask.objects.get(name="test.tick")
    assert (task.task, str(task.crontab.minute), task.expire_seconds, task.enabled) == (
        "alerts.tasks.wake_snoozed_alerts",
        "*",
        55,  # the task's own `expires`
        True,
    )


def test_sync_updates_a_changed_schedule_and_removes_what_is_no_longer_declared():
    periodic_tasks_sync(
        specs=[SPEC, PeriodicTaskSpec(name="test.old", task="billing.tasks.rollup_daily_usage", cron="0 0 * * *")]
    )
    PeriodicTask.objects.create(
        name="hand-made", task="y", interval=None, crontab=PeriodicTask.objects.get(name="test.old").crontab
    )

    report = periodic_tasks_sync(specs=[PeriodicTaskSpec(name="test.tick", task=SPEC.task, cron="*/5 * * * *")])

    assert report["updated"] == ["test.tick"]
    assert report["removed"] == ["test.old"]
    assert PeriodicTask.objects.get(name="test.tick").crontab.minute == "*/5"
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == {"test.tick", "hand-made"}


def test_command_registers_the_declared_tasks(capsys):
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert names == {spec.name for spec in PERIODIC_TASKS}


def test_every_periodic_task_names_a_registered_celery_task_and_takes_its_expiry():
    current_app.loader.import_default_modules()
    for spec in PERIODIC_TASKS:
        assert spec.task in current_app.tasks, spec.task
    periodic_tasks_sync()

    for spec in PERIODIC_TASKS:
        registered = PeriodicTask.objects.get(name=spec.name)
        assert registered.expire_seconds == current_app.tasks[spec.task].expires


def test_a_task_name_celery_does_not_know_is_refused_and_nothing_is_written():
    with pytest.raises(UnknownTask, match="'proactive.tasks.typo' is not a registered Celery task"):
        periodic_tasks_sync(specs=[SPEC, PeriodicTaskSpec(name="typo", task="proactive.tasks.typo", cron="* * * * *")])

    assert not PeriodicTask.objects.exists()
