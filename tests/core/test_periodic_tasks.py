import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from core.periodic_tasks import PERIODIC_TASKS, PeriodicTaskSpec, periodic_tasks_sync

pytestmark = pytest.mark.django_db

SPEC = PeriodicTaskSpec(name="test.tick", task="core.tests.tick", cron="* * * * *", expires_seconds=50)


def test_sync_creates_then_is_idempotent():
    first = periodic_tasks_sync(specs=[SPEC])
    second = periodic_tasks_sync(specs=[SPEC])

    assert first["created"] == ["test.tick"]
    assert second == {"created": [], "updated": [], "unchanged": ["test.tick"], "removed": []}
    task = PeriodicTask.objects.get(name="test.tick")
    assert (task.task, str(task.crontab.minute), task.expire_seconds, task.enabled) == (
        "core.tests.tick",
        "*",
        50,
        True,
    )


def test_sync_updates_a_changed_schedule_and_removes_what_is_no_longer_declared():
    periodic_tasks_sync(specs=[SPEC, PeriodicTaskSpec(name="test.old", task="x", cron="0 0 * * *")])
    PeriodicTask.objects.create(name="hand-made", task="y", interval=None, crontab=PeriodicTask.objects.get(
        name="test.old").crontab)

    report = periodic_tasks_sync(specs=[PeriodicTaskSpec(name="test.tick", task="core.tests.tick", cron="*/5 * * * *")])

    assert report["updated"] == ["test.tick"]
    assert report["removed"] == ["test.old"]
    assert PeriodicTask.objects.get(name="test.tick").crontab.minute == "*/5"
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == {"test.tick", "hand-made"}


def test_command_registers_the_declared_tasks(capsys):
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert names == {spec.name for spec in PERIODIC_TASKS}
