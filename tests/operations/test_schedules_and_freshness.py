"""Periodic tasks in one place, and when a scheduled read is due."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from operations.selectors import next_read_due
from portal.schedules import ensure_periodic_tasks


@pytest.mark.django_db
def test_the_beat_rows_exist_with_an_expiry_and_stay_one_per_name():
    ensure_periodic_tasks()
    ensure_periodic_tasks()
    sweep = PeriodicTask.objects.get(task="operations.tasks.sweep")
    reconcile = PeriodicTask.objects.get(task="companies.tasks.reconcile")
    assert sweep.interval.every == 15
    assert sweep.expire_seconds == 15
    assert reconcile.expire_seconds < reconcile.interval.every
    assert PeriodicTask.objects.filter(task="operations.tasks.sweep").count() == 1


def test_hourly_reads_are_due_an_hour_after_the_last_success():
    last = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert next_read_due(
        schedule_kind="hourly", schedule_time=None, after=last
    ) == last + timedelta(hours=1)


def test_daily_reads_are_due_at_the_next_schedule_time():
    morning = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    evening = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    at_six = time(6, 0)
    assert next_read_due(schedule_kind="daily", schedule_time=at_six, after=morning) == datetime(
        2026, 11, 20, 6, 0, tzinfo=UTC
    )
    assert next_read_due(schedule_kind="daily", schedule_time=at_six, after=evening) == datetime(
        2026, 11, 21, 6, 0, tzinfo=UTC
    )
    assert next_read_due(schedule_kind="none", schedule_time=None, after=evening) is None


@pytest.mark.django_db
def test_migrate_writes_the_beat_rows_once_through_the_beat_apps_signal():
    from django.apps import apps

    from portal.schedules import ensure_periodic_tasks_after_migrate

    PeriodicTask.objects.all().delete()
    ensure_periodic_tasks_after_migrate(sender=apps.get_app_config("operations"))
    assert not PeriodicTask.objects.exists()  # post_migrate fires per app: act once
    ensure_periodic_tasks_after_migrate(sender=apps.get_app_config("django_celery_beat"))
    assert PeriodicTask.objects.filter(task="operations.tasks.sweep").exists()
