"""With PostgreSQL unreachable the endpoint answers 5xx, so Svix delivers again; never a 2xx
without a stored row. After it is back, the re-deliveries are stored: nothing lost."""

import json
import uuid
from datetime import UTC, datetime

import pytest
import requests

from tests.plugins.database import database_url_for_worker
from tests.webhooks.conftest import ENDPOINT, event_body, new_secret, signature_headers
from tests.webhooks.servers import gunicorn_portal
from tests.webhooks.tcp_proxy import TcpProxy
from webhooks.models import WebhookEvent

BURST = 20


def database_url_through(proxy: TcpProxy) -> str:
    from django.db import connection

    config = connection.settings_dict
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    return f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{config['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_deliveries_get_5xx_and_are_stored_when_delivered_again(
    unconsumed_broker_url,
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the proxy cuts a TCP database link")
    config = connection.settings_dict
    proxy = TcpProxy(config.get("HOST") or "127.0.0.1", int(config.get("PORT") or 5432)).start()
    secret = new_secret()

    def messages(count):
        return [
            (
                "msg_" + uuid.uuid4().hex,
                json.dumps(
                    event_body("company.deleted", datetime.now(tz=UTC), {"id": str(uuid.uuid4())})
                ),
            )
            for _ in range(count)
        ]

    def deliver(base_url, message):
        webhook_id, body = message
        headers = signature_headers(body, secret, webhook_id=webhook_id)
        response = requests.post(
            base_url + ENDPOINT,
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=15,
        )
        return response.status_code

    try:
        with gunicorn_portal(
            database_url=database_url_through(proxy),
            redis_url=unconsumed_broker_url,
            secrets=[secret],
        ) as base_url:
            before = messages(BURST)
            assert {deliver(base_url, message) for message in before} == {202}

            # when: the database goes away in the middle of the traffic
            proxy.stop()
            during = messages(BURST)
            statuses_while_down = [deliver(base_url, message) for message in during]

            # then: Svix is told to retry, and nothing claims success
            assert statuses_while_down == [503] * BURST
            during_ids = [webhook_id for webhook_id, _ in during]
            assert not WebhookEvent.objects.filter(webhook_id__in=during_ids).exists()

            # when: it is back, Svix delivers the same messages again
            proxy = TcpProxy(proxy.target[0], proxy.target[1], listen_port=proxy.port).start()
            statuses_after = [deliver(base_url, message) for message in during]
            repeated = [deliver(base_url, message) for message in before]
    finally:
        proxy.stop()

    # then: every message stored exactly once, none lost
    assert statuses_after == [202] * BURST
    assert repeated == [200] * BURST
    stored = set(WebhookEvent.objects.values_list("webhook_id", flat=True))
    assert stored == {webhook_id for webhook_id, _ in before + during}


@pytest.mark.django_db(transaction=True)
def test_connections_the_database_dropped_are_replaced_without_failing_a_delivery(
    unconsumed_broker_url,
):
    """The endpoint skips Django's per-request ping: when the kept connections have died
    (database restarted, idle connections killed), the next deliveries are still stored and
    answered 2xx, not 5xx, because the idempotent INSERT is sent again on a new connection."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the server drops connections")
    secret = new_secret()
    # Named, so that only gunicorn's connections are dropped (not a worker's of other tests).
    database_url = database_url_for_worker() + "?application_name=portal-dropped-connections-test"

    def deliver(base_url):
        webhook_id = "msg_" + uuid.uuid4().hex
        body = json.dumps(
            event_body("company.deleted", datetime.now(tz=UTC), {"id": str(uuid.uuid4())})
        )
        response = requests.post(
            base_url + ENDPOINT,
            data=body,
            headers={
                **signature_headers(body, secret, webhook_id=webhook_id),
                "Content-Type": "application/json",
            },
            timeout=15,
        )
        return webhook_id, response.status_code

    def portal_backends():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name = 'portal-dropped-connections-test'"
            )
            return [pid for (pid,) in cursor.fetchall()]

    with gunicorn_portal(
        database_url=database_url,
        redis_url=unconsumed_broker_url,
        secrets=[secret],
        workers=2,
    ) as base_url:
        warm = [deliver(base_url) for _ in range(BURST)]
        kept = portal_backends()
        assert kept, "the workers keep their connections between requests"

        # when: the server drops every connection the workers kept
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [kept])
        after = [deliver(base_url) for _ in range(BURST)]

    # then: no delivery failed, and each is stored once
    assert [status for _, status in warm + after] == [202] * (2 * BURST)
    assert set(WebhookEvent.objects.values_list("webhook_id", flat=True)) == {
        webhook_id for webhook_id, _ in warm + after
    }
