"""Every periodic task row names a task a worker knows, and each app's sweeps are scheduled."""

import pytest
from django_celery_beat.models import PeriodicTask

from portal.celery import app
from portal.schedules import ensure_periodic_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def periodic_tasks():
    # migrate creates the rows; tests that flush the database remove them, so make them anew.
    ensure_periodic_tasks()


def test_every_periodic_task_is_a_registered_celery_task_that_expires():
    app.loader.import_default_modules()
    rows = list(PeriodicTask.objects.exclude(name="celery.backend_cleanup"))
    assert rows
    for row in rows:
        assert row.task in app.tasks, f"{row.name}: no task named {row.task}"
        assert row.expire_seconds and row.expire_seconds <= row.interval.every


def test_the_consent_reconciler_runs_every_five_minutes():
    row = PeriodicTask.objects.get(task="consent.tasks.consent_reconcile")
    assert row.interval.every == 300
    assert row.enabled


def test_the_consumer_list_at_codat_is_read_every_hour():
    # Codat disables a failing endpoint and says so only in that list.
    row = PeriodicTask.objects.get(task="webhooks.tasks.import_webhook_consumers")
    assert row.interval.every == 3600
    assert row.enabled


def test_a_beat_row_of_a_retired_task_is_removed_on_migrate():
    from django_celery_beat.models import IntervalSchedule

    from portal.schedules import RETIRED

    every_five_minutes, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
    PeriodicTask.objects.create(
        name=RETIRED[0],
        task="webhooks.tasks.redrive_webhook_consumers",
        interval=every_five_minutes,
    )

    ensure_periodic_tasks()

    assert not PeriodicTask.objects.filter(name__in=RETIRED).exists()
