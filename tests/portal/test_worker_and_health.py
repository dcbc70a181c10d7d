"""A task runs through a real worker on the real Redis; /healthz/ says what is up."""

import pytest
import redis
from django.urls import reverse

from core.health import WORKER_ANSWER_KEY, WORKER_PROBE_LOCK_KEY
from core.tasks import ping_task


@pytest.fixture(autouse=True)
def no_shared_worker_answer(redis_url):
    """Each test asks the worker afresh: no answer left by another test is reused."""
    client = redis.Redis.from_url(redis_url)
    client.delete(WORKER_ANSWER_KEY, WORKER_PROBE_LOCK_KEY)
    yield
    client.delete(WORKER_ANSWER_KEY, WORKER_PROBE_LOCK_KEY)


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


@pytest.fixture
def broker_no_worker_consumes(redis_url):
    """This process's Celery publishing to a Redis database no worker reads (the webhooks
    suite's `unconsumed_broker_url`, +3): each canary sent stays in the queue to be counted."""
    from portal.celery import app
    from tests.plugins.celery_worker import point_celery_at
    from tests.plugins.redis_server import redis_url_with_db

    url = redis_url_with_db(redis_url, 3)
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    before = (app.conf.broker_url, app.conf.result_backend)
    point_celery_at(app, url)
    yield broker
    app.conf.update(broker_url=before[0], result_backend=before[1])
    point_celery_at(app, before[0])
    broker.flushdb()


@pytest.mark.django_db
def test_healthz_with_the_worker_check_sends_one_canary_however_often_it_is_asked(
    client, settings, broker_no_worker_consumes
):
    answers = [client.get(reverse("healthz") + "?worker=1") for _ in range(5)]

    assert [response.status_code for response in answers] == [503] * 5
    assert all(response.json()["worker"] is False for response in answers)
    assert broker_no_worker_consumes.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 1
