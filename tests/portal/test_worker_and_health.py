"""A task runs through a real worker on the real Redis; /healthz/ says what is up."""

import pytest
from django.urls import reverse

from core.tasks import ping_task


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_runs_through_a_real_worker_on_redis(celery_worker_process):
    result = ping_task.delay()
    assert result.get(timeout=20) == "pong"
    # The answer came from another process, through Redis, not from an eager call.
    assert result.successful()
    assert celery_worker_process.poll() is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_healthz_proves_a_worker_consumes_tasks(client, celery_worker_process):
    response = client.get(reverse("healthz") + "?worker=1")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": True, "redis": True, "worker": True}


@pytest.mark.django_db
def test_healthz_answers_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"ok": False, "database": True, "redis": False}


def test_celery_is_configured_not_to_lose_work():
    from portal.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
