"""Events applied at the same moment by two drains: the older one must not overwrite what the
newer one did (a connection row neither has created yet; the fleet's rate-limit pause)."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from companies.models import Company, Connection
from tests.waiting import wait_until
from tests.webhooks.conftest import connection_payload, event_body
from webhooks.envelope import parse_envelope
from webhooks.handlers import SUPERSEDED, connection_changed

NEWER_AT = datetime(2026, 3, 1, 9, 5, tzinfo=UTC)


def envelope(event_type: str, generated_at: datetime, company_id, connection_id, status):
    body = event_body(
        event_type, generated_at, connection_payload(company_id, connection_id, status)
    )
    return parse_envelope(json.dumps(body))


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_an_older_event_that_loses_the_race_to_create_a_connection_is_superseded():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): two transactions race on one row")
    company = Company.objects.create(codat_id=uuid.uuid4(), name="Toft stores")
    connection_id = uuid.uuid4()
    newer = envelope(
        "connection.disconnected", NEWER_AT, company.codat_id, connection_id, "Deauthorized"
    )
    older = envelope(
        "connection.created",
        NEWER_AT - timedelta(minutes=5),
        company.codat_id,
        connection_id,
        "PendingAuth",
    )
    newer_created, newer_may_commit = threading.Event(), threading.Event()
    outcomes = {}

    def apply(name, event, after_apply=None):
        try:
            with transaction.atomic():
                outcomes[name] = connection_changed(event)
                if after_apply:
                    after_apply()
        except Exception as error:  # reported by the assertions below
            outcomes[name] = error
        finally:
            connection.close()

    def hold_newer_open():
        newer_created.set()
        newer_may_commit.wait(10)

    # given: a drain has created the connection from the newer event, not committed yet
    first = threading.Thread(target=apply, args=("newer", newer, hold_newer_open))
    first.start()
    assert newer_created.wait(10)
    # when: another drain applies the older event, and finds no row to lock yet
    second = threading.Thread(target=apply, args=("older", older))
    second.start()
    # its INSERT waits behind the newer one's
    wait_until(waiting_on_a_lock, timeout=10, message="the older event did not reach the row")
    newer_may_commit.set()
    first.join(10)
    second.join(10)

    # then: the older event is superseded and the newer state stays
    assert outcomes == {"newer": "applied", "older": SUPERSEDED}
    row = Connection.objects.get(codat_id=connection_id)
    assert (row.status, row.last_event_at) == ("Deauthorized", NEWER_AT)


@pytest.mark.django_db(transaction=True)
def test_a_reset_applied_while_an_older_reached_is_on_its_way_to_redis_leaves_no_pause(
    monkeypatch, settings, redis_url
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): two drains apply events side by side")
    import redis

    from codat import fleet_pause
    from webhooks.services import webhook_event_process, webhook_event_receive

    settings.REDIS_URL = redis_url
    redis_client = redis.Redis.from_url(redis_url)
    redis_client.delete(fleet_pause.PAUSE_KEY)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    expiry = (now + timedelta(hours=2)).isoformat()
    quota = {"dailyQuota": 12000, "quotaRemaining": 0, "expiryDate": expiry}
    reached, reset = (
        webhook_event_receive(
            webhook_id=f"msg_{uuid.uuid4().hex}",
            body=json.dumps(event_body(event_type, at, quota)),
            headers={},
            signed_at=now,
        )
        for event_type, at in (
            ("client.rateLimit.reached", now),
            ("client.rateLimit.reset", now + timedelta(seconds=1)),
        )
    )
    reached_checked, reached_may_pause = threading.Event(), threading.Event()
    pause = fleet_pause.pause_codat_calls_until

    def pause_when_told(client, moment):
        reached_checked.set()
        reached_may_pause.wait(10)
        return pause(client, moment)

    monkeypatch.setattr(fleet_pause, "pause_codat_calls_until", pause_when_told)
    outcomes = {}

    def apply(name, event_pk):
        try:
            outcomes[name] = webhook_event_process(event_pk=event_pk)
        except Exception as error:  # reported by the assertions below
            outcomes[name] = error
        finally:
            connection.close()

    # given: a drain has found no newer reset and is about to pause the fleet
    first = threading.Thread(target=apply, args=("reached", reached))
    first.start()
    assert reached_checked.wait(10)
    # when: another drain applies the newer reset meanwhile
    second = threading.Thread(target=apply, args=("reset", reset))
    second.start()
    deadline = time.monotonic() + 3
    while second.is_alive() and not waiting_on_a_lock():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    reached_may_pause.set()
    first.join(10)
    second.join(10)

    # then: the reset went second, and nothing pauses the fleet
    assert outcomes == {"reached": "applied", "reset": "applied"}
    assert fleet_pause.codat_calls_paused_until(redis_client) is None
