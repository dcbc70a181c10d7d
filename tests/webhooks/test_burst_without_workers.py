"""A burst of 500 deliveries while no worker runs is stored at once, sends a few processing
messages between them (one per web process every quarter second at most), and is applied in full
when a worker starts."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis
import requests

from companies.models import Company
from tests.plugins.celery_worker import REPO, CeleryWorker, point_celery_at, worker_env
from tests.plugins.database import database_url_for_worker
from tests.plugins.redis_server import redis_url_with_db
from tests.waiting import wait_until
from tests.webhooks.conftest import ENDPOINT, event_body, reference_company, signature_headers
from tests.webhooks.servers import gunicorn_portal
from webhooks.models import EventState, WebhookEvent
from webhooks.services import DRAIN_COUNTDOWN_SECONDS, DRAIN_MARGIN_SECONDS

EVENTS = 500
WEB_PROCESSES = 4
SVIX_GIVES_UP_AFTER_SECONDS = 15


@pytest.fixture
def broker_url(redis_url, celery_app_on_redis):
    """A Redis database of this test's own (the session's is +0, the operations suite's +1): no
    worker started elsewhere in the session consumes from it, so "no worker runs" holds for the
    first half of the test. This process's Celery app points there too, to ping the worker."""
    url = redis_url_with_db(redis_url, 2)
    client = redis.Redis.from_url(url)
    client.flushdb()
    previous_broker = celery_app_on_redis.conf.broker_url
    point_celery_at(celery_app_on_redis, url)
    yield url
    point_celery_at(celery_app_on_redis, previous_broker)
    client.flushdb()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_burst_while_no_worker_runs_is_stored_fast_and_applied_when_one_starts(
    broker_url, celery_app_on_redis, webhook_secret
):
    # given: 500 company.created events, and no worker consuming the portal's broker
    start = datetime(2026, 3, 1, tzinfo=UTC)
    bodies = [
        event_body("company.created", start + timedelta(seconds=n), reference_company(uuid.uuid4()))
        for n in range(EVENTS)
    ]
    sessions = {}

    def deliver(base_url, body):
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        text = json.dumps(body)
        started = time.perf_counter()
        response = session.post(
            base_url + ENDPOINT,
            data=text,
            headers={**signature_headers(text, webhook_secret), "Content-Type": "application/json"},
            timeout=15,
        )
        return response.status_code, time.perf_counter() - started

    # when: they arrive 20 at a time
    with (
        gunicorn_portal(
            database_url=database_url_for_worker(),
            redis_url=broker_url,
            secrets=[webhook_secret],
            workers=WEB_PROCESSES,
        ) as base_url,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        started = time.monotonic()
        answers = list(pool.map(lambda body: deliver(base_url, body), bodies))
        burst_seconds = time.monotonic() - started

    # then: every one stored and answered before Svix gives up on a delivery (15 s; how fast
    # they are answered is bench/webhook_ingest.py's figure, not a test's), with a few messages
    # between them: each web process sends one, and the next only once that one is nearly due
    statuses = [status for status, _ in answers]
    assert statuses == [202] * EVENTS
    assert max(latency for _, latency in answers) < SVIX_GIVES_UP_AFTER_SECONDS
    assert WebhookEvent.objects.filter(state=EventState.RECEIVED).count() == EVENTS
    messages = redis.Redis.from_url(broker_url).llen("portal")
    per_process = burst_seconds / (DRAIN_COUNTDOWN_SECONDS - DRAIN_MARGIN_SECONDS) + 1
    assert 1 <= messages <= WEB_PROCESSES * per_process
    assert messages <= EVENTS / 10

    # when: a worker starts
    worker = CeleryWorker(
        app=celery_app_on_redis,
        env=worker_env(REDIS_URL=broker_url, DATABASE_URL=database_url_for_worker()),
        concurrency=2,
        log_path=REPO / "var" / "test-burst-worker.log",
        name="burst",
    )
    worker.start()
    try:
        wait_until(
            lambda: not WebhookEvent.objects.filter(state=EventState.RECEIVED).exists(),
            timeout=90,
            interval=0.2,
            message="the worker did not apply the burst",
        )
    finally:
        worker.stop()

    # then: all applied, each once
    assert WebhookEvent.objects.filter(state=EventState.APPLIED).count() == EVENTS
    assert set(WebhookEvent.objects.values_list("times_processed", flat=True)) == {1}
    codat_ids = {uuid.UUID(body["payload"]["id"]) for body in bodies}
    assert Company.objects.filter(codat_id__in=codat_ids).count() == EVENTS
