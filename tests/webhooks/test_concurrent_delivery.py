"""500 events, each delivered 1-5 times, shuffled, 20 at a time, to gunicorn; applied by a
real worker."""

import json
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import requests

from companies.models import Connection
from tests.plugins.database import database_url_for_worker
from tests.waiting import wait_until
from tests.webhooks.conftest import ENDPOINT, connection_payload, event_body, signature_headers
from tests.webhooks.servers import gunicorn_portal
from webhooks.models import EventState, WebhookEvent

EVENTS = 500
CONNECTIONS = 50
EVENT_TYPE_FOR_STATUS = {
    "PendingAuth": "connection.created",
    "Linked": "connection.connected",
    "Unlinked": "connection.disconnected",
    "Deauthorized": "connection.disconnected",
}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_duplicated_shuffled_concurrent_deliveries_store_and_apply_each_event_once(
    celery_worker_process, redis_url, webhook_secret
):
    # given: 500 events over 50 connections, each with its own generatedDate
    rng = random.Random(5)
    company_id = uuid.uuid4()
    connection_ids = [uuid.uuid4() for _ in range(CONNECTIONS)]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    newest: dict[uuid.UUID, tuple[datetime, str]] = {}
    deliveries = []
    for number in range(EVENTS):
        connection_id = connection_ids[number % CONNECTIONS]
        status = rng.choice(list(EVENT_TYPE_FOR_STATUS))
        generated_at = start + timedelta(seconds=number)
        body = event_body(
            EVENT_TYPE_FOR_STATUS[status],
            generated_at,
            connection_payload(company_id, connection_id, status),
        )
        if connection_id not in newest or newest[connection_id][0] < generated_at:
            newest[connection_id] = (generated_at, status)
        webhook_id = f"msg_{number:04d}_{uuid.uuid4().hex}"
        deliveries += [(webhook_id, body)] * rng.randint(1, 5)
    rng.shuffle(deliveries)
    sessions = {}

    def deliver(base_url, delivery):
        webhook_id, body = delivery
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        text = json.dumps(body)
        headers = signature_headers(text, webhook_secret, webhook_id=webhook_id)
        response = session.post(
            base_url + ENDPOINT,
            data=text,
            headers={**headers, "Content-Type": "application/json"},
            timeout=15,
        )
        return response.status_code

    # when
    with (
        gunicorn_portal(
            database_url=database_url_for_worker(), redis_url=redis_url, secrets=[webhook_secret]
        ) as base_url,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        statuses = list(pool.map(partial(deliver, base_url), deliveries))
    wait_until(
        lambda: not WebhookEvent.objects.filter(state=EventState.RECEIVED).exists(),
        timeout=60,
        interval=0.2,
        message="the worker did not process every event",
    )

    # then
    assert len(deliveries) > EVENTS
    assert all(status in (200, 202) for status in statuses)
    assert statuses.count(202) == EVENTS
    assert WebhookEvent.objects.count() == EVENTS
    assert set(WebhookEvent.objects.values_list("times_processed", flat=True)) == {1}
    assert set(WebhookEvent.objects.values_list("state", flat=True)) <= {
        EventState.APPLIED,
        EventState.SUPERSEDED,
    }
    for connection in Connection.objects.filter(codat_id__in=connection_ids):
        assert (connection.last_event_at, connection.status) == newest[connection.codat_id]
    assert Connection.objects.filter(codat_id__in=connection_ids).count() == CONNECTIONS
